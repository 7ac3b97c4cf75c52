//! router-agent's sessions with routers: what it announces, that it reports the node's load every
//! interval, and how it follows uWSGI, routers and refusals going away and coming back.

mod agent_support;
mod support;

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use agent_support::{AgentSetup, FakeRegistry, FakeStats, Fakes, Seen, INTERVAL, TOKEN};
use support::wait_until;
use tokio::time::Instant;
use uwsgi_router::agent::Agent;
use uwsgi_router::api::{node_message::Msg, router_message, DrainRequested, RejectCode, Removed};

#[tokio::test]
async fn announces_the_node_then_reports_its_load_every_interval() {
    let fakes = Fakes::start("idle").await;
    let router = &fakes.router;
    let stats = &fakes.stats;
    let agent = fakes.start_agent(&["--node-id", "app-1"]);

    router.wait_announces(1).await;
    let a = &router.announces()[0];
    assert_eq!(a.node_id, "app-1");
    assert_eq!(a.pool, "web");
    assert_eq!(a.address, "127.0.0.1:3031");
    assert_eq!(a.capacity, 2, "two workers in the stats");
    assert_eq!(a.weight, 5);
    assert_eq!(a.labels.get("zone").map(String::as_str), Some("test"));
    assert_eq!(a.report_interval_ms, 100);
    assert!(a.version.starts_with("router-agent "), "{}", a.version);
    let auth = router.seen().into_iter().find_map(|s| match s {
        Seen::Call { authorization } => authorization,
        _ => None,
    });
    assert_eq!(
        auth,
        Some(format!("Bearer {TOKEN}")),
        "token file's first line, trimmed"
    );

    router
        .wait_report("an idle report", |r| {
            r.idle_workers == 2 && r.busy_workers == 0
        })
        .await;
    stats.set("busy");
    router
        .wait_report("a busy report", |r| {
            r.busy_workers == 2 && r.idle_workers == 0
        })
        .await;
    stats.set("queued");
    router
        .wait_report("a queued report", |r| {
            r.listen_queue == 61 && r.requests_total == 387 && r.avg_response_time_us == 21965
        })
        .await;

    // Cadence: about one report per interval, never a gap near the lease (3 intervals, >= 1 s).
    // Over the next 15 reports: 75 to 300 ms apart on average (5 to 20 reports in 1.5 s).
    let start = router.reports().len();
    let reports = router.wait_reports(start + 15).await;
    let next: Vec<Instant> = reports[start..start + 15].iter().map(|r| r.1).collect();
    let mean = (next[14] - next[0]) / 14;
    assert!(
        (Duration::from_millis(75)..=Duration::from_millis(300)).contains(&mean),
        "reports {mean:?} apart on average at a {INTERVAL:?} interval"
    );
    let max_gap = next.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(
        max_gap < Duration::from_millis(900),
        "a {max_gap:?} gap between reports"
    );
    assert!(agent.counters().reports_sent.load(Relaxed) >= reports.len() as u64);
    assert_eq!(agent.counters().connected_routers.load(Relaxed), 1);
    agent.shutdown().await;
}

#[tokio::test]
async fn stats_down_ends_the_session_and_stats_back_re_announces() {
    let fakes = Fakes::start("idle").await;
    let (stats, router) = (&fakes.stats, &fakes.router);
    let agent = fakes.reporting_agent(&[]).await;

    stats.stop().await;
    router.wait_closed(1).await;
    let reports_at_stop = router.reports().len();
    let errors_at_stop = agent.counters().stats_errors.load(Relaxed);
    assert!(errors_at_stop >= 1);
    assert_eq!(agent.counters().connected_routers.load(Relaxed), 0);
    // While uWSGI is down: no session, no report, no announce, over five more failed reads.
    wait_until("five more failed reads of the stats", || {
        agent.counters().stats_errors.load(Relaxed) >= errors_at_stop + 5
    })
    .await;
    assert_eq!(
        router.reports().len(),
        reports_at_stop,
        "reports while the stats were down"
    );
    assert_eq!(router.announces().len(), 1);

    stats.resume().await;
    router.wait_announces(2).await;
    router.wait_report_on_session(1).await;
    agent.shutdown().await;
}

#[tokio::test]
async fn malformed_stats_count_as_down() {
    let fakes = Fakes::start("idle").await;
    let (stats, router) = (&fakes.stats, &fakes.router);
    let agent = fakes.reporting_agent(&[]).await;
    let full = agent_support::fixture("busy");
    stats.set_raw(&full[..full.len() / 3]);
    router.wait_closed(1).await;
    stats.set("busy");
    router.wait_announces(2).await;
    router
        .wait_report("a busy report", |r| r.busy_workers == 2)
        .await;
    agent.shutdown().await;
}

#[tokio::test]
async fn router_restart_reconnects_and_re_announces() {
    let fakes = Fakes::start("idle").await;
    let addr = fakes.router.addr;
    let agent = fakes.reporting_agent(&[]).await;
    // The stats and the token file stay; the router goes.
    let Fakes {
        router,
        stats: _stats,
        setup: _setup,
    } = fakes;

    router.stop().await;
    wait_until("the agent to notice", || {
        agent.counters().connected_routers.load(Relaxed) == 0
    })
    .await;
    let restarted = FakeRegistry::start_at(addr).await;
    restarted.wait_announces(1).await;
    restarted
        .wait_report("a report after the restart", |_| true)
        .await;
    assert_eq!(restarted.announces()[0].node_id, "127.0.0.1:3031");
    agent.shutdown().await;
}

