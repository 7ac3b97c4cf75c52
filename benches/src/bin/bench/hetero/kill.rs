//! The kill phase: the same load through nginx and the agent-fed routerd (least-load), and partway
//! through, SIGKILL to one normal node's uWSGI (master and workers, its whole process group), as a
//! crashed host. Meanwhile routerd's metrics are polled to see how many requests it had on the node
//! just before, and when it stopped picking it (passive ejection) and dropped it (lease expiry).

use std::time::Duration;

use tokio::time::Instant;
use uwsgi_router_bench::http_load::{self, HttpLoadReport};

use super::prom::Scrape;
use super::stack::Stack;
use super::{load_config, Contender};
use crate::setup::Bench;

/// How often routerd's metrics are polled after the kill.
const POLL_EVERY: Duration = Duration::from_millis(20);
/// How long after the kill to keep watching for the node's removal, load or not.
const WATCH_AT_LEAST: Duration = Duration::from_secs(3);
/// Which node dies: a normal (fast) one, which carries most of the requests in flight.
const VICTIM: usize = 0;

/// What the kill phase saw.
pub(crate) struct Kill {
    /// The node killed, and its sleep per request.
    pub(crate) node: String,
    pub(crate) delay_ms: u64,
    /// The whole run's load report (errors carry their times).
    pub(crate) load: HttpLoadReport,
    /// When the node was killed, since the load started.
    pub(crate) kill_at: Duration,
    /// Requests routerd had in flight on the node, read just before the kill.
    pub(crate) in_flight_before: Option<f64>,
    /// Failed requests that ended before the kill.
    pub(crate) failed_before: usize,
    /// Failed requests that ended after it, and when the last one did (since the kill).
    pub(crate) failed_after: usize,
    pub(crate) last_failure_after: Option<Duration>,
    /// Since the kill: first poll that showed the node not active (ejected), and gone from the pool.
    pub(crate) not_active_after: Option<Duration>,
    pub(crate) removed_after: Option<Duration>,
    /// Since the kill: last poll that showed the node's failure counter grow (routerd still tried
    /// it), and by how much it grew in all.
    pub(crate) last_attempt_after: Option<Duration>,
    pub(crate) node_failures: f64,
    /// Connect attempts routerd retried on another node after the kill.
    pub(crate) retries: f64,
    /// How long the poll watched after the kill.
    pub(crate) watched: Duration,
}

pub(super) async fn run(bench: &Bench, stack: &mut Stack) -> anyhow::Result<Kill> {
    stack.check()?;
    let c = Contender::RouterdAgents;
    let metrics = stack
        .routerd(c)
        .map(|r| r.metrics)
        .ok_or_else(|| anyhow::anyhow!("no agent-fed routerd"))?;
    let duration = bench.args.duration().max(Duration::from_secs(2));
    let kill_delay = duration.mul_f64(0.4);
    // Warm up as the measured phases do, so the router's estimates are in their steady state.
    if !bench.args.warmup().is_zero() {
        http_load::run(load_config(bench, stack, c, bench.args.warmup())).await?;
    }
    let (name, delay_ms) = {
        let n = &stack.nodes[VICTIM];
        (n.name.clone(), n.delay_ms)
    };
    eprintln!("[bench] hetero kill: load for {duration:?}, SIGKILL {name} after {kill_delay:?}");
    let started = Instant::now();
    let load = tokio::spawn(http_load::run(load_config(bench, stack, c, duration)));
    tokio::time::sleep(kill_delay).await;

    let node_labels = [("pool", "default"), ("node", name.as_str())];
    let before = Scrape::get(metrics).await?;
    let in_flight_before = before.value("uwsgi_router_node_in_flight_requests", &node_labels);
    let failures_before = before
        .value("uwsgi_router_node_failures_total", &node_labels)
        .unwrap_or(0.0);
    let retries_before = before
        .value("uwsgi_router_retries_total", &[("pool", "default")])
        .unwrap_or(0.0);
    let victim = stack.nodes[VICTIM]
        .child
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("{name} is not running"))?;
    // Read the clock first: a failure observed on another thread right after the signal must
    // not count as earlier than the kill (this thread may be preempted after the syscall).
    let killed = Instant::now();
    victim.kill_group()?;
    let kill_at = killed - started;

    let mut not_active_after = None;
    let mut removed_after = None;
    let mut last_attempt_after = None;
    let mut node_failures = 0.0;
    let mut retries = 0.0;
    let mut last_failures = failures_before;
    // Bounded by the load's end plus WATCH_AT_LEAST, and by a count.
    for _ in 0..10_000 {
        let since = killed.elapsed();
        if load.is_finished() && (removed_after.is_some() || since >= WATCH_AT_LEAST) {
            break;
        }
        if since > duration + WATCH_AT_LEAST {
            break;
        }
        if let Ok(s) = Scrape::get(metrics).await {
            let since = killed.elapsed();
            match s.value(
                "uwsgi_router_node_state",
                &[("node", name.as_str()), ("state", "active")],
            ) {
                Some(v) if v > 0.0 => {}
                Some(_) => {
                    not_active_after.get_or_insert(since);
                }
                None => {
                    not_active_after.get_or_insert(since);
                    removed_after.get_or_insert(since);
                }
            }
            if let Some(f) = s.value("uwsgi_router_node_failures_total", &node_labels) {
                if f > last_failures {
                    last_attempt_after = Some(since);
                    node_failures += f - last_failures;
                    last_failures = f;
                }
            }
            if let Some(r) = s.value("uwsgi_router_retries_total", &[("pool", "default")]) {
                retries = r - retries_before;
            }
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
    let watched = killed.elapsed();
    let load = load.await??;
    // Errors are timed from the load's own start, a hair after `started`.
    let kill_at = load
        .started
        .map_or(kill_at, |s| killed.saturating_duration_since(s));
    let failed_before = load.error_times.iter().filter(|t| **t < kill_at).count();
    let after: Vec<Duration> = load
        .error_times
        .iter()
        .filter(|t| **t >= kill_at)
        .map(|t| *t - kill_at)
        .collect();
    // The stack must have survived, but for the node killed on purpose.
    stack.nodes[VICTIM].child = None;
    stack.check()?;
    Ok(Kill {
        node: name,
        delay_ms,
        kill_at,
        in_flight_before,
        failed_before,
        failed_after: after.len(),
        last_failure_after: after.last().copied(),
        not_active_after,
        removed_after,
        last_attempt_after,
        node_failures,
        retries,
        watched,
        load,
    })
}
