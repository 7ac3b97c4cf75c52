//! Issue #14 on the real stack: nginx -> two routerd -> three uWSGI nodes running the demo Django
//! site, each registered with both routers by its own `router-agent`. Under a bounded load through
//! nginx, an operator drains one node with `routerctl drain --wait` on the first router; it goes
//! into maintenance on both (listed, no request), stays so while the second router restarts and
//! while its agent restarts, and `routerctl resume` on the second router brings it back on both.
//! No request fails. Needs nginx, uWSGI and Django: `bash tests/run.sh` installs them.
//! `--nocapture` shows the numbers of each step.

#[path = "real_stack_agents/admin.rs"]
mod admin;
#[allow(dead_code)]
#[path = "real_stack/http.rs"]
mod http;
#[allow(dead_code)]
#[path = "real_stack_agents/load.rs"]
mod load;
#[allow(dead_code)]
#[path = "real_stack/nginx.rs"]
mod nginx;
#[allow(dead_code)]
#[path = "real_stack_agents/node.rs"]
mod node;
#[allow(dead_code)]
#[path = "real_stack_agents/router.rs"]
mod router;
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use admin::Admin;
use load::Load;
use nginx::Nginx;
use node::Node;
use router::Router;
use support::wait;

/// The site's host name, as a browser would send it.
const HOST: &str = "shop.example.test";
/// The nodes' ids; the second one is drained.
const IDS: [&str; 3] = ["node1", "node2", "node3"];
const DRAINED: &str = "node2";
/// Load clients, each with one request at a time, and the bounds of the load.
const CLIENTS: usize = 4;
const MAX_REQUESTS_EACH: usize = 100_000;
const MAX_LOAD_TIME: Duration = Duration::from_secs(120);
/// Requests that must pass, after each step, without the node in maintenance answering one.
const WINDOW: u64 = 200;
/// Bound of each wait on the stack.
const STEP: Duration = Duration::from_secs(30);

/// Two routers behind one nginx, three nodes with their agents, and each router's Admin API.
struct Fleet {
    nginx: Nginx,
    routers: [Router; 2],
    admins: [Admin; 2],
    nodes: Vec<Node>,
    dir: tempfile::TempDir,
}

impl Fleet {
    fn start() -> Fleet {
        let dir = tempfile::Builder::new()
            .prefix("real-stack-admin")
            .tempdir()
            .expect("create temp dir");
        let any = "127.0.0.1:0";
        let routers = [
            Router::start_at(dir.path(), "routerd1", any, any),
            Router::start_at(dir.path(), "routerd2", any, any),
        ];
        // nginx balances over both routers; a router that refuses a connection (restarting) has
        // the request passed to the other (uwsgi_next_upstream error, nginx's default).
        let servers: String = routers
            .iter()
            .map(|r| format!("        server {};\n", r.uwsgi))
            .collect();
        let upstream = format!("    upstream routers {{\n{servers}    }}\n");
        let location = "include /etc/nginx/uwsgi_params;\n            uwsgi_pass routers;";
        let nginx = Nginx::start_with(&[location.to_owned()], &upstream, dir.path());
        let controls = [routers[0].control, routers[1].control];
        let mut nodes: Vec<Node> = IDS
            .iter()
            .map(|id| Node::with_routers(id, &controls, dir.path()))
            .collect();
        nodes.iter_mut().for_each(Node::start_uwsgi);
        nodes.iter_mut().for_each(Node::wait_ready);
        nodes.iter_mut().for_each(Node::start_agent);
        Fleet {
            nginx,
            admins: controls.map(Admin::new),
            routers,
            nodes,
            dir,
        }
    }

    /// Waits until router `r` lists every node, `DRAINED` in `drained` and the others in
    /// rotation.
    fn wait_states(&mut self, r: usize, drained: &str) {
        let what = format!(
            "router {} with {DRAINED} {drained}, the others active",
            r + 1
        );
        let admin = &mut self.admins[r];
        let found = wait::poll_within(STEP, || {
            let nodes = admin.nodes().ok()?;
            let all = IDS.iter().all(|id| {
                let want = if *id == DRAINED { drained } else { "active" };
                // `joining` is in rotation too: the node joined less than the pool's slow start
                // ago and takes requests at a lower weight.
                let shown = |s: &str| s == want || (want == "active" && s == "joining");
                nodes.iter().any(|n| n.id == *id && shown(&n.state))
            });
            all.then_some(())
        });
        found.unwrap_or_else(|e| {
            panic!(
                "{what}: {e}; nodes: {:?}\n{}",
                self.admins[r].nodes(),
                self.routers[r].log_tail(30)
            )
        });
    }

    /// Stops router `r` and starts it again on the same listeners (with a new log).
    fn restart_router(&mut self, r: usize, generation: &str) -> Duration {
        let (uwsgi, control) = (self.routers[r].uwsgi, self.routers[r].control);
        let started = Instant::now();
        let status = self.routers[r].stop();
        assert!(status.success(), "routerd exited with {status}");
        let name = format!("routerd{}-{generation}", r + 1);
        self.routers[r] = Router::start_at(
            self.dir.path(),
            &name,
            &uwsgi.to_string(),
            &control.to_string(),
        );
        started.elapsed()
    }

    fn node(&mut self, id: &str) -> &mut Node {
        self.nodes.iter_mut().find(|n| n.id == id).unwrap()
    }
}

