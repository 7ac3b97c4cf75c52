//! `deploy/kubernetes/`: every manifest is valid against the Kubernetes API schemas (strict: an
//! unknown or misplaced field fails), the routers' ConfigMap holds a routerd.toml that
//! `routerd --check-config` accepts, the placeholder tokens of the Secret are refused until
//! replaced, and the pieces are wired to each other: config and token paths, probe and scrape
//! ports, and the agent sidecar's routers (the headless Service's name), node, stats and flags. The schemas come with the
//! PyPI package kubernetes-validate, which `bash tests/run.sh` installs into a venv under
//! target/ (or set KUBERNETES_VALIDATE to its path).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use clap::Parser;
use serde_json::Value;
use support::command::{run, said};
use support::programs::repo_path;
use uwsgi_router::agent::{AgentConfig, Flags, RouterTarget};

/// Kubernetes versions checked: an old one still in service, and the newest bundled.
const VERSIONS: [&str; 2] = ["1.28.0", "1.37.0"];

#[test]
fn manifests_match_the_kubernetes_schemas() {
    let validate = validator();
    let files = manifests();
    let mut resources = Vec::new();
    for version in VERSIONS {
        for file in &files {
            let out = run(Command::new(&validate)
                .args(["--strict", "--kubernetes-version", version])
                .arg(file));
            let text = said(&out);
            assert!(
                out.status.success() && !text.contains("ERROR") && !text.contains("WARN"),
                "kubernetes-validate {version} {}: {text}",
                file.display()
            );
            if version == VERSIONS[0] {
                resources.extend(
                    text.lines()
                        .filter_map(|l| l.split_once("for resource "))
                        .filter_map(|(_, r)| r.split_whitespace().next())
                        .map(str::to_owned),
                );
            }
        }
    }
    resources.sort();
    // Each manifest was read whole: nothing skipped as unparsable.
    assert_eq!(
        resources,
        [
            "configmap/nginx-config",
            "configmap/routerd-config",
            "deployment/mysite",
            "deployment/nginx",
            "namespace/uwsgi-router",
            "poddisruptionbudget/uwsgi-router",
            "secret/uwsgi-router-tokens",
            "service/nginx",
            "service/uwsgi-router",
            "service/uwsgi-router-control",
            "statefulset/uwsgi-router",
        ]
    );
}

