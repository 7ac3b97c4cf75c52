//! router-agent's active check: a real uwsgi GET to the node each interval; while it fails
//! (error status, refused connection, no answer in time) the node is not reported.

mod agent_support;
mod support;

use std::sync::atomic::Ordering::Relaxed;

use agent_support::{AgentSetup, FakeRegistry, FakeStats, Seen};
use support::{Behaviour, FakeNode};
use uwsgi_router::agent::Agent;
use uwsgi_router::protocol::{parse_packet, MAX_VARS_SIZE};

/// Sessions that ended so far.
fn closed(router: &FakeRegistry) -> usize {
    router
        .seen()
        .iter()
        .filter(|e| matches!(e, Seen::Closed { .. }))
        .count()
}

#[tokio::test]
async fn a_failing_active_check_stops_reports_until_it_passes() {
    let stats = FakeStats::start("idle").await;
    let node = FakeNode::start("n1", Behaviour::Echo).await;
    let router = FakeRegistry::start().await;
    let setup = AgentSetup::new();
    let extra = [
        "--health-path",
        "/healthz?deep=1",
        "--health-host",
        "app.example.com",
    ];
    let agent =
        Agent::start(setup.config(&[router.url()], stats.addr, &node.addr.to_string(), &extra))
            .unwrap();
    router
        .wait_report("a report while the check passes", |_| true)
        .await;

    // The check is the request nginx would send.
    let raw = node.last_request.lock().unwrap().clone();
    let (_, vars, _) = parse_packet(&raw, MAX_VARS_SIZE).expect("a valid uwsgi packet");
    for (key, value) in [
        ("REQUEST_METHOD", "GET"),
        ("REQUEST_URI", "/healthz?deep=1"),
        ("PATH_INFO", "/healthz"),
        ("QUERY_STRING", "deep=1"),
        ("SERVER_NAME", "app.example.com"),
        ("SERVER_PORT", "80"),
        ("HTTP_HOST", "app.example.com"),
        ("REMOTE_ADDR", "127.0.0.1"),
    ] {
        assert_eq!(vars.get(key.as_bytes()), Some(value.as_bytes()), "{key}");
    }

    // An error status: the session ends; a pass again: re-announced.
    node.set_behaviour(Behaviour::Status(500));
    router
        .wait("the session to end on 500", |_| closed(&router) >= 1)
        .await;
    assert!(agent.counters().health_failures.load(Relaxed) >= 1);
    node.set_behaviour(Behaviour::Status(302));
    router.wait_announces(2).await;

    // No answer in time counts as failing too.
    node.set_behaviour(Behaviour::Hang);
    router
        .wait("the session to end on a timeout", |_| closed(&router) >= 2)
        .await;
    node.set_behaviour(Behaviour::Echo);
    router.wait_announces(3).await;

    // Nothing listening on the node's socket.
    node.stop();
    router
        .wait("the session to end when refused", |_| closed(&router) >= 3)
        .await;
    agent.shutdown().await;
}
