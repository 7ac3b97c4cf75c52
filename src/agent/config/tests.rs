//! Flag and TOML parsing, merging and validation of the agent's config.

use std::time::Duration;

use clap::Parser;

use super::*;

fn flags(args: &[&str]) -> Flags {
    let mut all = vec!["router-agent"];
    all.extend_from_slice(args);
    Flags::try_parse_from(all).expect("flags parse")
}

const MINIMAL: &[&str] = &[
    "--router",
    "http://127.0.0.1:9032",
    "--pool",
    "web",
    "--node",
    "127.0.0.1:3031",
    "--stats",
    "127.0.0.1:9191",
];

fn url(s: &str) -> RouterTarget {
    RouterTarget::Url(s.to_owned())
}

fn problems(result: Result<AgentConfig, ConfigError>) -> Vec<String> {
    match result {
        Err(ConfigError::Invalid(p)) => p.lines().to_vec(),
        other => panic!("expected validation problems, got {other:?}"),
    }
}

#[test]
fn minimal_flags_get_defaults() {
    let c = AgentConfig::merge(FileConfig::default(), flags(MINIMAL)).unwrap();
    assert_eq!(c.routers, [url("http://127.0.0.1:9032")]);
    assert_eq!(c.router_resolve_interval, Duration::from_secs(30));
    assert_eq!(c.pool, "web");
    assert_eq!(
        c.node_id, "127.0.0.1:3031",
        "the node id defaults to the address"
    );
    assert_eq!(c.stats, SocketTarget::Tcp("127.0.0.1:9191".into()));
    assert_eq!(c.weight, 1);
    assert_eq!(c.interval, Duration::from_secs(1));
    assert_eq!(c.drain_timeout, Duration::from_secs(30));
    assert_eq!(c.health, None);
    assert_eq!(c.token_file, None);
}

#[test]
fn every_flag_is_understood() {
    let mut args = MINIMAL.to_vec();
    args.extend([
        "--router",
        "http://127.0.0.2:9032",
        "--node-id",
        "app-1:3031",
        "--token-file",
        "/etc/router-agent/token",
        "--weight",
        "20",
        "--label",
        "zone=a",
        "--label",
        "release=42",
        "--interval",
        "250ms",
        "--drain-timeout",
        "2m",
        "--health-path",
        "/healthz?full=1",
        "--health-host",
        "app.example.com",
    ]);
    let c = AgentConfig::merge(FileConfig::default(), flags(&args)).unwrap();
    assert_eq!(c.routers.len(), 2);
    assert_eq!(c.node_id, "app-1:3031");
    assert_eq!(
        c.token_file.as_deref(),
        Some(std::path::Path::new("/etc/router-agent/token"))
    );
    assert_eq!(c.weight, 20);
    assert_eq!(c.labels["zone"], "a");
    assert_eq!(c.labels["release"], "42");
    assert_eq!(c.interval, Duration::from_millis(250));
    assert_eq!(c.drain_timeout, Duration::from_secs(120));
    let h = c.health.unwrap();
    assert_eq!(
        (h.path.as_str(), h.host.as_str()),
        ("/healthz?full=1", "app.example.com")
    );
}

#[test]
fn toml_file_holds_the_same_keys() {
    let file = FileConfig::parse(
        r#"
        routers = ["http://10.0.0.1:9032", "https://10.0.0.2:9032"]
        pool = "web"
        node = "10.0.0.5:3031"
        node_id = "app-5"
        stats = "/run/uwsgi/stats.sock"
        token_file = "/etc/router-agent/token"
        weight = 3
        interval = "2s"
        drain_timeout = "45s"
        health_path = "/healthz"
        tls_ca = "/etc/router-agent/ca.pem"
        tls_cert = "/etc/router-agent/agent.pem"
        tls_key = "/etc/router-agent/agent.key"
        [labels]
        zone = "b"
        "#,
    )
    .unwrap();
    let c = AgentConfig::merge(file, Flags::default()).unwrap();
    assert_eq!(c.routers.len(), 2);
    assert_eq!(c.stats, SocketTarget::Unix("/run/uwsgi/stats.sock".into()));
    assert_eq!(c.interval, Duration::from_secs(2));
    assert_eq!(c.drain_timeout, Duration::from_secs(45));
    assert_eq!(c.health.unwrap().host, "localhost");
    assert!(c.tls.ca.is_some() && c.tls.identity.is_some());
    assert_eq!(c.labels["zone"], "b");
}

#[test]
fn flags_override_the_file() {
    let file = FileConfig::parse(
        r#"
        routers = ["http://10.0.0.1:9032"]
        pool = "web"
        node = "10.0.0.5:3031"
        stats = "127.0.0.1:9191"
        weight = 3
        [labels]
        zone = "b"
        host = "app-5"
        "#,
    )
    .unwrap();
    let f = flags(&[
        "--router",
        "http://127.0.0.1:9032",
        "--weight",
        "7",
        "--label",
        "zone=c",
    ]);
    let c = AgentConfig::merge(file, f).unwrap();
    assert_eq!(
        c.routers,
        [url("http://127.0.0.1:9032")],
        "--router replaces the list"
    );
    assert_eq!(c.weight, 7);
    assert_eq!(c.labels["zone"], "c", "a flag label overrides that key");
    assert_eq!(c.labels["host"], "app-5", "other file labels stay");
    assert_eq!(c.pool, "web");
}

