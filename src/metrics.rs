//! Every metric routerd exports: names, types, labels and help texts (the [`FAMILIES`] catalog),
//! and one small typed function per event, so call sites never spell a metric name.
//!
//! Two sources feed `/metrics`, each owning its own names: the `metrics` facade with the
//! Prometheus recorder ([`install`]) holds process-wide and per-pool series; the cluster's own
//! atomics are read at scrape time for per-node series ([`render`]), so a node's series vanish
//! with the node and labels never pile up. On the hot path, a request costs a few atomic
//! additions: per-node counts live on the node, per-pool handles are registered once per pool.

mod cluster;
mod recorder;
pub mod text;

pub use recorder::{install, render, upkeep, CONNECT_BUCKETS, REQUEST_BUCKETS};

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use metrics::{counter, gauge, histogram, Counter, Histogram};

use crate::cluster::{Node, Pool};

/// A metric family's Prometheus type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up; the name ends in `_total`.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Observations in buckets, with `_bucket`, `_sum` and `_count` series.
    Histogram,
}

/// Which source renders a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The Prometheus recorder behind the `metrics` facade.
    Recorder,
    /// Read from the cluster's atomics at scrape time.
    Cluster,
}

/// One metric family: the only place its name and help text are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    /// Full name, `uwsgi_router_...`.
    pub name: &'static str,
    /// Prometheus type.
    pub kind: Kind,
    /// Label names of its series.
    pub labels: &'static [&'static str],
    /// Help text.
    pub help: &'static str,
    /// Who renders it.
    pub origin: Origin,
}

const fn family(
    origin: Origin,
    kind: Kind,
    name: &'static str,
    labels: &'static [&'static str],
    help: &'static str,
) -> Family {
    Family {
        name,
        kind,
        labels,
        help,
        origin,
    }
}

use Kind::{Counter as C, Gauge as G, Histogram as H};
use Origin::{Cluster as FromCluster, Recorder as FromRecorder};

