//! Issue #3 on the real stack: nginx -> routerd -> three uWSGI nodes running the demo Django
//! site, each registered by its own `router-agent` (no static nodes in routerd's config). The
//! agents join their nodes to the pool; a rolling restart (stop the agent, which drains the node,
//! then uWSGI, then start both again, one node at a time) costs browsers no failed request; and a
//! node whose host dies (agent and uWSGI SIGKILLed) leaves the pool when its lease runs out, with
//! no failed request beyond those it was serving. Needs nginx, uWSGI and Django: `bash
//! tests/run.sh` installs them. `--nocapture` shows the numbers of each phase.

#[path = "real_stack_agents/admin.rs"]
mod admin;
#[allow(dead_code)]
#[path = "real_stack/http.rs"]
mod http;
#[path = "real_stack_agents/load.rs"]
mod load;
#[allow(dead_code)]
#[path = "real_stack/nginx.rs"]
mod nginx;
#[path = "real_stack_agents/node.rs"]
mod node;
#[allow(dead_code)]
#[path = "real_stack_agents/router.rs"]
mod router;
#[path = "real_stack_agents/stack.rs"]
mod stack;
mod support;

use std::time::{Duration, Instant};

use load::Load;
use node::Node;
use stack::{Stack, IDS};
use support::wait;

/// The site's host name, as a browser would send it.
const HOST: &str = "shop.example.test";
/// Load clients, each with one request at a time.
const CLIENTS: usize = 4;
/// Bounds of one phase's load: requests per client and duration.
const MAX_REQUESTS_EACH: usize = 20_000;
const MAX_LOAD_TIME: Duration = Duration::from_secs(50);
/// A killed node must be out of the pool within this long: its lease is 1 s (three 250 ms
/// report intervals, at least 1 s) from its last report, plus routerd's 100 ms maintenance tick.
const MAX_REMOVAL: Duration = Duration::from_secs(2);

#[test]
fn agents_join_roll_without_failed_requests_and_a_killed_node_leaves() {
    let started = Instant::now();
    let mut stack = Stack::start();
    eprintln!(
        "stack up (routerd, nginx, 3 uWSGI + Django) in {:?}",
        started.elapsed()
    );
    agents_join_and_share_the_traffic(&mut stack);
    rolling_restart_fails_no_request(&mut stack);
    killed_node_leaves_within_its_lease(&mut stack);
    eprintln!("whole test: {:?}", started.elapsed());
}

/// Check 1: each agent registers its node; the router lists all three as registered, reporting
/// their two workers, and requests through nginx reach every node.
fn agents_join_and_share_the_traffic(stack: &mut Stack) {
    let started = Instant::now();
    for node in &mut stack.nodes {
        node.start_agent();
    }
    let joined = stack.wait_for("all three nodes registered", Duration::from_secs(20), |s| {
        let nodes = s.admin.nodes().ok()?;
        let ids: Vec<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
        IDS.iter().all(|id| ids.contains(id)).then_some(nodes)
    });
    let time_to_join = started.elapsed();
    assert_eq!(joined.len(), 3, "pool default: {joined:?}");
    for node in &stack.nodes {
        let info = joined.iter().find(|n| n.id == node.id).unwrap();
        assert_eq!(info.source, "registered", "{info:?}");
        assert_eq!(info.address, node.addr.to_string(), "{info:?}");
    }
    // Reports arrive, carrying what uWSGI's stats server says (two workers), and slow start ends.
    stack.wait_for(
        "all three nodes active, reporting 2 workers",
        Duration::from_secs(10),
        |s| {
            let nodes = s.admin.nodes().ok()?;
            (nodes.len() == 3
                && nodes
                    .iter()
                    .all(|n| n.state == "active" && n.capacity == 2 && n.report_age_ms >= 0))
            .then_some(())
        },
    );
    let time_to_active = started.elapsed();

    // A few browsers at once: within three seconds every node takes a share of ten requests or
    // more. (least-load prefers the nodes it measured fastest; a node whose first, cold request
    // was slow is tried again once its estimate has decayed, within a second or two.)
    let burst = Load::start(stack.http(), HOST, CLIENTS, 20_000, Duration::from_secs(30));
    let shared = wait::poll_within(Duration::from_secs(3), || {
        IDS.iter().all(|id| burst.served_by(id) >= 10).then_some(())
    });
    let burst = burst.stop();
    let (sent, failures, answered_by) = (
        burst.outcomes.len(),
        burst.failures().len(),
        burst.by_node(),
    );
    eprintln!(
        "check 1, agents join: registered after {time_to_join:?}, active (2 workers reported) \
         after {time_to_active:?}; {sent} requests through nginx by {CLIENTS} clients, \
         {failures} failed, answered by {answered_by:?}"
    );
    assert_eq!(
        failures,
        0,
        "{}",
        burst.describe_failures(burst.outcomes[0].started, 10)
    );
    if let Err(e) = shared {
        panic!("every node answering 10 of {sent} requests: {e}: {answered_by:?}");
    }
}