#[test]
fn dns_names_mix_with_urls_and_are_resolved_each_interval() {
    let mut args = MINIMAL.to_vec();
    args.extend([
        "--router",
        "dns:///routerd-headless.web.svc:9032,http://10.0.0.9:9032",
        "--router-resolve-interval",
        "5s",
    ]);
    let c = AgentConfig::merge(FileConfig::default(), flags(&args)).unwrap();
    let name = DnsName {
        host: "routerd-headless.web.svc".into(),
        port: 9032,
        tls: false,
    };
    assert_eq!(
        c.routers,
        [
            url("http://127.0.0.1:9032"),
            RouterTarget::Dns(name),
            url("http://10.0.0.9:9032")
        ]
    );
    assert_eq!(c.router_resolve_interval, Duration::from_secs(5));
    let file = FileConfig::parse(
        "routers = [\"dns:///routers.test:9032\"]\nrouter_resolve_interval = \"2m\"\n",
    )
    .unwrap();
    let c = AgentConfig::merge(file, flags(&MINIMAL[2..])).unwrap();
    assert_eq!(c.routers.len(), 1);
    assert_eq!(c.router_resolve_interval, Duration::from_secs(120));
}

#[test]
fn the_resolve_interval_is_bounded_and_needs_a_name() {
    let mut args = MINIMAL.to_vec();
    args.extend(["--router-resolve-interval", "10s"]);
    let p = problems(AgentConfig::merge(FileConfig::default(), flags(&args)));
    assert_eq!(
        p,
        ["router_resolve_interval: only used with a dns:/// router (--router dns:///NAME:PORT)"]
    );
    for bad in ["500ms", "2h"] {
        let args = [
            "--router",
            "dns:///routers.test:9032",
            "--router-resolve-interval",
            bad,
        ];
        let mut all = args.to_vec();
        all.extend_from_slice(&MINIMAL[2..]);
        let p = problems(AgentConfig::merge(FileConfig::default(), flags(&all)));
        assert!(
            p.len() == 1
                && p[0].starts_with("router_resolve_interval: ")
                && p[0].contains("1s..1h"),
            "{bad}: {p:?}"
        );
    }
}

#[test]
fn missing_keys_are_all_named() {
    let p = problems(AgentConfig::merge(FileConfig::default(), Flags::default()));
    for key in ["routers:", "pool:", "node:", "stats:"] {
        assert!(
            p.iter().any(|l| l.starts_with(key)),
            "{key} missing from {p:?}"
        );
    }
}

#[test]
fn bad_values_name_their_key() {
    let file = FileConfig::parse(
        r#"
        routers = ["127.0.0.1:9032", "https://r:9032", "ftp://x:1"]
        pool = "web"
        node = "not-an-address"
        node_id = "has space"
        stats = "nonsense"
        weight = 0
        interval = "10ms"
        health_host = "h"
        tls_cert = "/c.pem"
        "#,
    )
    .unwrap();
    let p = problems(AgentConfig::merge(file, flags(&["--label", "novalue"])));
    for key in [
        "routers[0]:",
        "routers[1]: https needs tls_ca",
        "routers[2]:",
        "node:",
        "node_id:",
        "stats:",
        "weight:",
        "interval:",
        "health_host:",
        "tls_cert:",
        "labels:",
    ] {
        assert!(
            p.iter().any(|l| l.starts_with(key)),
            "{key} missing from {p:#?}"
        );
    }
}

#[test]
fn ipv6_node_gets_an_id_without_brackets() {
    let mut args = MINIMAL.to_vec();
    args[5] = "[fd00::5]:3031";
    let c = AgentConfig::merge(FileConfig::default(), flags(&args)).unwrap();
    assert_eq!(c.node_id, "fd00::5:3031");
}

#[test]
fn unknown_toml_keys_and_bad_durations_are_refused() {
    let err = FileConfig::parse("poool = \"web\"")
        .unwrap_err()
        .to_string();
    assert!(err.contains("poool"), "{err}");
    let err = FileConfig::parse("interval = \"soon\"")
        .unwrap_err()
        .to_string();
    assert!(err.contains("interval"), "{err}");
    assert!(Flags::try_parse_from(["router-agent", "--interval", "soon"]).is_err());
}

#[test]
fn the_deploy_example_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/agent/app.toml");
    let c = AgentConfig::merge(
        FileConfig::load(std::path::Path::new(path)).unwrap(),
        Flags::default(),
    )
    .expect("deploy/agent/app.toml is a valid config");
    assert_eq!(c.routers.len(), 2);
    assert_eq!(
        c.stats,
        SocketTarget::Unix("/run/uwsgi/app/stats.sock".into())
    );
    assert_eq!(c.drain_timeout, Duration::from_secs(30));
}

#[test]
fn the_state_file_defaults_to_the_config_file_s_sibling() {
    let with = |extra: &[&str]| {
        let mut args = MINIMAL.to_vec();
        args.extend_from_slice(extra);
        AgentConfig::merge(FileConfig::default(), flags(&args))
            .unwrap()
            .state_file
    };
    assert_eq!(with(&[]), None, "no config file: kept in memory");
    assert_eq!(
        with(&["--config", "/etc/uwsgi-router/agent/app.toml"]),
        Some(PathBuf::from("/etc/uwsgi-router/agent/app.state.json"))
    );
    assert_eq!(
        with(&["--config", "/etc/a.toml", "--state-file", "/var/lib/a.json"]),
        Some(PathBuf::from("/var/lib/a.json"))
    );
    let file = FileConfig::parse("state_file = \"\"").unwrap();
    let none = AgentConfig::merge(
        file,
        flags(&[MINIMAL, &["--config", "/etc/a.toml"]].concat()),
    );
    assert_eq!(none.unwrap().state_file, None, "\"\" keeps none");
}
