//! The `/metrics` body: the recorder's series, then the per-node series read from the cluster's
//! atomics at scrape time. These exist exactly as long as their node does, so nodes that come and
//! go leave no series behind.

use std::sync::Arc;

use crate::clock::now_ms;
use crate::cluster::{Cluster, Pool, PoolSnapshot};
use crate::metrics::text::Writer;
use crate::metrics::{
    render_recorder, Family, NODES, NODE_BUSY, NODE_FAILURES, NODE_IN_FLIGHT, NODE_LATENCY,
    NODE_LISTEN_QUEUE, NODE_REPORT_AGE, NODE_STATE, NODE_WEIGHT, NODE_WORKERS, REQUESTS,
};
use crate::node::{Node, NodeStatus, RequestCounts};

/// Outcomes every node shows, 0 included.
const NODE_ALWAYS: [&str; 5] = ["2xx", "4xx", "5xx", "502", "504"];

/// What the scrape reads: every pool with the snapshot taken for this scrape.
type Pools = [(Arc<Pool>, Arc<PoolSnapshot>)];

/// The whole `/metrics` body.
pub fn render(cluster: &Cluster) -> String {
    let mut out = render_recorder();
    render_cluster(cluster, &mut out);
    out
}

/// Appends every [`Origin::Cluster`](crate::metrics::Origin::Cluster) family to `out`.
fn render_cluster(cluster: &Cluster, out: &mut String) {
    let now = now_ms();
    let pools: Vec<_> = cluster
        .pools()
        .into_iter()
        .map(|p| {
            let snap = p.snapshot_arc();
            (p, snap)
        })
        .collect();
    let mut w = Writer::new(out);
    requests(&mut w, cluster.unrouted(), &pools);
    node_counts(&mut w, &pools, now);
    per_node(&mut w, &pools, &NODE_IN_FLIGHT, |n| {
        Some(f64::from(n.in_flight()))
    });
    per_node(&mut w, &pools, &NODE_FAILURES, |n| {
        Some(n.failures_total() as f64)
    });
    per_node(&mut w, &pools, &NODE_WEIGHT, |n| {
        Some(f64::from(n.weight()))
    });
    per_node(&mut w, &pools, &NODE_LATENCY, |n| {
        Some(n.latency_ms(now) / 1e3)
    });
    per_node(&mut w, &pools, &NODE_BUSY, |n| {
        n.reported_load().map(|l| f64::from(l.busy))
    });
    per_node(&mut w, &pools, &NODE_WORKERS, |n| {
        n.reported_load().map(|l| f64::from(l.capacity))
    });
    per_node(&mut w, &pools, &NODE_LISTEN_QUEUE, |n| {
        n.reported_load().map(|l| f64::from(l.queue))
    });
    per_node(&mut w, &pools, &NODE_REPORT_AGE, |n| {
        n.reported_load()
            .map(|l| now.saturating_sub(l.at_ms) as f64 / 1e3)
    });
}

/// [`REQUESTS`]: per node, per pool for requests that reached no node, and for requests that
/// matched no pool. The outcomes error-ratio queries divide by are always shown (0 included) so
/// that `rate()` sees their first increment: a node's `2xx`, `4xx`, `5xx`, `502` and `504`, the
/// `503` of a pool or of no pool; others only once they happened.
fn requests(w: &mut Writer<'_>, unrouted: &RequestCounts, pools: &Pools) {
    w.family(&REQUESTS);
    let mut counts = |pool: &str, node: &str, counts: &RequestCounts| {
        for (outcome, n) in counts.iter() {
            let expected = if node.is_empty() {
                outcome == "503"
            } else {
                NODE_ALWAYS.contains(&outcome)
            };
            if expected || n > 0 {
                let labels = [("pool", pool), ("node", node), ("outcome", outcome)];
                w.sample(REQUESTS.name, &labels, n);
            }
        }
    };
    counts("", "", unrouted);
    for (pool, snap) in pools {
        counts(&pool.name, "", &pool.metrics.no_node);
        for node in &snap.nodes {
            counts(&pool.name, node.id(), node.outcomes());
        }
    }
}

/// [`NODES`] per pool and state, and [`NODE_STATE`] per node.
fn node_counts(w: &mut Writer<'_>, pools: &Pools, now: u64) {
    w.family(&NODES);
    let statuses = |snap: &PoolSnapshot| -> Vec<NodeStatus> {
        let slow_start = snap.settings.slow_start;
        snap.nodes
            .iter()
            .map(|n| n.status(now, slow_start))
            .collect()
    };
    let pools: Vec<_> = pools
        .iter()
        .map(|(pool, snap)| (pool, snap, statuses(snap)))
        .collect();
    for (pool, _, statuses) in &pools {
        for s in NodeStatus::ALL {
            let n = statuses.iter().filter(|&&st| st == s).count();
            w.sample(
                NODES.name,
                &[("pool", &pool.name), ("state", s.as_str())],
                n,
            );
        }
    }
    w.family(&NODE_STATE);
    for (pool, snap, statuses) in &pools {
        for (node, current) in snap.nodes.iter().zip(statuses) {
            for s in NodeStatus::ALL {
                let labels = [
                    ("pool", &*pool.name),
                    ("node", node.id()),
                    ("state", s.as_str()),
                ];
                w.sample(NODE_STATE.name, &labels, u8::from(s == *current));
            }
        }
    }
}

/// One gauge or counter per node; `value` returns `None` to leave a node out.
fn per_node(
    w: &mut Writer<'_>,
    pools: &Pools,
    family: &Family,
    value: impl Fn(&Node) -> Option<f64>,
) {
    w.family(family);
    for (pool, snap) in pools {
        for node in &snap.nodes {
            if let Some(v) = value(node) {
                w.sample(family.name, &[("pool", &pool.name), ("node", node.id())], v);
            }
        }
    }
}