/// Check 2: under load, each node in turn is restarted as a deploy does it: its agent is
/// stopped (it drains the node on the router and exits 0), then uWSGI, then both are started
/// again and the node takes traffic again. No request may fail.
fn rolling_restart_fails_no_request(stack: &mut Stack) {
    let (load, first) = every_node_under_load(stack);
    for i in 0..stack.nodes.len() {
        let old = stack.nodes[i].name();
        let id = stack.nodes[i].id.clone();
        let (status, drain_time, agent_log) = stack.nodes[i].stop_agent();
        assert_eq!(
            status.code(),
            Some(0),
            "{id}'s agent exited with {status} on SIGTERM; its log:\n{agent_log}"
        );
        // The router forgot the node because it drained (nothing left in flight), not because
        // the agent gave up waiting and left.
        stack.wait_for(
            &format!("{id} gone from the pool after its agent left"),
            Duration::from_secs(3),
            |s| s.admin.node(&id).ok()?.is_none().then_some(()),
        );
        assert!(
            stack
                .router
                .log_text()
                .lines()
                .any(|l| l.contains("node left")
                    && l.contains(&format!("node={id} "))
                    && l.contains("drained")),
            "routerd did not log {id} leaving drained; the agent's log:\n{agent_log}\n{}",
            stack.router.log_tail(40)
        );
        let served_before_stop = load.served_by(&old);
        stack.nodes[i].stop_uwsgi();
        assert_eq!(
            load.served_by(&old),
            served_before_stop,
            "{old} answered requests after its agent had drained it"
        );

        let restarted = Instant::now();
        // The agent starts together with uWSGI, as a unit bound to uWSGI's starts right after
        // it: it must not announce the node before the node can serve.
        stack.nodes[i].start_uwsgi();
        stack.nodes[i].start_agent();
        stack.nodes[i].wait_ready();
        let uwsgi_ready = restarted.elapsed();
        let new = stack.nodes[i].name();
        stack.wait_for(
            &format!("{new} taking requests through nginx"),
            Duration::from_secs(15),
            |_| (load.served_by(&new) > 0).then_some(()),
        );
        eprintln!(
            "check 2, {id}: agent drained and exited 0 in {drain_time:?}; {old} served \
             {served_before_stop}; restarted uWSGI answered after {uwsgi_ready:?}, took traffic \
             through nginx after {:?}; so far {} requests, {} failed",
            restarted.elapsed(),
            load.sent(),
            load.failed()
        );
    }
    let report = load.stop();
    let failures = report.failures();
    let by_node = report.by_node();
    eprintln!(
        "check 2, rolling restart: {} requests in {:?} by {CLIENTS} clients, {} failed; \
         answered by {by_node:?}",
        report.outcomes.len(),
        first.elapsed(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} requests failed during the rolling restart; first ones:\n{}",
        failures.len(),
        report.outcomes.len(),
        report.describe_failures(first, 10)
    );
    for node in &stack.nodes {
        let name = node.name();
        assert!(
            by_node.get(&name).copied().unwrap_or(0) > 0,
            "restarted {name} served no request: {by_node:?}"
        );
    }
}

