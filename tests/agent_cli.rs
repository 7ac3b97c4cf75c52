//! router-agent's command line: bad token files and bad configs are refused at start with errors
//! that name the file or key.

mod agent_support;
mod support;

use std::process::Command;

use agent_support::{AgentSetup, FakeRegistry, FakeStats, AGENT};

#[tokio::test]
async fn a_missing_token_file_is_a_clear_error() {
    let stats = FakeStats::start("idle").await;
    let router = FakeRegistry::start().await;
    let setup = AgentSetup::new();
    std::fs::remove_file(&setup.token_file).unwrap();
    let out = Command::new(AGENT)
        .args(setup.args(&[router.url()], stats.addr, "127.0.0.1:3031", &[]))
        .output()
        .expect("run router-agent");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("token_file")
            && stderr.contains("registry.token")
            && stderr.contains("cannot read"),
        "{stderr}"
    );
    assert!(
        router.seen().is_empty(),
        "connected despite the bad token file"
    );
}

#[tokio::test]
async fn an_empty_token_file_is_a_clear_error() {
    let stats = FakeStats::start("idle").await;
    let setup = AgentSetup::new();
    std::fs::write(&setup.token_file, "\n   \n").unwrap();
    let out = Command::new(AGENT)
        .args(setup.args(
            &["http://127.0.0.1:9".into()],
            stats.addr,
            "127.0.0.1:3031",
            &[],
        ))
        .output()
        .expect("run router-agent");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("token_file") && stderr.contains("no token"),
        "{stderr}"
    );
}

#[tokio::test]
async fn config_errors_name_every_key() {
    let setup = AgentSetup::new();
    let file = setup.dir.path().join("agent.toml");
    std::fs::write(
        &file,
        "routers = [\"127.0.0.1:9032\"]\nnode = \"nowhere\"\nweight = 5000\n",
    )
    .unwrap();
    let out = Command::new(AGENT)
        .arg("--config")
        .arg(&file)
        .env_remove("ROUTER_AGENT_POOL")
        .output()
        .expect("run router-agent");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for key in ["routers[0]:", "pool:", "node:", "stats:", "weight:"] {
        assert!(stderr.contains(key), "{key} missing:\n{stderr}");
    }
}
