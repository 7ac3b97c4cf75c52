//! Every metric routerd exports: the [`FAMILIES`] catalog (`catalog`), and one small typed function
//! per event, so call sites never spell a metric name.
//!
//! Two sources feed `/metrics`, each owning its own names: the `metrics` facade with the
//! Prometheus recorder ([`install`]) holds process-wide and per-pool series (a pool's are
//! registered once, in [`PoolMetrics`]); the cluster's own atomics are read at scrape time for
//! per-node series ([`crate::scrape`]), so a node's series vanish with the node and labels never
//! pile up. On the hot path, a request costs a few atomic additions.

mod catalog;
mod pool;
mod process;
mod recorder;
pub mod text;

pub use catalog::*;
pub use pool::{CauseLabels, PoolMetrics};
pub use process::render_process;
pub use recorder::{install, render_recorder, upkeep, CONNECT_BUCKETS, REQUEST_BUCKETS};

use std::sync::Arc;

use metrics::{counter, gauge};

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
    for reason in ["queue_full", "write_failed"] {
        counter!(ACCESS_LOG_DROPPED.name, "reason" => reason).increment(0);
    }
}

/// The git commit routerd was built from (set by `build.rs`), or `unknown`.
pub const GIT_COMMIT: &str = match option_env!("UWSGI_ROUTER_GIT_COMMIT") {
    Some(c) => c,
    None => "unknown",
};

/// A log line of `event` was held back by the throttle.
pub fn log_suppressed(event: &'static str) {
    counter!(LOGS_SUPPRESSED.name, "event" => event).increment(1);
}

/// `lines` access log lines were lost: `queue_full` or `write_failed`.
pub fn access_log_dropped(reason: &'static str, lines: u64) {
    counter!(ACCESS_LOG_DROPPED.name, "reason" => reason).increment(lines);
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

/// A client connection of `listener` (`uwsgi`, `http`) opened (+1) or closed (-1).
pub fn client_connections(listener: &'static str, delta: f64) {
    gauge!(CLIENT_CONNECTIONS.name, "listener" => listener).increment(delta);
}

/// A request arrived on an HTTP listener (a uwsgi connection carries one: see
/// `client_connections`). The handle is kept, so counting takes no registry lookup.
pub fn http_request() {
    static COUNTER: std::sync::OnceLock<metrics::Counter> = std::sync::OnceLock::new();
    COUNTER
        .get_or_init(|| counter!(HTTP_REQUESTS.name))
        .increment(1);
}

/// A config reload finished: `ok` or `error`.
pub fn config_reload(result: &'static str) {
    counter!(CONFIG_RELOADS.name, "result" => result).increment(1);
    gauge!(CONFIG_LAST_RELOAD_SUCCESS.name).set(if result == "ok" { 1.0 } else { 0.0 });
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    gauge!(CONFIG_LAST_RELOAD_TIME.name).set(now);
}

/// The series of the last reload, before any (so an alert on them has data from the start).
pub fn config_reload_series() {
    gauge!(CONFIG_LAST_RELOAD_SUCCESS.name).set(1.0);
    gauge!(CONFIG_LAST_RELOAD_TIME.name).set(0.0);
}

/// A node registered (or subscribed) into `pool`.
pub fn node_registered(pool: &Arc<str>, source: &'static str) {
    counter!(REGISTRATIONS.name, "pool" => pool.clone(), "source" => source).increment(1);
}

/// A node registration was refused (`unauthenticated`, `unknown_pool`, ...).
pub fn registration_rejected(reason: &'static str) {
    counter!(REJECTIONS.name, "reason" => reason).increment(1);
}

/// A node left `pool` (`lease_expired`, `drained`, ...).
pub fn node_left(pool: &Arc<str>, reason: &'static str) {
    counter!(NODES_LEFT.name, "pool" => pool.clone(), "reason" => reason).increment(1);
}

/// An agent's load report came too fast and was dropped.
pub fn report_dropped() {
    counter!(REPORTS_DROPPED.name).increment(1);
}

/// An Admin API call was refused (`unauthenticated`).
pub fn admin_refused(reason: &'static str) {
    counter!(ADMIN_REFUSED.name, "reason" => reason).increment(1);
}

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
            let standard = f.origin == Origin::Process && f.name.starts_with("process_");
            assert!(
                standard || f.name.starts_with("uwsgi_router_"),
                "{}",
                f.name
            );
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
    fn requests_help_names_every_outcome_label() {
        for label in crate::node::OUTCOME_LABELS {
            assert!(
                REQUESTS.help.contains(label),
                "the help of {} omits the outcome {label}",
                REQUESTS.name
            );
        }
        assert!(!REQUESTS.help.contains(" ok,"), "no outcome is named ok");
    }
}