/// Check 3: a node's agent and uWSGI are SIGKILLed under load. The router drops the node when
/// its lease runs out; only requests that node was serving may fail, none started after its port
/// closed, and none after it left the pool.
fn killed_node_leaves_within_its_lease(stack: &mut Stack) {
    let (load, first) = every_node_under_load(stack);
    // The victim is the node busiest so far, so that it has requests in flight when it dies.
    let victim = (0..stack.nodes.len())
        .max_by_key(|&i| load.served_by(&stack.nodes[i].name()))
        .unwrap();
    let (id, name) = (stack.nodes[victim].id.clone(), stack.nodes[victim].name());
    let connect_failures_before = connect_failures(&stack.router.log_text(), &id);

    let killed = Instant::now();
    stack.nodes[victim].kill();
    let port_closed = Instant::now();
    let removed = stack.wait_for(
        &format!("{id} out of the pool after SIGKILL"),
        Duration::from_secs(5),
        |s| s.admin.node(&id).ok()?.is_none().then(Instant::now),
    );
    // Keep the load on the two survivors a while: 100 more requests.
    let target = load.sent() + 100;
    stack.wait_for(
        "100 requests after the node left",
        Duration::from_secs(10),
        |_| (load.sent() >= target).then_some(()),
    );
    let report = load.stop();

    let removal = removed.duration_since(killed);
    let retried = connect_failures(&stack.router.log_text(), &id) - connect_failures_before;
    let failures = report.failures();
    let count = |from: Instant, to: Option<Instant>| {
        report
            .outcomes
            .iter()
            .filter(|o| o.started >= from && to.is_none_or(|to| o.started < to))
            .count()
    };
    let after_removal: Vec<_> = report
        .outcomes
        .iter()
        .filter(|o| o.started >= removed)
        .collect();
    eprintln!(
        "check 3, {name} SIGKILLed: port closed after {:?}, out of the pool after {removal:?}; \
         {} requests, {} failed ({} before the kill, {} while the port closed, {} while still \
         in the pool, {} after it left); routerd retried {retried} connects refused by it on \
         another node; answered by {:?}",
        port_closed.duration_since(killed),
        report.outcomes.len(),
        failures.len(),
        count(report.outcomes[0].started.min(first), Some(killed)),
        count(killed, Some(port_closed)),
        count(port_closed, Some(removed)),
        after_removal.len(),
        report.by_node(),
    );
    if !failures.is_empty() {
        eprintln!(
            "check 3, failed requests:\n{}",
            report.describe_failures(first, CLIENTS + 1)
        );
    }
    assert!(
        removal <= MAX_REMOVAL,
        "{id} left the pool {removal:?} after SIGKILL; its lease is 1 s"
    );
    let log = stack.router.log_text();
    assert!(
        log.lines().any(|l| l.contains("node left")
            && l.contains(&format!("node={id} "))
            && l.contains("lease expired")),
        "routerd did not log {id} leaving on lease expiry; its log:\n{}",
        stack.router.log_tail(40)
    );
    assert!(
        failures.len() <= CLIENTS,
        "{} requests failed; at most the {CLIENTS} in flight on {name} may:\n{}",
        failures.len(),
        report.describe_failures(first, 10)
    );
    let late: Vec<_> = failures
        .iter()
        .filter(|o| o.started >= port_closed)
        .collect();
    assert!(
        late.is_empty(),
        "{} requests started after {name}'s port closed failed (they never reached it):\n{}",
        late.len(),
        report.describe_failures(first, 10)
    );
    assert!(
        !after_removal.is_empty(),
        "no request started after {id} left the pool"
    );
    assert!(
        after_removal
            .iter()
            .all(|o| o.result.as_ref().is_ok_and(|n| *n != name)),
        "after {id} left: a request failed or {name} answered"
    );
}

/// Starts the phase's load and waits until every node serves some of it; returns the load and
/// when it started.
fn every_node_under_load(stack: &mut Stack) -> (Load, Instant) {
    let load = Load::start(
        stack.http(),
        HOST,
        CLIENTS,
        MAX_REQUESTS_EACH,
        MAX_LOAD_TIME,
    );
    let first = Instant::now();
    let names: Vec<String> = stack.nodes.iter().map(Node::name).collect();
    stack.wait_for(
        "every node serving the load",
        Duration::from_secs(10),
        |_| names.iter().all(|n| load.served_by(n) > 0).then_some(()),
    );
    (load, first)
}

/// How many times routerd's log says a connect to node `id` failed (each was retried on
/// another node).
fn connect_failures(log: &str, id: &str) -> usize {
    let node = format!("node={id} ");
    log.lines()
        .filter(|l| l.contains("connect failed") && l.contains(&node))
        .count()
}
