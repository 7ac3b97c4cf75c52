//! router-agent against a real in-process routerd: the node it announces takes traffic, its
//! reports reach the node's load, it leaves when uWSGI stops answering, comes back to a restarted
//! routerd process, and drains away on shutdown.

mod agent_support;
mod support;

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use agent_support::{AgentSetup, FakeStats};
use support::binary::Routerd;
use support::{control_url, get, node_of, send, start_router, wait_answer, Behaviour, FakeNode};
use support::{wait_until, STEP};
use tokio::time::Instant;
use uwsgi_router::agent::Agent;
use uwsgi_router::daemon::Daemon;

/// A router whose pool `web` starts empty and takes nodes at full weight at once.
async fn router(setup: &AgentSetup, control: &str) -> Daemon {
    start_router(&format!(
        "default_pool = \"web\"\n[pools.web]\nslow_start = \"0s\"\n\
         [control]\nlisten = \"{control}\"\nregistry_token_files = [\"{}\"]\n",
        setup.token_file.display()
    ))
    .await
}

/// Node n1 (a fake uwsgi node), its stats server serving fixture `stats`, and an in-process
/// agent announcing it to `routers`.
async fn node_with_agent(
    setup: &AgentSetup,
    routers: &[String],
    stats: &str,
) -> (FakeNode, FakeStats, Agent) {
    let node = FakeNode::start("n1", Behaviour::Echo).await;
    let stats = FakeStats::start(stats).await;
    let extra = ["--node-id", "n1"];
    let config = setup.config(routers, stats.addr, &node.addr.to_string(), &extra);
    (node, stats, Agent::start(config).unwrap())
}

/// Sends requests to a router listener until one is answered by `node` (or, with `None`, until
/// one gets a 503).
async fn wait_served_by(addr: &str, node: Option<&str>) {
    let what = format!("answers from {node:?}");
    wait_answer(addr, "app.example.com", &what, |r| match node {
        Some(n) => r.status == 200 && node_of(r) == n,
        None => r.status == 503,
    })
    .await;
}

#[tokio::test]
async fn an_announced_node_takes_traffic_and_drains_away_on_shutdown() {
    let setup = AgentSetup::new();
    let router = router(&setup, "127.0.0.1:0").await;
    let (_node, stats, agent) = node_with_agent(&setup, &[control_url(&router)], "idle").await;
    wait_served_by(&router.local_addrs()[0], Some("n1")).await;

    // Reports reach the router's view of the node.
    stats.set("queued");
    wait_until("the router to see the reported load", || {
        router.cluster().find("n1").is_some_and(|(_, n)| {
            n.reported_load().map_or(0, |l| l.busy) == 2
                && n.reported_load().map_or(0, |l| l.queue) == 61
        })
    })
    .await;

    // Nothing in flight: the router answers Drained at once, so shutdown does not wait for the
    // drain timeout (5 s), and the node is gone afterwards.
    let started = Instant::now();
    agent.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "shutdown took {:?}",
        started.elapsed()
    );
    assert!(
        router.cluster().find("n1").is_none(),
        "the node is still in the pool"
    );
    wait_served_by(&router.local_addrs()[0], None).await;
}

#[tokio::test]
async fn shutdown_waits_for_requests_in_flight_before_leaving() {
    let setup = AgentSetup::new();
    let router = router(&setup, "127.0.0.1:0").await;
    let (node, _stats, agent) = node_with_agent(&setup, &[control_url(&router)], "idle").await;
    let addr = router.local_addrs()[0].clone();
    wait_served_by(&addr, Some("n1")).await;

    // A slow request is in flight when the agent is told to stop.
    node.set_behaviour(Behaviour::Slow(Duration::from_millis(800)));
    let served = node.served();
    let slow = tokio::spawn({
        let addr = addr.clone();
        async move { send(&addr, &get("app.example.com", "/slow"), b"").await }
    });
    wait_until("the slow request to reach the node", || {
        node.served() > served
    })
    .await;
    let started = Instant::now();
    agent.shutdown().await;
    let took = started.elapsed();
    let r = slow.await.unwrap();
    assert_eq!(r.status, 200, "the request in flight failed: {}", r.text());
    assert!(
        took >= Duration::from_millis(500),
        "left after {took:?}, with a request in flight"
    );
    assert!(
        took < Duration::from_secs(4),
        "waited {took:?}: Drained never came"
    );
    wait_served_by(&addr, None).await;
}

#[tokio::test]
async fn the_node_leaves_when_uwsgi_stops_answering_and_returns_with_it() {
    let setup = AgentSetup::new();
    let router = router(&setup, "127.0.0.1:0").await;
    let (_node, stats, agent) = node_with_agent(&setup, &[control_url(&router)], "idle").await;
    wait_served_by(&router.local_addrs()[0], Some("n1")).await;

    stats.stop().await;
    let stopped = Instant::now();
    wait_until("the node's lease to run out", || {
        router.cluster().find("n1").is_none()
    })
    .await;
    // The lease is three 100 ms intervals, bounded by the router to at least 1 s.
    assert!(
        stopped.elapsed() < Duration::from_secs(5),
        "left after {:?}",
        stopped.elapsed()
    );

    stats.resume().await;
    wait_served_by(&router.local_addrs()[0], Some("n1")).await;
    agent.shutdown().await;
}

#[tokio::test]
async fn a_restarted_routerd_gets_the_node_back() {
    let setup = AgentSetup::new();
    let body = |control: &str| {
        format!(
            "default_pool = \"web\"\n[pools.web]\nslow_start = \"0s\"\n[metrics]\nlisten = \"\"\n\
             [control]\nlisten = \"{control}\"\nregistry_token_files = [\"{}\"]\n",
            setup.token_file.display()
        )
    };
    let mut first = Routerd::start(&body("127.0.0.1:0")).await;
    let control = first.control_addr().await.to_string();
    let routers = [format!("http://{control}")];
    let (_node, _stats, agent) = node_with_agent(&setup, &routers, "idle").await;
    wait_served_by(&first.addr, Some("n1")).await;

    // The router process goes away (its sockets with it) and comes back on the same port.
    first.signal("TERM");
    assert!(
        first.wait_exit(STEP).await.is_some(),
        "routerd did not exit"
    );
    wait_until("the agent to notice", || {
        agent.counters().connected_routers.load(Relaxed) == 0
    })
    .await;
    let second = Routerd::start(&body(&control)).await;
    wait_served_by(&second.addr, Some("n1")).await;
    assert!(agent.counters().announces.load(Relaxed) >= 2);
    agent.shutdown().await;
}

#[tokio::test]
async fn one_agent_feeds_two_routers_and_drains_on_both() {
    let setup = AgentSetup::new();
    let (r1, r2) = (
        router(&setup, "127.0.0.1:0").await,
        router(&setup, "127.0.0.1:0").await,
    );
    let routers = [control_url(&r1), control_url(&r2)];
    let (_node, _stats, agent) = node_with_agent(&setup, &routers, "queued").await;
    // Each router has its own soft state, fed by the same agent.
    for r in [&r1, &r2] {
        wait_served_by(&r.local_addrs()[0], Some("n1")).await;
        wait_until("each router to see the reported load", || {
            r.cluster()
                .find("n1")
                .is_some_and(|(_, n)| n.reported_load().map_or(0, |l| l.queue) == 61)
        })
        .await;
    }
    agent.shutdown().await;
    for r in [&r1, &r2] {
        assert!(
            r.cluster().find("n1").is_none(),
            "drained and gone on every router"
        );
        wait_served_by(&r.local_addrs()[0], None).await;
    }
}