/// Requests finished. `node` is absent when no node was reached, `pool` when no route matched.
pub const REQUESTS: Family = family(
    FromCluster,
    C,
    "uwsgi_router_requests_total",
    &["pool", "node", "outcome"],
    "Requests finished, by pool, node (absent when none was reached) and outcome: ok, \
         client_abort, client_timeout, 502, 503, 504, node_error, idle_timeout.",
);
/// Request duration through the router, per pool.
pub const REQUEST_DURATION: Family = family(
    FromRecorder,
    H,
    "uwsgi_router_request_duration_seconds",
    &["pool"],
    "Time from the request head read to the end of the exchange, per pool.",
);
/// Time to connect to a node, per pool.
pub const CONNECT_DURATION: Family = family(
    FromRecorder,
    H,
    "uwsgi_router_upstream_connect_duration_seconds",
    &["pool"],
    "Time to open a connection to a node, per pool (successful connects).",
);
/// Connect attempts retried on another node.
pub const RETRIES: Family = family(
    FromRecorder,
    C,
    "uwsgi_router_retries_total",
    &["pool"],
    "Connect attempts retried on another node after a failed connect.",
);
/// Requests a node dropped while it still accepted connections: the request's fault.
pub const REQUEST_DROPS: Family = family(
    FromRecorder,
    C,
    "uwsgi_router_request_drops_total",
    &["pool"],
    "Requests a node closed without a full response while it still accepted a fresh \
         connection (a request uWSGI refuses, say): counted against the request, not the node.",
);
/// Node ejections by passive health checks.
pub const EJECTIONS: Family = family(
    FromRecorder,
    C,
    "uwsgi_router_ejections_total",
    &["pool", "reason"],
    "Nodes ejected by passive health checks, by reason.",
);
/// Picks made in panic mode.
pub const PANIC_PICKS: Family = family(
    FromRecorder,
    C,
    "uwsgi_router_panic_picks_total",
    &["pool"],
    "Nodes picked although ejected, because no other node was left.",
);
/// Malformed packets from clients.
pub const MALFORMED: Family = family(
    FromRecorder,
    C,
    "uwsgi_router_malformed_packets_total",
    &["kind"],
    "Malformed uwsgi packets (or none in time) received from clients, by kind.",
);
/// Log lines held back by the per-kind throttle.
pub const LOGS_SUPPRESSED: Family = family(
    FromRecorder,
    C,
    "uwsgi_router_log_lines_suppressed_total",
    &["event"],
    "Log lines held back because a line of the same event was written less than 10 s before \
         (the line that goes out says how many it stands for), by event.",
);
/// Client connections open now.
pub const CLIENT_CONNECTIONS: Family = family(
    FromRecorder,
    G,
    "uwsgi_router_client_connections",
    &[],
    "Client connections open now.",
);
/// Config reloads.
pub const CONFIG_RELOADS: Family = family(
    FromRecorder,
    C,
    "uwsgi_router_config_reloads_total",
    &["result"],
    "Config reloads, by result: ok or error.",
);
/// Build information, constant 1.
pub const BUILD_INFO: Family = family(
    FromRecorder,
    G,
    "uwsgi_router_build_info",
    &["version", "commit"],
    "Build information of the running routerd; the value is always 1.",
);
/// Dynamic node registrations accepted.
pub const REGISTRATIONS: Family = family(
    FromRecorder,
    C,
    "uwsgi_router_registrations_total",
    &["pool", "source"],
    "Dynamic node registrations accepted, by pool and source (registered, subscribed).",
);
/// Registrations and control calls refused.
pub const REJECTIONS: Family = family(
    FromRecorder,
    C,
    "uwsgi_router_registration_rejections_total",
    &["reason"],
    "Node registrations and control calls refused, by reason.",
);
/// Nodes by pool and state.
pub const NODES: Family = family(
    FromCluster,
    G,
    "uwsgi_router_nodes",
    &["pool", "state"],
    "Nodes by pool and state: active (takes requests), ejected, draining, drained.",
);
/// State of each node (1 for its state, 0 for the others).
pub const NODE_STATE: Family = family(
    FromCluster,
    G,
    "uwsgi_router_node_state",
    &["pool", "node", "state"],
    "State of each node: 1 for its current state (active, ejected, draining, drained), 0 \
         for the others.",
);
/// Requests the router has on a node now.
pub const NODE_IN_FLIGHT: Family = family(
    FromCluster,
    G,
    "uwsgi_router_node_in_flight_requests",
    &["pool", "node"],
    "Requests this router has in flight on the node now.",
);
/// Failed requests on a node.
pub const NODE_FAILURES: Family = family(
    FromCluster,
    C,
    "uwsgi_router_node_failures_total",
    &["pool", "node"],
    "Requests that failed on the node: connect errors, resets, timeouts.",
);
/// Weight in force.
pub const NODE_WEIGHT: Family = family(
    FromCluster,
    G,
    "uwsgi_router_node_weight",
    &["pool", "node"],
    "Weight in force: the operator's override, else the configured or reported weight.",
);
/// Latency estimate the balancer uses.
pub const NODE_LATENCY: Family = family(
    FromCluster,
    G,
    "uwsgi_router_node_latency_seconds",
    &["pool", "node"],
    "Peak-EWMA of the node's time to first byte, as the least-load balancer sees it now.",
);
/// Busy workers the node reported.
pub const NODE_BUSY: Family = family(
    FromCluster,
    G,
    "uwsgi_router_node_busy_workers",
    &["pool", "node"],
    "Busy workers in the node's last load report (nodes that report only).",
);
/// Workers the node has.
pub const NODE_WORKERS: Family = family(
    FromCluster,
    G,
    "uwsgi_router_node_workers",
    &["pool", "node"],
    "Workers (capacity) in the node's last load report (nodes that report only).",
);
/// Listen queue the node reported.
pub const NODE_LISTEN_QUEUE: Family = family(
    FromCluster,
    G,
    "uwsgi_router_node_listen_queue",
    &["pool", "node"],
    "Connections waiting in the node's listen queue at its last load report (nodes that \
         report only).",
);
/// Age of the node's last load report.
pub const NODE_REPORT_AGE: Family = family(
    FromCluster,
    G,
    "uwsgi_router_node_report_age_seconds",
    &["pool", "node"],
    "Seconds since the node's last load report (nodes that report only); reports older \
         than 3 s are ignored.",
);

