//! The deployment across hosts, with hosts made of network namespaces (each its own network
//! stack and address, joined by a bridge): a router host running nginx and routerd, whose
//! control plane listens on the host's address with registry and admin tokens, and three app
//! hosts each running uWSGI with the demo Django site and a router-agent. Under a bounded load
//! through nginx:
//! - an app host cut off the network (its link down) leaves the pool within its lease, and the
//!   only requests that fail are the ones that were on that host at the cut;
//! - back on the network, it re-joins and takes requests again;
//! - a rolling restart of every app host (agent SIGTERM: drain, leave, exit; then uWSGI stop;
//!   then both start again), one host at a time, fails no request.
//!
//! Needs root (network namespaces), iproute2, nginx, uWSGI and Django: `bash tests/run.sh`.
//! Every address used exists only inside the namespaces, which are deleted afterwards, also
//! when the test fails. `--nocapture` shows each phase's numbers.

#[path = "multihost/app_host.rs"]
mod app_host;
#[path = "multihost/hosts.rs"]
mod hosts;
#[path = "multihost/load.rs"]
mod load;
#[path = "multihost/net.rs"]
mod net;
#[path = "multihost/router_host.rs"]
mod router_host;
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use app_host::AppHost;
use hosts::{app_addr, REPORT_INTERVAL, ROUTER_ADDR};
use load::{Load, Record};
use net::Network;
use router_host::RouterHost;
use support::wait;

/// The app hosts, which are also their nodes' ids.
const IDS: [&str; 3] = ["app1", "app2", "app3"];
/// Load clients, each with one request at a time.
const CLIENTS: usize = 4;
/// Bounds of the load: requests per client, and time.
const MAX_REQUESTS_EACH: usize = 40_000;
const MAX_LOAD_TIME: Duration = Duration::from_secs(240);
/// A cut-off node must be out of the pool this soon after the cut: its lease is three report
/// intervals from its last report, plus routerd's maintenance tick and routerctl's round trip.
const MAX_REMOVAL: Duration = Duration::from_millis(3 * 500 + 1_000);
/// Pause between two probes of a bounded wait.
const POLL: Duration = Duration::from_millis(50);

#[test]
fn hosts_leave_rejoin_and_roll_over_the_network_without_failed_requests() {
    assert_eq!(REPORT_INTERVAL, Duration::from_millis(500));
    let dir = tempfile::Builder::new()
        .prefix("multihost")
        .tempdir()
        .unwrap();
    let addrs: Vec<String> = (1..=3).map(app_addr).collect();
    // Declared before the processes, so dropped after them: they go before their namespaces.
    let net = Network::create(&[
        ("router", ROUTER_ADDR),
        (IDS[0], &addrs[0]),
        (IDS[1], &addrs[1]),
        (IDS[2], &addrs[2]),
    ]);
    let router = RouterHost::start(&net, dir.path());
    let mut apps: Vec<AppHost> = (1..=3).map(|i| AppHost::new(i, dir.path())).collect();
    let mut stack = Stack {
        net: &net,
        router,
        apps: Vec::new(),
    };
    for app in &mut apps {
        app.start_uwsgi(&net);
    }
    for app in &mut apps {
        app.wait_uwsgi_ready();
        app.start_agent(&net);
    }
    stack.apps = apps;
    stack.wait_for_nodes(&IDS, Duration::from_secs(30));

    let load = Load::start(
        stack.router.http.clone(),
        CLIENTS,
        MAX_REQUESTS_EACH,
        MAX_LOAD_TIME,
    );
    let t0 = Instant::now();
    stack.wait_for_answers_from(&load, &IDS, t0);
    eprintln!("all three app hosts answer through nginx -> routerd");

    // Phase 2: app2's host drops off the network.
    let cut = Instant::now();
    net.set_link("app2", false);
    stack.wait_for_nodes(&["app1", "app3"], Duration::from_secs(10));
    let removed_after = cut.elapsed();
    eprintln!("app2 cut off: out of the pool after {removed_after:?}");
    assert!(
        removed_after <= MAX_REMOVAL,
        "app2 left the pool {removed_after:?} after the cut; its lease allows {MAX_REMOVAL:?}"
    );
    // Requests keep flowing to the other hosts meanwhile.
    let after_removal = Instant::now();
    stack.wait_for_answers_from(&load, &["app1", "app3"], after_removal);

    // Phase 3: back on the network, it re-joins and gets requests again.
    let reconnect = Instant::now();
    net.set_link("app2", true);
    stack.wait_for_nodes(&IDS, Duration::from_secs(30));
    stack.wait_for_answers_from(&load, &["app2"], reconnect);
    eprintln!(
        "app2 back on the network: answering again after {:?}",
        reconnect.elapsed()
    );

    // Phase 4: rolling restart, one host at a time.
    let rolling = Instant::now();
    for i in 0..stack.apps.len() {
        let id = stack.apps[i].id.clone();
        let began = Instant::now();
        stack.apps[i].stop_agent();
        let others: Vec<&str> = IDS.into_iter().filter(|a| *a != id).collect();
        // The agent exits once the router drained the node and forgot it.
        stack.wait_for_nodes(&others, Duration::from_secs(5));
        stack.apps[i].stop_uwsgi();
        stack.apps[i].start_uwsgi(&net);
        stack.apps[i].wait_uwsgi_ready();
        stack.apps[i].start_agent(&net);
        stack.wait_for_nodes(&IDS, Duration::from_secs(30));
        let back = Instant::now();
        stack.wait_for_answers_from(&load, &[id.as_str()], back);
        eprintln!(
            "{id} restarted and answering again in {:?}",
            began.elapsed()
        );
    }
    let records = load.stop();
    let end = Instant::now();

    let summary = summarize(&records);
    eprintln!("load: {summary:?}");
    check_failures_only_at_the_cut(&stack, &records, cut);
    let rolled: Vec<&Record> = records
        .iter()
        .filter(|r| r.start >= rolling && r.end <= end)
        .collect();
    let served = rolled.iter().filter(|r| r.result.is_ok()).count();
    eprintln!(
        "rolling restart: {served} requests, all answered, in {:?}",
        end - rolling
    );
    assert!(
        served >= 100,
        "only {served} requests during the rolling restart: it was not under load"
    );
}

