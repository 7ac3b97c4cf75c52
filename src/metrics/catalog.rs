//! The catalog: every metric family routerd exports, the only place its name, type, labels and
//! help text are written.

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
    /// Read from the kernel (`/proc/self`) at scrape time, by every binary serving `/metrics`.
    Process,
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
    "Requests finished, by pool, node (absent when none was reached) and outcome: the node's \
         status class (1xx, 2xx, 3xx, 4xx, 5xx; other_status without a status line), the router's \
         own 502, 503, 504, or client_abort, client_timeout, node_error, idle_timeout.",
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
/// Requests sent again, to another node.
pub const RETRIES: Family = family(
    FromRecorder,
    C,
    "uwsgi_router_retries_total",
    &["pool", "reason"],
    "Requests sent again to another node, by reason: connect_failure, reset_before_response \
         (the node closed before any response byte), gateway_error (it answered 502, 503 or 504).",
);
/// Resends the retry budget refused.
pub const RETRY_BUDGET_EXHAUSTED: Family = family(
    FromRecorder,
    C,
    "uwsgi_router_retry_budget_exhausted_total",
    &["pool"],
    "Resends refused because the pool's retry budget was spent (retry.budget_percent of the \
         requests in flight, at least retry.min_concurrency).",
);
/// Requests waiting in a pool's queue now.
pub const QUEUED: Family = family(
    FromRecorder,
    G,
    "uwsgi_router_queued_requests",
    &["pool"],
    "Requests waiting now for a node of the pool, every usable node being at max_connections.",
);
/// Requests the queue refused.
pub const QUEUE_REFUSED: Family = family(
    FromRecorder,
    C,
    "uwsgi_router_queue_refused_total",
    &["pool", "reason"],
    "Requests answered 503 by the pool's queue: full (queue.size were waiting) or timeout (no node \
         freed up within queue.timeout).",
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
/// Node ejections, by passive health checks or an operator.
pub const EJECTIONS: Family = family(
    FromRecorder,
    C,
    "uwsgi_router_ejections_total",
    &["pool", "reason"],
    "Nodes ejected, by reason: consecutive_failures (passive health checks) or operator \
         (routerctl eject).",
);
/// Nodes that left their pool.
pub const NODES_LEFT: Family = family(
    FromRecorder,
    C,
    "uwsgi_router_nodes_left_total",
    &["pool", "reason"],
    "Nodes that left their pool, by reason: lease_expired, drained, agent_left, unsubscribed, \
         removed_from_config, removed_by_operator.",
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
    &["listener"],
    "Client connections open now, by listener kind: uwsgi (one request each) or http (kept alive).",
);
/// Requests that arrived on HTTP listeners.
pub const HTTP_REQUESTS: Family = family(
    FromRecorder,
    C,
    "uwsgi_router_http_requests_total",
    &[],
    "Requests that arrived on the HTTP listeners (over fewer, kept-alive connections).",
);
/// Config reloads.
pub const CONFIG_RELOADS: Family = family(
    FromRecorder,
    C,
    "uwsgi_router_config_reloads_total",
    &["result"],
    "Config reloads, by result: ok or error.",
);
/// Whether the last reload applied.
pub const CONFIG_LAST_RELOAD_SUCCESS: Family = family(
    FromRecorder,
    G,
    "uwsgi_router_config_last_reload_success",
    &[],
    "1 if the last config reload applied (or none was tried), 0 if it was refused.",
);
/// When the last reload was tried.
pub const CONFIG_LAST_RELOAD_TIME: Family = family(
    FromRecorder,
    G,
    "uwsgi_router_config_last_reload_timestamp_seconds",
    &[],
    "Unix time of the last config reload tried (0: none since the start).",
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
/// Registrations refused.
pub const REJECTIONS: Family = family(
    FromRecorder,
    C,
    "uwsgi_router_registration_rejections_total",
    &["reason"],
    "Node registrations (agent sessions and subscriptions) refused, by reason.",
);
/// Load reports dropped for coming too fast.
pub const REPORTS_DROPPED: Family = family(
    FromRecorder,
    C,
    "uwsgi_router_load_reports_dropped_total",
    &[],
    "Agent load reports dropped for coming faster than control.min_report_interval.",
);
/// Admin API calls refused.
pub const ADMIN_REFUSED: Family = family(
    FromRecorder,
    C,
    "uwsgi_router_admin_calls_refused_total",
    &["reason"],
    "Admin API (routerctl) calls refused, by reason: unauthenticated.",
);
/// Nodes by pool and state.
pub const NODES: Family = family(
    FromCluster,
    G,
    "uwsgi_router_nodes",
    &["pool", "state"],
    "Nodes by pool and state: active, joining (slow start), ejected, draining, drained.",
);
/// State of each node (1 for its state, 0 for the others).
pub const NODE_STATE: Family = family(
    FromCluster,
    G,
    "uwsgi_router_node_state",
    &["pool", "node", "state"],
    "State of each node: 1 for its current state (active, joining, ejected, draining, \
         drained), 0 for the others.",
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

/// Access log lines dropped because the writer was behind.
pub const ACCESS_LOG_DROPPED: Family = family(
    FromRecorder,
    C,
    "uwsgi_router_access_log_lines_dropped_total",
    &["reason"],
    "Access log lines lost, by reason: queue_full (access_log.queue_size lines were already \
         waiting for the writer: a slow disk or a blocked stderr; requests are never held up for \
         the log) or write_failed (the write returned an error: a full disk, say).",
);

/// Every family routerd exports, in the order they are documented.
pub const FAMILIES: &[Family] = &[
    REQUESTS,
    REQUEST_DURATION,
    CONNECT_DURATION,
    RETRIES,
    RETRY_BUDGET_EXHAUSTED,
    QUEUED,
    QUEUE_REFUSED,
    REQUEST_DROPS,
    EJECTIONS,
    NODES_LEFT,
    PANIC_PICKS,
    MALFORMED,
    LOGS_SUPPRESSED,
    ACCESS_LOG_DROPPED,
    CLIENT_CONNECTIONS,
    HTTP_REQUESTS,
    CONFIG_RELOADS,
    CONFIG_LAST_RELOAD_SUCCESS,
    CONFIG_LAST_RELOAD_TIME,
    BUILD_INFO,
    REGISTRATIONS,
    REJECTIONS,
    REPORTS_DROPPED,
    ADMIN_REFUSED,
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
    PROCESS_CPU,
    PROCESS_OPEN_FDS,
    PROCESS_MAX_FDS,
    PROCESS_RESIDENT_MEMORY,
    PROCESS_VIRTUAL_MEMORY,
    PROCESS_START_TIME,
    PROCESS_THREADS,
];

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

// The standard process series, named as every Prometheus client library names them (no
// `uwsgi_router_` prefix), so that existing dashboards and alerts on them work unchanged.

/// CPU time used, user and system.
pub const PROCESS_CPU: Family = family(
    Origin::Process,
    C,
    "process_cpu_seconds_total",
    &[],
    "User and system CPU time the process has used, in seconds.",
);
/// File descriptors open now.
pub const PROCESS_OPEN_FDS: Family = family(
    Origin::Process,
    G,
    "process_open_fds",
    &[],
    "File descriptors the process has open: client, node and listener sockets, log files.",
);
/// The open file limit.
pub const PROCESS_MAX_FDS: Family = family(
    Origin::Process,
    G,
    "process_max_fds",
    &[],
    "The process's open file limit (soft RLIMIT_NOFILE); 0 when unlimited.",
);
/// Resident memory.
pub const PROCESS_RESIDENT_MEMORY: Family = family(
    Origin::Process,
    G,
    "process_resident_memory_bytes",
    &[],
    "Resident memory size of the process, in bytes.",
);
/// Virtual memory.
pub const PROCESS_VIRTUAL_MEMORY: Family = family(
    Origin::Process,
    G,
    "process_virtual_memory_bytes",
    &[],
    "Virtual memory size of the process, in bytes.",
);
/// Start time.
pub const PROCESS_START_TIME: Family = family(
    Origin::Process,
    G,
    "process_start_time_seconds",
    &[],
    "Start time of the process, in seconds since the Unix epoch.",
);
/// OS threads.
pub const PROCESS_THREADS: Family = family(
    Origin::Process,
    G,
    "process_threads",
    &[],
    "OS threads of the process.",
);