/// Every family routerd exports, in the order they are documented.
pub const FAMILIES: &[Family] = &[
    REQUESTS,
    REQUEST_DURATION,
    CONNECT_DURATION,
    RETRIES,
    REQUEST_DROPS,
    EJECTIONS,
    PANIC_PICKS,
    MALFORMED,
    LOGS_SUPPRESSED,
    CLIENT_CONNECTIONS,
    CONFIG_RELOADS,
    BUILD_INFO,
    REGISTRATIONS,
    REJECTIONS,
    NODES,
    NODE_STATE,
    NODE_IN_FLIGHT,
    NODE_FAILURES,
    NODE_WEIGHT,
    NODE_LATENCY,
    NODE_BUSY,
    NODE_WORKERS,
    NODE_LISTEN_QUEUE,
    NODE_REPORT_AGE,
    SUBSCRIPTION_PACKETS,
];

/// Outcome labels of [`REQUESTS`], in the order of [`RequestCounts`].
pub const OUTCOMES: [&str; 8] = [
    "ok",
    "client_abort",
    "client_timeout",
    "502",
    "503",
    "504",
    "node_error",
    "idle_timeout",
];

/// Finished requests by outcome: kept on each node, on each pool (no node reached) and for the
/// process (no pool matched), and read at scrape time.
#[derive(Debug)]
pub struct RequestCounts([AtomicU64; OUTCOMES.len()]);

impl RequestCounts {
    /// All zero.
    pub const fn new() -> Self {
        Self([const { AtomicU64::new(0) }; OUTCOMES.len()])
    }

    /// Counts one request that ended with `outcome` (one of [`OUTCOMES`]).
    pub fn add(&self, outcome: &str) {
        match OUTCOMES.iter().position(|o| *o == outcome) {
            Some(i) => {
                self.0[i].fetch_add(1, Relaxed);
            }
            None => debug_assert!(false, "unknown outcome label {outcome:?}"),
        }
    }

    /// The count for `outcome`.
    pub fn get(&self, outcome: &str) -> u64 {
        OUTCOMES
            .iter()
            .position(|o| *o == outcome)
            .map_or(0, |i| self.0[i].load(Relaxed))
    }

    /// Every outcome with its count, in [`OUTCOMES`] order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        OUTCOMES
            .iter()
            .zip(&self.0)
            .map(|(o, n)| (*o, n.load(Relaxed)))
    }
}

impl Default for RequestCounts {
    fn default() -> Self {
        Self::new()
    }
}

/// Requests that matched no pool (there is one router per process).
static UNROUTED: RequestCounts = RequestCounts::new();

/// A pool's series, registered once when the pool is created so that recording needs no lookup.
#[derive(Debug)]
pub struct PoolMetrics {
    /// Requests of this pool that reached no node.
    pub no_node: RequestCounts,
    request_duration: Histogram,
    connect_duration: Histogram,
    retries: Counter,
    drops: Counter,
}

impl PoolMetrics {
    /// Registers the series of pool `name`; counters start at 0 so that `rate()` sees their
    /// first increment.
    pub fn new(name: &str) -> Self {
        let pool = name.to_owned();
        counter!(EJECTIONS.name, "pool" => pool.clone(), "reason" => "consecutive_failures")
            .increment(0);
        counter!(PANIC_PICKS.name, "pool" => pool.clone()).increment(0);
        Self {
            no_node: RequestCounts::new(),
            request_duration: histogram!(REQUEST_DURATION.name, "pool" => pool.clone()),
            connect_duration: histogram!(CONNECT_DURATION.name, "pool" => pool.clone()),
            retries: counter!(RETRIES.name, "pool" => pool.clone()),
            drops: counter!(REQUEST_DROPS.name, "pool" => pool),
        }
    }
}

/// Registers help texts and the build info series with the recorder.
pub fn describe() {
    for f in FAMILIES.iter().filter(|f| f.origin == Origin::Recorder) {
        match f.kind {
            Kind::Counter => metrics::describe_counter!(f.name, f.help),
            Kind::Gauge => metrics::describe_gauge!(f.name, f.help),
            Kind::Histogram => {
                metrics::describe_histogram!(f.name, metrics::Unit::Seconds, f.help)
            }
        }
    }
    gauge!(BUILD_INFO.name, "version" => env!("CARGO_PKG_VERSION"), "commit" => GIT_COMMIT)
        .set(1.0);
    for result in ["ok", "error"] {
        counter!(CONFIG_RELOADS.name, "result" => result).increment(0);
    }
    gauge!(CLIENT_CONNECTIONS.name).increment(0.0);
}

/// The git commit routerd was built from (set by `build.rs`), or `unknown`.
pub const GIT_COMMIT: &str = match option_env!("UWSGI_ROUTER_GIT_COMMIT") {
    Some(c) => c,
    None => "unknown",
};

