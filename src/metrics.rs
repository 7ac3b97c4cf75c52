//! Every metric routerd exports: names, help texts, and one small typed function per event, so
//! call sites never spell a metric name. Recording goes through the `metrics` facade; the daemon
//! installs the Prometheus recorder.

use std::sync::Arc;
use std::time::Duration;

use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit,
};

/// Requests finished, by pool, node and outcome.
pub const REQUESTS: &str = "uwsgi_router_requests_total";
/// Request duration (accept of the request head to the end of the exchange), by pool.
pub const REQUEST_DURATION: &str = "uwsgi_router_request_duration_seconds";
/// Time to connect to a node, by pool.
pub const CONNECT_DURATION: &str = "uwsgi_router_upstream_connect_duration_seconds";
/// Connect attempts retried on another node, by pool.
pub const RETRIES: &str = "uwsgi_router_retries_total";
/// Node ejections, by pool and reason.
pub const EJECTIONS: &str = "uwsgi_router_ejections_total";
/// Picks made in panic mode (every untried node ejected), by pool.
pub const PANIC_PICKS: &str = "uwsgi_router_panic_picks_total";
/// Malformed packets from clients, by kind.
pub const MALFORMED: &str = "uwsgi_router_malformed_packets_total";
/// Client connections open now.
pub const CLIENT_CONNECTIONS: &str = "uwsgi_router_client_connections";
/// Config reloads, by result.
pub const CONFIG_RELOADS: &str = "uwsgi_router_config_reloads_total";
/// Build information (constant 1).
pub const BUILD_INFO: &str = "uwsgi_router_build_info";

/// Registers help texts and the build info series.
pub fn describe() {
    describe_counter!(REQUESTS, "Requests finished, by pool, node and outcome.");
    describe_histogram!(
        REQUEST_DURATION,
        Unit::Seconds,
        "Request duration through the router."
    );
    describe_histogram!(
        CONNECT_DURATION,
        Unit::Seconds,
        "Time to connect to a node."
    );
    describe_counter!(RETRIES, "Connect attempts retried on another node.");
    describe_counter!(EJECTIONS, "Nodes ejected by passive health checks.");
    describe_counter!(
        PANIC_PICKS,
        "Nodes picked although ejected, because no other was left."
    );
    describe_counter!(
        MALFORMED,
        "Malformed uwsgi packets received from clients, by kind."
    );
    describe_gauge!(CLIENT_CONNECTIONS, "Client connections open now.");
    describe_counter!(CONFIG_RELOADS, "Config reloads, by result.");
    describe_gauge!(BUILD_INFO, "Build information.");
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

/// A request ended with `outcome` (`ok`, `client_abort`, `502`, ...). `node` is empty when none
/// was reached.
pub fn request_finished(pool: &Arc<str>, node: &Arc<str>, outcome: &'static str, took: Duration) {
    counter!(REQUESTS, "pool" => pool.clone(), "node" => node.clone(), "outcome" => outcome)
        .increment(1);
    histogram!(REQUEST_DURATION, "pool" => pool.clone()).record(took.as_secs_f64());
}

/// A connect to a node of `pool` succeeded after `took`.
pub fn connected(pool: &Arc<str>, took: Duration) {
    histogram!(CONNECT_DURATION, "pool" => pool.clone()).record(took.as_secs_f64());
}

/// A failed connect is retried on another node.
pub fn retry(pool: &Arc<str>) {
    counter!(RETRIES, "pool" => pool.clone()).increment(1);
}

/// A node was ejected.
pub fn node_ejected(pool: &Arc<str>, reason: &'static str) {
    counter!(EJECTIONS, "pool" => pool.clone(), "reason" => reason).increment(1);
}

/// A node was picked in panic mode.
pub fn panic_pick(pool: &Arc<str>) {
    counter!(PANIC_PICKS, "pool" => pool.clone()).increment(1);
}

/// A client sent a malformed packet.
pub fn malformed(kind: &'static str) {
    counter!(MALFORMED, "kind" => kind).increment(1);
}

/// A client connection opened (+1) or closed (-1).
pub fn client_connections(delta: f64) {
    gauge!(CLIENT_CONNECTIONS).increment(delta);
}

/// A config reload finished: `ok` or `error`.
pub fn config_reload(result: &'static str) {
    counter!(CONFIG_RELOADS, "result" => result).increment(1);
}
