//! router-agent's shutdown: Drain on every router, wait for Drained (bounded by the drain timeout),
//! Leave, exit 0; as a library call and as the binary receiving SIGTERM.

mod agent_support;
mod support;

use std::time::Duration;

use agent_support::{AgentSetup, FakeRegistry, FakeStats, Fakes};
use support::{wait_until, STEP};
use tokio::time::Instant;
use uwsgi_router::agent::Agent;
use uwsgi_router::api::node_message::Msg;

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
    let fakes = Fakes::start("busy").await;
    let router = &fakes.router;
    router.script(|s| s.answer_drain = false);
    let agent = fakes.reporting_agent(&["--drain-timeout", "700ms"]).await;
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
        drain_then_leave(router),
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
    let args = setup.args(&[a.url(), b.url()], stats.addr, "127.0.0.1:3031", &[]);
    let mut agent = setup.spawn_agent(&args);
    for r in [&a, &b] {
        r.wait_report("a report from the binary", |_| true).await;
    }
    wait_until("signal handlers", || agent.signals_caught().unwrap_or(true)).await;

    // A stray SIGHUP (systemctl reload, a closed terminal) must not stop the agent undrained.
    agent.signal("HUP");
    wait_until("the SIGHUP to be logged", || {
        agent.log().contains("SIGHUP ignored")
    })
    .await;
    assert!(
        agent.try_exit().is_none(),
        "SIGHUP stopped the agent:\n{}",
        agent.log()
    );

    let status = agent.stop_async("TERM", STEP).await;
    let log = || agent.log();
    assert!(status.success(), "exit status {status}:\n{}", log());
    for r in [&a, &b] {
        assert_eq!(drain_then_leave(r), ["drain", "leave"], "{}", log());
    }
    let log = log();
    for line in ["connected: node accepted", "draining", "drained", "exit"] {
        assert!(log.contains(line), "no {line:?} in the log:\n{log}");
    }
}
