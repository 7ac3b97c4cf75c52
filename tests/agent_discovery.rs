//! router-agent finding its routers by DNS name: `--router dns:///routers.test:PORT` gives the node
//! a session on every address the name lists. When the name gains an address, that router gets
//! the node within the re-resolve interval; when it loses one, the node drains and leaves that
//! router; the other sessions stay as they were, and the agent is never restarted. Three
//! in-process routers listen on 127.0.0.2, .3 and .4 with one control port; the agent binary
//! resolves the name with the system resolver from a hosts file the test rewrites
//! (`agent_support::HostsFile`). Needs root, for the agent's mount namespace.

mod agent_support;
mod support;

use std::time::Duration;

use agent_support::{AgentSetup, FakeStats, HostsFile};
use support::ports::free_addr;
use support::process::Process;
use support::scrape::scrape_at;
use support::{start_router, wait_for, Behaviour, FakeNode, STEP};
use tokio::sync::broadcast;
use uwsgi_router::cluster::{ClusterEvent, LeaveReason};
use uwsgi_router::daemon::Daemon;

/// The name the routers are found by.
const NAME: &str = "routers.test";
/// The agent's re-resolve interval here.
const RESOLVE_EVERY: &str = "1s";
/// A change of the name reaches the routers within this: one re-resolve interval, a connect and
/// an announce (or a drain), and room for a loaded machine.
const NOTICED: Duration = Duration::from_secs(10);

/// A router of pool `web` whose control listener is `control`; `tls` adds its certificate.
async fn router(setup: &AgentSetup, control: &str, tls: &str) -> Daemon {
    start_router(&format!(
        "default_pool = \"web\"\n[pools.web]\nslow_start = \"0s\"\n\
         [control]\nlisten = \"{control}\"\nregistry_token_files = [\"{}\"]\n{tls}",
        setup.token_file.display()
    ))
    .await
}

/// Three routers on 127.0.0.2, .3 and .4, all on the control port the first one was given.
async fn three_routers(setup: &AgentSetup) -> (Vec<Daemon>, u16) {
    let first = router(setup, "127.0.0.2:0", "").await;
    let port = first.control_addr().unwrap().port();
    let mut routers = vec![first];
    for ip in ["127.0.0.3", "127.0.0.4"] {
        routers.push(router(setup, &format!("{ip}:{port}"), "").await);
    }
    (routers, port)
}

/// The agent for node n1 with `router`, re-resolving each [`RESOLVE_EVERY`], its metrics on
/// `metrics`, started with `hosts` as its /etc/hosts.
async fn agent(
    setup: &AgentSetup,
    hosts: &HostsFile,
    router: &str,
    metrics: &str,
    extra: &[&str],
) -> (FakeNode, FakeStats, Process) {
    let node = FakeNode::start("n1", Behaviour::Echo).await;
    let stats = FakeStats::start("idle").await;
    let mut flags = vec![
        "--node-id",
        "n1",
        "--router-resolve-interval",
        RESOLVE_EVERY,
        "--metrics",
        metrics,
    ];
    flags.extend_from_slice(extra);
    let routers = [router.to_owned()];
    let args = setup.args(&routers, stats.addr, &node.addr.to_string(), &flags);
    let agent = hosts.spawn_agent(setup.dir.path(), &args);
    (node, stats, agent)
}

/// Waits until each of `routers` has node n1 (an accepted announce).
async fn wait_registered(agent: &mut Process, routers: &[&Daemon], limit: Duration) {
    for r in routers {
        let control = r.control_addr().unwrap();
        let got = support::wait::within(limit, async || r.cluster().find("n1").map(drop)).await;
        if got.is_err() {
            agent.assert_running();
            panic!(
                "router {control} did not get the node within {limit:?}:\n{}",
                agent.log_tail(40)
            );
        }
    }
}

/// Why node n1 left, from the router's event stream.
async fn left_reason(events: &mut broadcast::Receiver<ClusterEvent>) -> LeaveReason {
    loop {
        match tokio::time::timeout(STEP, events.recv()).await {
            Ok(Ok(ClusterEvent::NodeLeft { node, reason, .. })) if &*node == "n1" => return reason,
            Ok(Ok(_)) => {}
            other => panic!("no NodeLeft for n1: {other:?}"),
        }
    }
}

/// One agent metric.
async fn agent_metric(addr: &str, name: &str) -> f64 {
    let scrape = scrape_at(addr.parse().unwrap()).await;
    scrape
        .get(name, &[])
        .unwrap_or_else(|| panic!("{name} missing from\n{}", scrape.text))
}

