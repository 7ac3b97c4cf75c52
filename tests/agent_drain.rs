//! router-agent's shutdown: Drain on every router, wait for Drained (bounded by the drain timeout),
//! Leave, exit 0; as a library call and as the binary receiving SIGTERM.

mod agent_support;
mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use agent_support::{AgentSetup, FakeRegistry, FakeStats};
use support::{wait_until, STEP};
use tokio::time::Instant;
use uwsgi_router::agent::Agent;
use uwsgi_router::api::node_message::Msg;

const AGENT: &str = env!("CARGO_BIN_EXE_router-agent");

/// The order of Drain, Leave in what `router` received after the first announce.
fn drain_then_leave(router: &FakeRegistry) -> Vec<&'static str> {
    router
        .messages()
        .into_iter()
        .filter_map(|(_, m)| match m {
            Msg::Drain(d) => {
                assert_eq!(d.reason, "agent stopping");
                Some("drain")
            }
            Msg::Leave(_) => Some("leave"),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn shutdown_drains_every_router_then_leaves() {
    let stats = FakeStats::start("busy").await;
    let (a, b) = (FakeRegistry::start().await, FakeRegistry::start().await);
    let setup = AgentSetup::new();
    let agent =
        Agent::start(setup.config(&[a.url(), b.url()], stats.addr, "127.0.0.1:3031", &[])).unwrap();
    for r in [&a, &b] {
        r.wait_report("a first report", |_| true).await;
    }
    tokio::time::timeout(STEP, agent.shutdown())
        .await
        .expect("shutdown finishes");
    for r in [&a, &b] {
        assert_eq!(drain_then_leave(r), ["drain", "leave"]);
        assert_eq!(r.closed(), 1, "the session ended after Leave");
    }
}

#[tokio::test]
async fn drain_timeout_bounds_shutdown_when_drained_never_comes() {
    let stats = FakeStats::start("busy").await;
    let router = FakeRegistry::start().await;
    router.script(|s| s.answer_drain = false);
    let setup = AgentSetup::new();
    let config = setup.config(
        &[router.url()],
        stats.addr,
        "127.0.0.1:3031",
        &["--drain-timeout", "700ms"],
    );
    let agent = Agent::start(config).unwrap();
    router.wait_report("a first report", |_| true).await;
    let reports_before = router.reports().len();
    let started = Instant::now();
    agent.shutdown().await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(700),
        "left after {took:?}, before the drain timeout"
    );
    assert!(took < Duration::from_secs(4), "shutdown took {took:?}");
    assert_eq!(
        drain_then_leave(&router),
        ["drain", "leave"],
        "Leave even without Drained"
    );
    assert!(
        router.reports().len() > reports_before,
        "reports kept the lease while draining"
    );
}

#[tokio::test]
async fn sigterm_drains_then_exits_zero() {
    let stats = FakeStats::start("idle").await;
    let (a, b) = (FakeRegistry::start().await, FakeRegistry::start().await);
    let setup = AgentSetup::new();
    let log_path = setup.dir.path().join("agent.log");
    let mut child = Command::new(AGENT)
        .args(setup.args(&[a.url(), b.url()], stats.addr, "127.0.0.1:3031", &[]))
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .expect("spawn router-agent");
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    for r in [&a, &b] {
        r.wait_report("a report from the binary", |_| true).await;
    }
    wait_until("signal handlers", || term_caught(child.id())).await;

    // A stray SIGHUP (systemctl reload, a closed terminal) must not stop the agent undrained.
    let hup = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    wait_until("the SIGHUP to be logged", || {
        log().contains("SIGHUP ignored")
    })
    .await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "SIGHUP stopped the agent:\n{}",
        log()
    );

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + STEP;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "router-agent did not exit:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(status.success(), "exit status {status}:\n{}", log());
    for r in [&a, &b] {
        assert_eq!(drain_then_leave(r), ["drain", "leave"], "{}", log());
    }
    let log = log();
    for line in ["connected: node accepted", "draining", "drained", "exit"] {
        assert!(log.contains(line), "no {line:?} in the log:\n{log}");
    }
}

/// Whether process `pid` has handlers for SIGHUP, SIGINT and SIGTERM (bits 1, 2 and 15 of /proc's
/// `SigCgt`).
fn term_caught(pid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return true;
    };
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        .unwrap_or(0);
    let wanted = (1 << 0) | (1 << 1) | (1 << 14);
    mask & wanted == wanted
}