/// The routerd.toml of the ConfigMap, mounted where the StatefulSet's command reads it, passes
/// `routerd --check-config` with real tokens at the Secret's mount path (moved into a temp dir:
/// routerd reads the token files to check them), and fails with the Secret's placeholders.
#[test]
fn the_routers_config_passes_check_config_and_placeholder_tokens_do_not() {
    let docs = all_documents();
    let config_map = find(&docs, "ConfigMap", "routerd-config");
    let toml_text = config_map["data"]["routerd.toml"]
        .as_str()
        .expect("routerd.toml in the ConfigMap");
    let router = routerd_container(&docs);
    let command = strings(&router["command"]);
    let config_path = command
        .iter()
        .position(|a| a == "--config")
        .map(|i| command[i + 1].clone())
        .expect("routerd --config PATH");
    let mount = mount_of(&docs, router, "configMap", "routerd-config");
    assert_eq!(
        config_path,
        format!("{mount}/routerd.toml"),
        "routerd reads its config where the ConfigMap is mounted"
    );
    let tokens_mount = mount_of(&docs, router, "secret", "uwsgi-router-tokens");
    let config: toml::Table = toml_text.parse().expect("routerd.toml is TOML");
    let secret = find(&docs, "Secret", "uwsgi-router-tokens");
    for key in ["registry_token_files", "admin_token_files"] {
        let files = config["control"][key].as_array().expect(key);
        for f in files {
            let f = f.as_str().unwrap();
            let name = f
                .strip_prefix(&format!("{tokens_mount}/"))
                .unwrap_or_else(|| panic!("{key} {f} is not in the Secret's mount {tokens_mount}"));
            assert!(
                secret["stringData"][name].is_string(),
                "{key}: the Secret has no key {name}"
            );
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::create_dir(&tokens).unwrap();
    let local = toml_text.replace(
        &format!("{tokens_mount}/"),
        &format!("{}/", tokens.display()),
    );
    let conf = dir.path().join("routerd.toml");
    std::fs::write(&conf, &local).unwrap();
    for name in ["registry.token", "admin.token"] {
        std::fs::write(tokens.join(name), "0123456789abcdef0123456789abcdef\n").unwrap();
    }
    let out = check_config(&conf);
    assert!(
        out.status.success(),
        "routerd --check-config: {}",
        said(&out)
    );

    for name in ["registry.token", "admin.token"] {
        let placeholder = secret["stringData"][name].as_str().unwrap();
        std::fs::write(tokens.join(name), placeholder).unwrap();
    }
    let out = check_config(&conf);
    assert!(
        !out.status.success() && said(&out).contains("too short"),
        "the Secret's placeholder tokens must keep routerd from starting: {}",
        said(&out)
    );
}

/// Probes and Prometheus annotations use the metrics listener of routerd.toml, the agents find
/// the routers by the name of the StatefulSet's headless Service on the control port (soon
/// enough for a new router's readiness delay), and the sidecar's flags are a valid router-agent
/// configuration whose node and stats match uWSGI's.
#[test]
fn probes_scrapes_and_the_agent_sidecar_are_wired_to_the_routers() {
    let docs = all_documents();
    let config: toml::Table = find(&docs, "ConfigMap", "routerd-config")["data"]["routerd.toml"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let port_of = |key: &str| -> u64 {
        let listen = config[key]["listen"].as_str().unwrap();
        listen.rsplit_once(':').unwrap().1.parse().unwrap()
    };
    let (metrics, control) = (port_of("metrics"), port_of("control"));

    let sts = find(&docs, "StatefulSet", "uwsgi-router");
    let router = routerd_container(&docs);
    let named_port = |name: &str| -> u64 {
        router["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .and_then(|p| p["containerPort"].as_u64())
            .unwrap_or_else(|| panic!("no container port {name}"))
    };
    assert_eq!(named_port("metrics"), metrics);
    assert_eq!(named_port("control"), control);
    for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
        assert_eq!(router[probe]["httpGet"]["path"], path, "{probe}");
        assert_eq!(router[probe]["httpGet"]["port"], "metrics", "{probe}");
    }
    let annotations = &sts["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/port"], metrics.to_string());
    assert_eq!(annotations["prometheus.io/path"], "/metrics");

    let app = find(&docs, "Deployment", "mysite");
    let containers = app["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    let container = |name: &str| {
        containers
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no container {name} in mysite"))
    };
    let agent_args = strings(&container("router-agent")["command"]);
    let uwsgi_args = strings(&container("uwsgi")["command"]);
    let flag = |args: &[String], name: &str| -> String {
        args.iter()
            .find_map(|a| a.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name}= in {args:?}"))
            .to_owned()
    };

    let service = sts["spec"]["serviceName"].as_str().unwrap();
    let namespace = sts["metadata"]["namespace"].as_str().unwrap();
    let name = format!("{service}.{namespace}.svc");
    assert_eq!(
        flag(&agent_args, "--router"),
        format!("dns:///{name}:{control}"),
        "the agent must register with every router: each address of the headless Service"
    );
    let headless = find(&docs, "Service", service);
    assert_eq!(
        headless["spec"]["clusterIP"], "None",
        "{service} is headless"
    );
    assert_eq!(headless["spec"]["publishNotReadyAddresses"], true);

    let socket_port = flag(&uwsgi_args, "--socket")
        .rsplit_once(':')
        .unwrap()
        .1
        .to_owned();
    let node = flag(&agent_args, "--node");
    assert_eq!(
        node,
        format!("$(POD_IP):{socket_port}"),
        "the agent announces uWSGI's socket"
    );
    assert_eq!(flag(&agent_args, "--stats"), flag(&uwsgi_args, "--stats"));
    let agent_metrics = flag(&agent_args, "--metrics");
    let agent_port = agent_metrics.rsplit_once(':').unwrap().1;
    let pre_stop = strings(&container("uwsgi")["lifecycle"]["preStop"]["exec"]["command"]);
    assert!(
        pre_stop
            .iter()
            .any(|a| a.contains(&format!("(\"127.0.0.1\", {agent_port})"))),
        "uWSGI's preStop must wait for the agent's port {agent_port}: {pre_stop:?}"
    );

    // What the kubelet would run, with the downward API filled in, is a valid agent config.
    let filled: Vec<String> = agent_args
        .iter()
        .map(|a| {
            a.replace("$(POD_IP)", "10.1.2.3")
                .replace("$(POD_NAME)", "mysite-5d4f-x2")
                .replace("$(NODE_NAME)", "k8s-node-1")
        })
        .collect();
    let flags = Flags::try_parse_from(&filled).expect("router-agent accepts the sidecar's flags");
    let agent = AgentConfig::load(flags).expect("the sidecar's flags are a valid agent config");
    assert_eq!(agent.node, "10.1.2.3:3031");
    let [RouterTarget::Dns(routers)] = &agent.routers[..] else {
        panic!("one dns:/// name expected: {:?}", agent.routers);
    };
    assert_eq!(
        (routers.host.as_str(), u64::from(routers.port)),
        (name.as_str(), control)
    );
    // A new router becomes ready once the agents have found it: a re-resolve interval, the
    // cluster DNS's TTL (5 s) and an announce.
    let ready_after = router["readinessProbe"]["initialDelaySeconds"]
        .as_u64()
        .unwrap();
    let found_within = agent.router_resolve_interval.as_secs() + 5 + 1;
    assert!(
        ready_after >= found_within,
        "readinessProbe.initialDelaySeconds {ready_after} is shorter than the {found_within} s \
         the agents may take to find a new router"
    );
    let token_mount = mount_of(
        &docs,
        container("router-agent"),
        "secret",
        "uwsgi-router-tokens",
    );
    assert_eq!(
        agent.token_file.as_deref(),
        Some(Path::new(&format!("{token_mount}/registry.token")))
    );
}

/// kubernetes-validate: $KUBERNETES_VALIDATE, else the venv tests/run.sh makes.
fn validator() -> PathBuf {
    let path = std::env::var_os("KUBERNETES_VALIDATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_path("target/test-tools/bin/kubernetes-validate"));
    assert!(
        path.is_file(),
        "kubernetes-validate is not at {}: run `bash tests/run.sh`, which installs it (PyPI) \
         into target/test-tools, or set KUBERNETES_VALIDATE",
        path.display()
    );
    path
}

fn manifests() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_path("deploy/kubernetes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in deploy/kubernetes");
    files
}

/// Every document of every manifest, as JSON (PyYAML from the validator's venv reads them).
fn all_documents() -> Vec<Value> {
    let python = validator().with_file_name("python3");
    let script = "import json, sys, yaml\n\
                  docs = [d for f in sys.argv[1:] for d in yaml.safe_load_all(open(f)) if d]\n\
                  print(json.dumps(docs))\n";
    let out = run(Command::new(&python)
        .arg("-c")
        .arg(script)
        .args(manifests()));
    assert!(
        out.status.success(),
        "reading the manifests: {}",
        said(&out)
    );
    serde_json::from_slice::<Vec<Value>>(&out.stdout).expect("JSON of the manifests")
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in deploy/kubernetes"))
}

fn routerd_container(docs: &[Value]) -> &Value {
    find(docs, "StatefulSet", "uwsgi-router")["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "routerd")
        .expect("a routerd container")
}

/// Where `container` mounts the volume made from the `source` (configMap, secret) `name`.
fn mount_of(docs: &[Value], container: &Value, source: &str, name: &str) -> String {
    let name_key = if source == "secret" {
        "secretName"
    } else {
        "name"
    };
    let pod_specs = docs
        .iter()
        .filter_map(|d| d["spec"]["template"]["spec"]["volumes"].as_array());
    let volume = pod_specs
        .flatten()
        .find(|v| v[source][name_key] == name)
        .and_then(|v| v["name"].as_str())
        .unwrap_or_else(|| panic!("no volume from {source} {name}"));
    container["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["name"] == volume)
        .and_then(|m| m["mountPath"].as_str())
        .unwrap_or_else(|| panic!("{} does not mount {volume}", container["name"]))
        .trim_end_matches('/')
        .to_owned()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("a list of strings")
        .iter()
        .map(|s| s.as_str().expect("a string").to_owned())
        .collect()
}

fn check_config(path: &Path) -> Output {
    run(Command::new(env!("CARGO_BIN_EXE_routerd"))
        .arg("--check-config")
        .arg(path))
}
