//! The agent's counters and gauges, kept in atomics so tests and the `/metrics` endpoint read them
//! without locks; every agent metric name is written here.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use super::stats::NodeLoad;

/// What the agent did since it started.
#[derive(Debug, Default)]
pub struct AgentCounters {
    /// Load reports handed to router sessions.
    pub reports_sent: AtomicU64,
    /// Stats reads that failed (connect, timeout, malformed document).
    pub stats_errors: AtomicU64,
    /// Active checks that failed.
    pub health_failures: AtomicU64,
    /// Announces sent, over all routers.
    pub announces: AtomicU64,
    /// Announces the routers refused.
    pub rejections: AtomicU64,
    /// Routers the agent keeps a session with right now: its URLs and the addresses of its DNS
    /// names (a gauge).
    pub routers: AtomicU64,
    /// Resolutions of a `dns:///` router name that failed (error, timeout, no address).
    pub resolve_failures: AtomicU64,
    /// Routers with an accepted session right now (a gauge).
    pub connected_routers: AtomicU64,
    /// 1 while the node answers its stats (and active check), else 0.
    pub node_up: AtomicU64,
    /// The node's capacity at the last good read.
    pub node_capacity: AtomicU64,
    /// The node's busy workers at the last good read.
    pub node_busy: AtomicU64,
    /// The node's listen queue at the last good read.
    pub node_listen_queue: AtomicU64,
}

impl AgentCounters {
    pub(crate) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    /// Records the node's state after a probe.
    pub(crate) fn node_state(&self, state: Option<&NodeLoad>) {
        self.node_up.store(u64::from(state.is_some()), Relaxed);
        if let Some(load) = state {
            self.node_capacity.store(load.capacity.into(), Relaxed);
            self.node_busy.store(load.busy.into(), Relaxed);
            self.node_listen_queue
                .store(load.listen_queue.into(), Relaxed);
        }
    }

    /// The Prometheus text format of every agent metric; `node` and `pool` label the info series.
    pub fn render(&self, node: &str, pool: &str) -> String {
        let mut out = String::with_capacity(2048);
        let info = format!(
            "node=\"{}\",pool=\"{}\",version=\"{}\"",
            escape(node),
            escape(pool),
            env!("CARGO_PKG_VERSION")
        );
        let _ = writeln!(
            out,
            "# HELP uwsgi_router_agent_info The agent's node, pool and version."
        );
        let _ = writeln!(out, "# TYPE uwsgi_router_agent_info gauge");
        let _ = writeln!(out, "uwsgi_router_agent_info{{{info}}} 1");
        let series: [(&str, &str, &str, u64); 12] = [
            (
                "reports_sent_total",
                "counter",
                "Load reports sent to routers.",
                self.reports_sent.load(Relaxed),
            ),
            (
                "stats_errors_total",
                "counter",
                "Failed reads of uWSGI's stats server.",
                self.stats_errors.load(Relaxed),
            ),
            (
                "health_failures_total",
                "counter",
                "Failed active checks.",
                self.health_failures.load(Relaxed),
            ),
            (
                "announces_total",
                "counter",
                "Announces sent to routers.",
                self.announces.load(Relaxed),
            ),
            (
                "rejections_total",
                "counter",
                "Announces refused by routers.",
                self.rejections.load(Relaxed),
            ),
            (
                "routers",
                "gauge",
                "Routers with a session: the URLs and the addresses of the dns:/// names.",
                self.routers.load(Relaxed),
            ),
            (
                "router_resolve_failures_total",
                "counter",
                "Failed resolutions of a dns:/// router name (the routers it gave are kept).",
                self.resolve_failures.load(Relaxed),
            ),
            (
                "connected_routers",
                "gauge",
                "Routers with an accepted session.",
                self.connected_routers.load(Relaxed),
            ),
            (
                "node_up",
                "gauge",
                "1 while the node answers its stats (and active check).",
                self.node_up.load(Relaxed),
            ),
            (
                "node_capacity",
                "gauge",
                "Worker slots of the node at the last stats read.",
                self.node_capacity.load(Relaxed),
            ),
            (
                "node_busy_workers",
                "gauge",
                "Busy worker slots at the last stats read.",
                self.node_busy.load(Relaxed),
            ),
            (
                "node_listen_queue",
                "gauge",
                "The node's listen queue at the last stats read.",
                self.node_listen_queue.load(Relaxed),
            ),
        ];
        for (name, kind, help, value) in series {
            let _ = writeln!(out, "# HELP uwsgi_router_agent_{name} {help}");
            let _ = writeln!(out, "# TYPE uwsgi_router_agent_{name} {kind}");
            let _ = writeln!(out, "uwsgi_router_agent_{name} {value}");
        }
        out
    }

    /// Counts one connected router until the guard is dropped.
    pub(crate) fn connected(self: &Arc<Self>) -> ConnectedGuard {
        self.connected_routers.fetch_add(1, Relaxed);
        ConnectedGuard(self.clone())
    }
}

/// Decrements [`AgentCounters::connected_routers`] when its session ends.
#[derive(Debug)]
pub(crate) struct ConnectedGuard(Arc<AgentCounters>);

impl Drop for ConnectedGuard {
    fn drop(&mut self) {
        self.0.connected_routers.fetch_sub(1, Relaxed);
    }
}

/// A label value with backslashes, quotes and newlines escaped, as the text format wants.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_lists_every_metric_with_its_type() {
        let c = AgentCounters::default();
        AgentCounters::inc(&c.reports_sent);
        c.node_state(Some(&NodeLoad {
            capacity: 4,
            busy: 3,
            listen_queue: 7,
            ..NodeLoad::default()
        }));
        c.routers.store(2, Relaxed);
        let text = c.render("app-1:3031", "web");
        for line in [
            "uwsgi_router_agent_info{node=\"app-1:3031\",pool=\"web\",version=",
            "# TYPE uwsgi_router_agent_reports_sent_total counter",
            "uwsgi_router_agent_reports_sent_total 1",
            "uwsgi_router_agent_routers 2",
            "uwsgi_router_agent_router_resolve_failures_total 0",
            "uwsgi_router_agent_node_up 1",
            "uwsgi_router_agent_node_capacity 4",
            "uwsgi_router_agent_node_busy_workers 3",
            "uwsgi_router_agent_node_listen_queue 7",
        ] {
            assert!(text.contains(line), "{line:?} missing from\n{text}");
        }
        c.node_state(None);
        assert!(c.render("a", "b").contains("uwsgi_router_agent_node_up 0"));
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