/// Runs routerctl against router `control`; returns its stdout, failing on a non-zero exit.
fn routerctl(control: std::net::SocketAddr, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_routerctl"))
        .arg("--router")
        .arg(format!("http://{control}"))
        .args(args)
        .env_remove("ROUTERCTL_ROUTER")
        .output()
        .expect("run routerctl");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "routerctl {args:?}: {}\n{stdout}{stderr}",
        out.status
    );
    stdout.into_owned()
}

/// Waits until `n` more requests have been sent, then returns how many `name` has answered.
fn after_window(load: &Load, name: &str) -> u64 {
    let target = load.sent() + WINDOW;
    let passed = wait::poll_within(STEP, || (load.sent() >= target).then_some(()));
    passed.unwrap_or_else(|e| panic!("{WINDOW} more requests: {e}"));
    load.served_by(name)
}

/// Asserts `name` answers nothing over the next window (the window before it absorbs replies
/// that were on their way when the step ended).
fn serves_nothing(load: &Load, name: &str, when: &str) -> u64 {
    let before = after_window(load, name);
    let after = after_window(load, name);
    assert_eq!(before, after, "{name} answered requests {when}");
    after
}

#[test]
fn drain_maintenance_and_resume_hold_across_router_and_agent_restarts_without_failed_requests() {
    let started = Instant::now();
    let mut fleet = Fleet::start();
    for r in 0..2 {
        fleet.wait_states(r, "active");
    }
    eprintln!(
        "stack up (2 routerd, nginx, 3 uWSGI + Django) in {:?}",
        started.elapsed()
    );
    let load = Load::start(
        fleet.nginx.ports[0],
        HOST,
        CLIENTS,
        MAX_REQUESTS_EACH,
        MAX_LOAD_TIME,
    );
    let first = Instant::now();
    let every = wait::poll_within(STEP, || {
        IDS.iter().all(|id| load.served_by(id) > 0).then_some(())
    });
    every.unwrap_or_else(|e| panic!("every node serving the load: {e}: {:?}", load.sent()));

    // 1. Drained on the first router: in maintenance on both, listed, answering nothing.
    let step = Instant::now();
    let out = routerctl(
        fleet.routers[0].control,
        &[
            "drain",
            DRAINED,
            "--wait",
            "--timeout",
            "20s",
            "--reason",
            "kernel update",
        ],
    );
    assert!(
        out.contains("drained, in maintenance until resumed"),
        "{out}"
    );
    let drained_on_1 = step.elapsed();
    fleet.wait_states(0, "maintenance");
    fleet.wait_states(1, "maintenance");
    let on_both = step.elapsed();
    let served = serves_nothing(&load, DRAINED, "in maintenance");
    eprintln!(
        "step 1, drain --wait on router 1: returned after {drained_on_1:?}, maintenance on both \
         routers after {on_both:?}; {DRAINED} served {served}; {} requests so far, {} failed",
        load.sent(),
        load.failed()
    );

    // 2. The second router restarts: the agent's announce brings the node back in maintenance.
    let step = Instant::now();
    let down = fleet.restart_router(1, "restarted");
    fleet.wait_states(1, "maintenance");
    let back = step.elapsed();
    serves_nothing(&load, DRAINED, "after router 2 restarted");
    eprintln!(
        "step 2, router 2 restarted: stopped and started in {down:?}, {DRAINED} in maintenance \
         there after {back:?}; {} requests so far, {} failed",
        load.sent(),
        load.failed()
    );

    // 3. The node's agent restarts (it drains and leaves on the way out): its state file holds.
    let step = Instant::now();
    let (status, _, log) = fleet.node(DRAINED).stop_agent();
    assert_eq!(status.code(), Some(0), "the agent's log:\n{log}");
    for r in 0..2 {
        let admin = &mut fleet.admins[r];
        let gone = wait::poll_within(STEP, || admin.node(DRAINED).ok()?.is_none().then_some(()));
        gone.unwrap_or_else(|e| {
            panic!(
                "{DRAINED} gone from router {} after its agent left: {e}",
                r + 1
            )
        });
    }
    fleet.node(DRAINED).start_agent();
    for r in 0..2 {
        fleet.wait_states(r, "maintenance");
    }
    let back = step.elapsed();
    serves_nothing(&load, DRAINED, "after its agent restarted");
    eprintln!(
        "step 3, {DRAINED}'s agent restarted: in maintenance on both routers again after \
         {back:?}; {} requests so far, {} failed",
        load.sent(),
        load.failed()
    );

    // 4. Resumed on the second router: back on both.
    let step = Instant::now();
    let before = load.served_by(DRAINED);
    routerctl(fleet.routers[1].control, &["resume", DRAINED]);
    let answered = step.elapsed();
    for r in 0..2 {
        fleet.wait_states(r, "active");
    }
    let active = step.elapsed();
    let serving = wait::poll_within(STEP, || (load.served_by(DRAINED) > before).then_some(()));
    serving.unwrap_or_else(|e| panic!("{DRAINED} serving again after the resume: {e}"));
    eprintln!(
        "step 4, resume on router 2: routerctl done after {answered:?}, active on both after \
         {active:?}, serving through nginx after {:?}",
        step.elapsed()
    );

    let report = load.stop();
    let failures = report.failures();
    eprintln!(
        "whole sequence: {} requests in {:?} by {CLIENTS} clients, {} failed; answered by {:?}",
        report.outcomes.len(),
        first.elapsed(),
        failures.len(),
        report.by_node()
    );
    assert!(
        failures.is_empty(),
        "{} of {} requests failed; first ones:\n{}\n{}",
        failures.len(),
        report.outcomes.len(),
        report.describe_failures(first, 10),
        fleet.nginx.log_tail(20)
    );
}