#[tokio::test]
async fn the_agent_follows_the_name_as_routers_are_added_and_removed() {
    let setup = AgentSetup::new();
    let (routers, port) = three_routers(&setup).await;
    let hosts = HostsFile::new(setup.dir.path(), NAME, &["127.0.0.2", "127.0.0.3"]);
    let metrics = free_addr().to_string();
    let name = format!("dns:///{NAME}:{port}");
    let (_node, _stats, mut agent) = agent(&setup, &hosts, &name, &metrics, &[]).await;

    // The name lists two routers: each gets the node, the third does not.
    wait_registered(&mut agent, &[&routers[0], &routers[1]], STEP).await;
    assert!(
        routers[2].cluster().find("n1").is_none(),
        "127.0.0.4 is not listed but has the node"
    );
    assert_eq!(
        agent_metric(&metrics, "uwsgi_router_agent_routers").await,
        2.0
    );

    // The name gains 127.0.0.4: that router gets the node at the next resolution.
    hosts.set(NAME, &["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
    wait_registered(&mut agent, &[&routers[2]], NOTICED).await;
    assert_eq!(
        agent_metric(&metrics, "uwsgi_router_agent_routers").await,
        3.0
    );

    // The name loses 127.0.0.2: the node drains there and leaves (not a lease running out).
    let mut events = routers[0].cluster().events().subscribe();
    hosts.set(NAME, &["127.0.0.3", "127.0.0.4"]);
    let gone = support::wait::within(NOTICED, async || {
        routers[0].cluster().find("n1").is_none().then_some(())
    })
    .await;
    assert!(
        gone.is_ok(),
        "127.0.0.2 still has the node {NOTICED:?} after leaving the name:\n{}",
        agent.log_tail(40)
    );
    let reason = left_reason(&mut events).await;
    assert!(
        matches!(reason, LeaveReason::Drained | LeaveReason::AgentLeft(_)),
        "the node left 127.0.0.2 by {reason:?}, not gracefully"
    );
    agent
        .wait_log("router no longer listed: draining the node there", 1, STEP)
        .await;
    assert_eq!(
        agent_metric(&metrics, "uwsgi_router_agent_routers").await,
        2.0
    );

    // The other sessions were left alone: three announces in all, one per router, and the node
    // is still on both.
    assert_eq!(
        agent_metric(&metrics, "uwsgi_router_agent_announces_total").await,
        3.0
    );
    for r in &routers[1..] {
        assert!(
            r.cluster().find("n1").is_some(),
            "a listed router lost the node"
        );
    }
    agent.assert_running();

    // SIGTERM drains and leaves the two routers listed now.
    let status = agent.stop_async("TERM", STEP).await;
    assert!(status.success(), "{status}:\n{}", agent.log_tail(40));
    for r in &routers {
        assert!(
            r.cluster().find("n1").is_none(),
            "the node is still registered"
        );
    }
}

#[tokio::test]
async fn a_dns_https_name_verifies_each_router_against_the_name() {
    let setup = AgentSetup::new();
    let dir = setup.dir.path();
    // A certificate for the name only: the agent connects to 127.0.0.2, which it does not cover,
    // so the session is up only if the name is what the agent verifies.
    support::tls::make_certs_for(dir, "agent", &format!("DNS:{NAME}"));
    let p = |f: &str| dir.join(f).display().to_string();
    let tls = format!(
        "tls_cert = \"{}\"\ntls_key = \"{}\"\n",
        p("router.pem"),
        p("router.key")
    );
    let router = router(&setup, "127.0.0.2:0", &tls).await;
    let port = router.control_addr().unwrap().port();
    let hosts = HostsFile::new(dir, NAME, &["127.0.0.2"]);
    let metrics = free_addr().to_string();
    let name = format!("dns+https:///{NAME}:{port}");
    let ca = p("ca.pem");
    let (_node, _stats, mut agent) =
        agent(&setup, &hosts, &name, &metrics, &["--tls-ca", &ca]).await;

    wait_registered(&mut agent, &[&router], STEP).await;
    let status = agent.stop_async("TERM", STEP).await;
    assert!(status.success(), "{status}:\n{}", agent.log_tail(40));
    assert!(router.cluster().find("n1").is_none(), "drained and gone");
}

#[tokio::test]
async fn a_name_that_stops_resolving_keeps_its_routers() {
    let setup = AgentSetup::new();
    let (routers, port) = three_routers(&setup).await;
    let hosts = HostsFile::new(setup.dir.path(), NAME, &["127.0.0.2", "127.0.0.3"]);
    let metrics = free_addr().to_string();
    let name = format!("dns:///{NAME}:{port}");
    let (_node, _stats, mut agent) = agent(&setup, &hosts, &name, &metrics, &[]).await;
    wait_registered(&mut agent, &[&routers[0], &routers[1]], STEP).await;

    // The name is gone from the hosts file, and a name under .test has no DNS answer: each
    // resolution fails, and the agent keeps both routers.
    hosts.set(NAME, &[]);
    wait_for("a failed resolution", STEP, async || {
        let failures =
            agent_metric(&metrics, "uwsgi_router_agent_router_resolve_failures_total").await;
        (failures >= 2.0).then_some(())
    })
    .await;
    agent
        .wait_log(
            "cannot resolve the routers' name; keeping the routers it gave last",
            1,
            STEP,
        )
        .await;
    assert_eq!(
        agent_metric(&metrics, "uwsgi_router_agent_routers").await,
        2.0
    );
    for r in &routers[..2] {
        assert!(r.cluster().find("n1").is_some(), "a router was dropped");
    }

    // Back in the file with a third address: the agent follows again.
    hosts.set(NAME, &["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
    wait_registered(&mut agent, &[&routers[2]], NOTICED).await;
    agent
        .wait_log("the routers' name resolves again", 1, STEP)
        .await;
    let status = agent.stop_async("TERM", STEP).await;
    assert!(status.success(), "{status}:\n{}", agent.log_tail(40));
}