#[tokio::test]
async fn every_router_gets_its_own_session_and_reports() {
    let stats = FakeStats::start("busy").await;
    let (a, b) = (FakeRegistry::start().await, FakeRegistry::start().await);
    // A third router that is down must not hold the others up.
    let down_url = format!("http://{}", support::ports::free_addr());
    let setup = AgentSetup::new();
    let routers = [a.url(), down_url, b.url()];
    let agent = Agent::start(setup.config(&routers, stats.addr, "127.0.0.1:3031", &[])).unwrap();
    for r in [&a, &b] {
        r.wait_announces(1).await;
        r.wait_report("a busy report", |r| r.busy_workers == 2)
            .await;
    }
    wait_until("two connected routers", || {
        agent.counters().connected_routers.load(Relaxed) == 2
    })
    .await;
    let started = Instant::now();
    agent.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        started.elapsed()
    );
}

/// On tokio's paused clock: the backoff's seconds pass as soon as nothing else is to be done.
#[tokio::test(start_paused = true)]
async fn refused_announces_are_retried_with_backoff() {
    let fakes = Fakes::start("idle").await;
    let router = &fakes.router;
    router.script(|s| s.reject.push_back(RejectCode::UnknownPool));
    let agent = fakes.reporting_agent(&[]).await;
    let announces: Vec<Instant> = router
        .seen()
        .into_iter()
        .filter_map(|s| match s {
            Seen::Msg {
                msg: Msg::Announce(_),
                at,
                ..
            } => Some(at),
            _ => None,
        })
        .collect();
    assert_eq!(announces.len(), 2, "a refusal, then accepted");
    // A refusal waits at the top of the backoff: 5 s ± 20%.
    let gap = announces[1] - announces[0];
    assert!(gap >= Duration::from_secs(4), "retried after {gap:?}");
    assert_eq!(agent.counters().rejections.load(Relaxed), 1);
    agent.shutdown().await;
}

/// On tokio's paused clock, so that the wait covers the whole backoff in no time.
#[tokio::test(start_paused = true)]
async fn an_invalid_announce_is_not_retried() {
    let fakes = Fakes::start("idle").await;
    let (stats, router) = (&fakes.stats, &fakes.router);
    router.script(|s| s.reject.extend([RejectCode::Invalid]));
    let agent = fakes.start_agent(&[]);
    router.wait_announces(1).await;
    wait_until("the refusal to be counted", || {
        agent.counters().rejections.load(Relaxed) == 1
    })
    .await;
    // A retry would come at the top of the backoff (5 s ± 20%): over 70 more intervals (the
    // agent reads the stats once in each, 7 s on the paused clock) it announces nothing.
    stats.wait_reads(stats.reads(), 70).await;
    assert_eq!(
        router.announces().len(),
        1,
        "re-sent an announce the router called invalid"
    );
    let started = Instant::now();
    agent.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_bad_token_is_refused_and_retried() {
    let fakes = Fakes::start("idle").await;
    let router = &fakes.router;
    std::fs::write(&fakes.setup.token_file, "wrong-token\n").unwrap();
    let agent = fakes.start_agent(&[]);
    router
        .wait("two refused calls", |s| {
            s.iter().filter(|e| matches!(e, Seen::Call { .. })).count() >= 2
        })
        .await;
    assert!(router.announces().is_empty());
    assert_eq!(agent.counters().connected_routers.load(Relaxed), 0);
    agent.shutdown().await;
}

#[tokio::test]
async fn a_removed_node_is_re_announced() {
    let fakes = Fakes::start("idle").await;
    let router = &fakes.router;
    let agent = fakes.reporting_agent(&[]).await;
    router
        .send_all(router_message::Msg::Removed(Removed {
            reason: "lease expired".into(),
        }))
        .await;
    router.wait_announces(2).await;
    router.wait_report_on_session(1).await;
    agent.shutdown().await;
}

#[tokio::test]
async fn an_operator_drain_holds_until_uwsgi_restarts() {
    let fakes = Fakes::start("idle").await;
    let (stats, router) = (&fakes.stats, &fakes.router);
    let agent = fakes.reporting_agent(&[]).await;
    router
        .send_all(router_message::Msg::DrainRequested(DrainRequested {
            reason: "maintenance".into(),
        }))
        .await;
    // The router ends a drained node's session; the agent must not bring the node back.
    router
        .send_all(router_message::Msg::Removed(Removed {
            reason: "drained".into(),
        }))
        .await;
    router.wait_closed(1).await;
    // Ten more intervals in which the agent reads uWSGI up, under the same pid.
    stats.wait_reads(stats.reads(), 10).await;
    assert_eq!(
        router.announces().len(),
        1,
        "re-announced a node an operator drained"
    );

    // uWSGI restarted (a new master pid): the node is announced again.
    let restarted = String::from_utf8(agent_support::fixture("idle"))
        .unwrap()
        .replacen("\"pid\":", "\"pid\":1", 1);
    stats.set_raw(restarted.as_bytes());
    router.wait_announces(2).await;
    agent.shutdown().await;
}

#[tokio::test]
async fn a_router_expecting_faster_reports_gets_them() {
    let fakes = Fakes::start("idle").await;
    fakes.router.script(|s| s.report_interval_ms = 100);
    let agent = fakes.reporting_agent(&["--interval", "1s"]).await;
    let (start, since) = (fakes.router.reports().len(), Instant::now());
    // Stats are read every second, but the router's lease wants a report every 100 ms: the
    // seventh report after now arrives within 1.5 s.
    let reports = fakes.router.wait_reports(start + 7).await;
    let seventh = reports[start + 6].1 - since;
    assert!(
        seventh <= Duration::from_millis(1500),
        "7 reports took {seventh:?} for a router expecting one per 100 ms"
    );
    agent.shutdown().await;
}
