//! Checking a config before using it: `routerd --check-config FILE` and `routerd --config FILE`
//! accept a good file, and refuse a bad one with exit code 1 and a message naming every bad key;
//! without any file, routerd runs on its embedded defaults.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use support::binary::{ROUTERD, STARTUP};
use support::process::Process;
use support::*;
use uwsgi_router::config::{Algorithm, Config};

/// What a finished routerd run printed.
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// `routerd ARGS` without `ROUTERD_CONFIG`, in `dir`, its stdout kept apart.
fn spawn(args: &[&std::ffi::OsStr], dir: &Path) -> Process {
    let mut cmd = Command::new(ROUTERD);
    cmd.args(args)
        .env_remove("ROUTERD_CONFIG")
        .env("NO_COLOR", "1");
    Process::spawn_apart("routerd", cmd, dir)
}

/// Runs routerd with `args` and waits for it to exit; fails (and kills it) if it is still
/// running after [`STARTUP`]: a refused config must stop it at once.
fn run(args: &[&std::ffi::OsStr]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut routerd = spawn(args, dir.path());
    let status = routerd.wait_exit(STARTUP);
    Run {
        status,
        stdout: routerd.stdout(),
        stderr: routerd.log(),
    }
}

fn check(path: &Path) -> Run {
    run(&["--check-config".as_ref(), path.as_os_str()])
}

/// Writes `text` to a file in `dir`.
fn config_file(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let path = dir.path().join("routerd.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn assert_refused(r: &Run, what: &str) {
    assert_eq!(
        r.status.code(),
        Some(1),
        "{what} must be refused with exit code 1:\n{}",
        r.stderr
    );
}

#[test]
fn the_shipped_example_config_passes_the_check() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/routerd.toml");
    let r = check(&path);
    assert!(r.status.success(), "{}: {}", path.display(), r.stderr);
    assert!(r.stdout.contains("ok"), "says so: {}", r.stdout);
}

#[test]
fn every_semantic_mistake_is_named_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = config_file(
        &dir,
        r#"
default_pool = "web"
[limits]
max_vars_size = 10
[pools.web]
connect_attempts = 0
nodes = ["not an address", { address = "127.0.0.1:3101", weight = 0 }]
[[routes]]
host = "api.example.com"
pool = "api"
"#,
    );
    for r in [check(&path), run(&["--config".as_ref(), path.as_os_str()])] {
        assert_refused(&r, "a config with five mistakes");
        for key in [
            "limits.max_vars_size",
            "pools.web.connect_attempts",
            "pools.web.nodes[0]",
            "pools.web.nodes[1].weight",
            "routes[0].pool",
        ] {
            assert!(
                r.stderr.contains(key),
                "the message names {key}:\n{}",
                r.stderr
            );
        }
        assert!(
            r.stderr.contains(&path.display().to_string()),
            "and the file:\n{}",
            r.stderr
        );
    }
}

#[test]
fn an_unknown_algorithm_is_named_with_the_valid_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = config_file(&dir, "[pools.web]\nalgorithm = \"fastest\"\n");
    let r = check(&path);
    assert_refused(&r, "an unknown algorithm");
    for needle in [
        "fastest",
        "algorithm",
        "least-load",
        "round-robin",
        "line 2",
    ] {
        assert!(
            r.stderr.contains(needle),
            "the message has {needle:?}:\n{}",
            r.stderr
        );
    }
}

#[test]
fn a_misspelt_key_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = config_file(&dir, "[pools.web]\nconect_attempts = 2\n");
    let r = check(&path);
    assert_refused(&r, "a misspelt key");
    assert!(
        r.stderr.contains("conect_attempts"),
        "names the typo:\n{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("connect_attempts"),
        "and the keys it could have been:\n{}",
        r.stderr
    );
}

#[test]
fn a_missing_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such.toml");
    for r in [check(&path), run(&["--config".as_ref(), path.as_os_str()])] {
        assert_refused(&r, "a missing file");
        assert!(
            r.stderr.contains(&path.display().to_string()),
            "names the path:\n{}",
            r.stderr
        );
    }
}

#[test]
fn a_bad_config_keeps_routerd_from_starting() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("r.sock");
    let path = config_file(
        &dir,
        &format!(
            "[listen]\nuwsgi = [\"unix:{}\"]\n[pools.default]\nnodes = [\"nowhere\"]\n",
            socket.display()
        ),
    );
    let r = run(&["--config".as_ref(), path.as_os_str()]);
    assert_refused(&r, "routerd --config with a bad node address");
    assert!(r.stderr.contains("pools.default.nodes[0]"), "{}", r.stderr);
    assert!(!socket.exists(), "routerd never listened");
}