/// The running hosts.
struct Stack<'n> {
    net: &'n Network,
    router: RouterHost,
    apps: Vec<AppHost>,
}

impl Stack<'_> {
    /// Waits until routerctl lists exactly `ids`, each active or joining (slow start).
    fn wait_for_nodes(&self, ids: &[&str], timeout: Duration) {
        let mut nodes = Vec::new();
        let listed = wait::poll_every(POLL, timeout, || {
            nodes = self.router.nodes(self.net);
            let listed: Vec<&str> = nodes.iter().map(|(id, _)| id.as_str()).collect();
            let in_pool = nodes
                .iter()
                .all(|(_, state)| state == "active" || state == "joining");
            (listed == ids && in_pool).then_some(())
        });
        if let Err(e) = listed {
            self.fail(&format!("routerctl nodes {ids:?}: {e}; last: {nodes:?}"));
        }
    }

    /// Waits until each of `ids` has answered a request that started after `since` (20 s).
    fn wait_for_answers_from(&self, load: &Load, ids: &[&str], since: Instant) {
        let mut records = Vec::new();
        let answered = wait::poll_every(POLL, Duration::from_secs(20), || {
            records = load.records();
            let answered = |id: &str| {
                records
                    .iter()
                    .any(|r| r.start >= since && r.result.as_deref() == Ok(id))
            };
            ids.iter().all(|id| answered(id)).then_some(())
        });
        if let Err(e) = answered {
            self.fail(&format!(
                "answers from {ids:?}: {e}; since then: {:?}",
                summarize(records.iter().filter(|r| r.start >= since))
            ));
        }
    }

    fn fail(&self, what: &str) -> ! {
        let mut logs = self.router.log_tails();
        for app in &self.apps {
            logs.push('\n');
            logs.push_str(&app.log_tails());
        }
        panic!("{what}\n{logs}");
    }
}

/// Every failed request was on app2 when its host was cut off: it started before the cut and
/// ended with routerd's 504 for app2 (its bytes had reached app2, so it was not retried). Every
/// other request succeeded.
fn check_failures_only_at_the_cut(stack: &Stack<'_>, records: &[Record], cut: Instant) {
    let app2 = stack.apps[1].addr();
    let mut at_cut = 0;
    for r in records {
        let Err(e) = &r.result else { continue };
        let caught_by_cut =
            r.start < cut && r.end > cut && e.contains(" 504 ") && e.contains(&app2);
        if !caught_by_cut {
            stack.fail(&format!(
                "a request failed that did not reach the cut-off host: {e} (started {:?} {} the cut)",
                if r.start < cut { cut - r.start } else { r.start - cut },
                if r.start < cut { "before" } else { "after" },
            ));
        }
        at_cut += 1;
    }
    eprintln!("requests caught on app2 when it was cut off: {at_cut}");
    assert!(
        at_cut <= CLIENTS,
        "{at_cut} requests failed at the cut, more than the {CLIENTS} that can be in flight"
    );
}

/// Requests by the node that answered, and failures.
fn summarize<'a>(records: impl IntoIterator<Item = &'a Record>) -> BTreeMap<String, usize> {
    let mut by = BTreeMap::new();
    for r in records {
        let key = match &r.result {
            Ok(node) => node.clone(),
            Err(_) => "failed".to_owned(),
        };
        *by.entry(key).or_insert(0) += 1;
    }
    by
}