/// A request ended with `outcome` (`ok`, `client_abort`, `502`, ...) after `took`. `pool` is
/// `None` when no route matched, `node` when no node was reached.
pub fn request_finished(
    pool: Option<&Pool>,
    node: Option<&Node>,
    outcome: &'static str,
    took: Duration,
) {
    match (pool, node) {
        (_, Some(node)) => node.outcomes.add(outcome),
        (Some(pool), None) => pool.metrics.no_node.add(outcome),
        (None, None) => UNROUTED.add(outcome),
    }
    if let Some(pool) = pool {
        pool.metrics.request_duration.record(took.as_secs_f64());
    }
}

/// A connect to a node of `pool` succeeded after `took`.
pub fn connected(pool: &Pool, took: Duration) {
    pool.metrics.connect_duration.record(took.as_secs_f64());
}

/// A failed connect is retried on another node of `pool`.
pub fn retry(pool: &Pool) {
    pool.metrics.retries.increment(1);
}

/// A node of `pool` dropped a request but accepts connections.
pub fn request_dropped(pool: &Pool) {
    pool.metrics.drops.increment(1);
}

/// A log line of `event` was held back by the throttle.
pub fn log_suppressed(event: &'static str) {
    counter!(LOGS_SUPPRESSED.name, "event" => event).increment(1);
}

/// A node was ejected.
pub fn node_ejected(pool: &Arc<str>, reason: &'static str) {
    counter!(EJECTIONS.name, "pool" => pool.clone(), "reason" => reason).increment(1);
}

/// A node was picked in panic mode.
pub fn panic_pick(pool: &Arc<str>) {
    counter!(PANIC_PICKS.name, "pool" => pool.clone()).increment(1);
}

/// A client sent a malformed packet.
pub fn malformed(kind: &'static str) {
    counter!(MALFORMED.name, "kind" => kind).increment(1);
}

/// A client connection opened (+1) or closed (-1).
pub fn client_connections(delta: f64) {
    gauge!(CLIENT_CONNECTIONS.name).increment(delta);
}

/// A config reload finished: `ok` or `error`.
pub fn config_reload(result: &'static str) {
    counter!(CONFIG_RELOADS.name, "result" => result).increment(1);
}

/// A node registered (or subscribed) into `pool`.
pub fn node_registered(pool: &Arc<str>, source: &'static str) {
    counter!(REGISTRATIONS.name, "pool" => pool.clone(), "source" => source).increment(1);
}

/// A registration or control call was refused (`unauthenticated`, `unknown_pool`, ...).
pub fn registration_rejected(reason: &'static str) {
    counter!(REJECTIONS.name, "reason" => reason).increment(1);
}

/// uWSGI subscription datagrams handled, by outcome.
pub const SUBSCRIPTION_PACKETS: Family = family(
    FromRecorder,
    C,
    "uwsgi_router_subscription_packets_total",
    &["outcome"],
    "uWSGI subscription datagrams handled, by outcome: joined, renewed, left, \
         unknown_node, or why one was refused (malformed, oversize, unsigned, bad_signature, \
         max_pools, overload...).",
);

/// A subscription datagram was handled with `outcome`.
pub fn subscription_packet(outcome: &'static str) {
    counter!(SUBSCRIPTION_PACKETS.name, "outcome" => outcome).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_follow_the_naming_rules() {
        let mut names = std::collections::HashSet::new();
        for f in FAMILIES {
            assert!(names.insert(f.name), "{} is listed twice", f.name);
            assert!(f.name.starts_with("uwsgi_router_"), "{}", f.name);
            assert_eq!(
                f.kind == Kind::Counter,
                f.name.ends_with("_total"),
                "{}: counters and only counters end in _total",
                f.name
            );
            if f.kind == Kind::Histogram {
                assert!(f.name.ends_with("_seconds"), "{}", f.name);
            }
            assert!(!f.help.is_empty(), "{} has help text", f.name);
        }
    }

    #[test]
    fn counts_by_outcome() {
        let c = RequestCounts::new();
        c.add("ok");
        c.add("ok");
        c.add("504");
        assert_eq!(c.get("ok"), 2);
        assert_eq!(c.get("504"), 1);
        assert_eq!(c.iter().map(|(_, n)| n).sum::<u64>(), 3);
    }
}