#[test]
fn the_embedded_defaults_are_a_working_config() {
    // Built through the same checks as a file: invalid defaults would panic here.
    let c = Config::default();
    assert_eq!(c.listen.uwsgi, ["127.0.0.1:3031".parse().unwrap()]);
    assert_eq!(c.listen.unix_socket_mode, 0o666);
    assert_eq!(c.default_pool, "default");
    assert_eq!(c.pools.keys().collect::<Vec<_>>(), ["default"]);
    let pool = &c.pools["default"];
    assert_eq!(pool.algorithm, Algorithm::LeastLoad);
    assert!(pool.nodes.is_empty());
    assert!(c.routes.is_empty());
    // An empty file means the same.
    let empty = Config::parse("").expect("an empty file is a valid config");
    assert_eq!(empty.listen.uwsgi, c.listen.uwsgi);
    assert_eq!(empty.pools.keys().collect::<Vec<_>>(), ["default"]);
}

/// Without a config routerd listens on 127.0.0.1:3031 (and the default control port). Those ports
/// may be taken on this machine: then routerd must refuse to start and say which one.
#[tokio::test]
async fn without_a_config_routerd_listens_on_127_0_0_1_3031() {
    let defaults = Config::default();
    let mut ports = vec![defaults.listen.uwsgi[0].to_string()];
    ports.extend(defaults.control.listen.map(|a| a.to_string()));
    let taken: Vec<&String> = ports
        .iter()
        .filter(|a| std::net::TcpListener::bind(a.as_str()).is_err())
        .collect();
    if !taken.is_empty() {
        let r = run(&[]);
        assert_refused(&r, "routerd with a default port taken");
        assert!(
            r.stderr.contains("cannot listen on")
                && taken.iter().any(|a| r.stderr.contains(a.as_str())),
            "names the taken address ({taken:?}):\n{}",
            r.stderr
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut routerd = spawn(&[], dir.path());
    let listening = wait::within(STARTUP, async || {
        if let Some(status) = routerd.try_exit() {
            panic!("routerd exited ({status}):\n{}", routerd.log());
        }
        let accepts = tokio::net::TcpStream::connect("127.0.0.1:3031")
            .await
            .is_ok();
        (accepts && routerd.signals_caught().unwrap_or(true)).then_some(())
    })
    .await;
    if let Err(e) = listening {
        panic!(
            "routerd listening on 127.0.0.1:3031: {e}:\n{}",
            routerd.log()
        );
    }

    // The default pool has no nodes: routerd itself answers that it has nowhere to send this.
    let r = send("127.0.0.1:3031", &get("h", "/"), b"").await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(
        r.text().contains("no usable node in pool \"default\""),
        "{}",
        r.text()
    );

    let status = routerd.stop_async("TERM", STARTUP).await;
    assert!(status.success(), "exit status {status}:\n{}", routerd.log());
}

#[test]
fn durations_past_their_bound_are_refused_by_key_not_panicked_on_later() {
    let dir = tempfile::tempdir().unwrap();
    // Past the ceiling any duration may have: refused while parsing, naming the key.
    let path = config_file(&dir, "[timeouts]\nfirst_byte = \"500000000000y\"\n");
    let r = check(&path);
    assert_refused(&r, "a duration of 500000000000 years");
    assert!(r.stderr.contains("first_byte"), "{}", r.stderr);
    assert!(r.stderr.contains("7days"), "says the ceiling: {}", r.stderr);
    // Under the ceiling but past each key's own bound: every one named at once, with its range.
    let path = config_file(
        &dir,
        r#"
[timeouts]
idle = "2d"
connect = "1h"
header = "0s"
[control]
announce_timeout = "6d"
[pools.default]
slow_start = "3h"
[pools.default.ejection]
max_time = "5d"
"#,
    );
    let r = check(&path);
    assert_refused(&r, "durations past their bounds");
    for (key, range) in [
        ("timeouts.idle", "1ms to 1day"),
        ("timeouts.connect", "1ms to 5m"),
        ("timeouts.header", "1ms to 1h"),
        ("control.announce_timeout", "1ms to 5m"),
        ("pools.default.slow_start", "0s to 1h"),
        ("pools.default.ejection.max_time", "1ms to 1day"),
    ] {
        assert!(
            r.stderr.contains(key) && r.stderr.contains(range),
            "names {key} and its range {range}:\n{}",
            r.stderr
        );
    }
}

#[tokio::test]
async fn the_longest_accepted_timeouts_serve_requests() {
    // Deadlines are computed from these on every request: at their bounds nothing overflows.
    let node = FakeNode::start("a", Behaviour::Echo).await;
    let router = start_router(&format!(
        "[timeouts]\nheader = \"1h\"\nconnect = \"5m\"\nfirst_byte = \"1day\"\nidle = \"1day\"\n\
         [pools.default.ejection]\nbase_time = \"1h\"\nmax_time = \"1day\"\n{}",
        pool_toml("round-robin", &[&node])
    ))
    .await;
    let r = send(&router.local_addrs()[0], &get("h", "/"), b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(node_of(&r), "a");
}
