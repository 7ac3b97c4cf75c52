//! Per-node series, read from the cluster's atomics at scrape time: they exist exactly as long as
//! their node does, so nodes that come and go leave no series behind.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use super::text::Writer;
use super::{
    Family, RequestCounts, NODES, NODE_BUSY, NODE_FAILURES, NODE_IN_FLIGHT, NODE_LATENCY,
    NODE_LISTEN_QUEUE, NODE_REPORT_AGE, NODE_STATE, NODE_WEIGHT, NODE_WORKERS, REQUESTS, UNROUTED,
};
use crate::clock::now_ms;
use crate::cluster::{Cluster, Node, NodeState, Pool, PoolSnapshot};

/// Label values of [`NODES`] and [`NODE_STATE`].
const STATES: [&str; 4] = ["active", "ejected", "draining", "drained"];

/// What the scrape reads: every pool with the snapshot taken for this scrape.
type Pools = [(Arc<Pool>, Arc<PoolSnapshot>)];

/// Appends every [`Origin::Cluster`](super::Origin::Cluster) family to `out`.
pub(super) fn render(cluster: &Cluster, out: &mut String) {
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
    requests(&mut w, &pools);
    node_counts(&mut w, &pools, now);
    let load = |n: &Node| n.load.at_ms.load(Relaxed) != 0;
    per_node(&mut w, &pools, &NODE_IN_FLIGHT, |n| {
        Some(f64::from(n.in_flight.load(Relaxed)))
    });
    per_node(&mut w, &pools, &NODE_FAILURES, |n| {
        Some(n.failures.load(Relaxed) as f64)
    });
    per_node(&mut w, &pools, &NODE_WEIGHT, |n| {
        Some(f64::from(n.weight()))
    });
    per_node(&mut w, &pools, &NODE_LATENCY, |n| {
        Some(n.latency.get(now, n.in_flight.load(Relaxed) > 0) / 1e3)
    });
    per_node(&mut w, &pools, &NODE_BUSY, |n| {
        load(n).then(|| f64::from(n.load.busy.load(Relaxed)))
    });
    per_node(&mut w, &pools, &NODE_WORKERS, |n| {
        load(n).then(|| f64::from(n.load.capacity.load(Relaxed)))
    });
    per_node(&mut w, &pools, &NODE_LISTEN_QUEUE, |n| {
        load(n).then(|| f64::from(n.load.queue.load(Relaxed)))
    });
    per_node(&mut w, &pools, &NODE_REPORT_AGE, |n| {
        load(n).then(|| now.saturating_sub(n.load.at_ms.load(Relaxed)) as f64 / 1e3)
    });
}

/// [`REQUESTS`]: per node, per pool for requests that reached no node, and for requests that
/// matched no pool. Outcomes a scope can have are always shown (0 included) so that `rate()`
/// sees their first increment; others only once they happened.
fn requests(w: &mut Writer<'_>, pools: &Pools) {
    w.family(&REQUESTS);
    let mut counts = |pool: &str, node: &str, counts: &RequestCounts| {
        for (outcome, n) in counts.iter() {
            let expected = (outcome == "503") == node.is_empty();
            if expected || n > 0 {
                let labels = [("pool", pool), ("node", node), ("outcome", outcome)];
                w.sample(REQUESTS.name, &labels, n);
            }
        }
    };
    counts("", "", &UNROUTED);
    for (pool, snap) in pools {
        counts(&pool.name, "", &pool.metrics.no_node);
        for node in &snap.nodes {
            counts(&pool.name, &node.id, &node.outcomes);
        }
    }
}

/// The state a node is counted in.
fn state(node: &Node, now: u64) -> &'static str {
    match node.state() {
        NodeState::Active if node.health.is_ejected(now) => "ejected",
        s => s.as_str(),
    }
}

/// [`NODES`] per pool and state, and [`NODE_STATE`] per node.
fn node_counts(w: &mut Writer<'_>, pools: &Pools, now: u64) {
    w.family(&NODES);
    for (pool, snap) in pools {
        for s in STATES {
            let n = snap.nodes.iter().filter(|n| state(n, now) == s).count();
            w.sample(NODES.name, &[("pool", &pool.name), ("state", s)], n);
        }
    }
    w.family(&NODE_STATE);
    for (pool, snap) in pools {
        for node in &snap.nodes {
            let current = state(node, now);
            for s in STATES {
                let labels = [("pool", &*pool.name), ("node", &node.id), ("state", s)];
                w.sample(NODE_STATE.name, &labels, u8::from(s == current));
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
                w.sample(family.name, &[("pool", &pool.name), ("node", &node.id)], v);
            }
        }
    }
}
