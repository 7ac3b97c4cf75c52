//! The `/metrics` body: the recorder's series, then the per-node series read from the cluster's
//! atomics at scrape time. These exist exactly as long as their node does, so nodes that come and
//! go leave no series behind. A pool above `metrics.node_series_limit` nodes shows its nodes'
//! requests, in-flight requests and failures summed under `node="*"` (not a valid node id) instead
//! of one series per node.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::clock::now_ms;
use crate::cluster::{Cluster, Pool, PoolSnapshot};
use crate::metrics::text::{Labels, Value, Writer};
use crate::metrics::{
    render_recorder, Family, NODES, NODE_BUSY, NODE_FAILURES, NODE_IN_FLIGHT, NODE_LATENCY,
    NODE_LISTEN_QUEUE, NODE_REPORT_AGE, NODE_STATE, NODE_WEIGHT, NODE_WORKERS, REQUESTS,
};
use crate::node::{Node, NodeStatus, RequestCounts};

/// Outcomes every node shows, 0 included.
const NODE_ALWAYS: [&str; 5] = ["2xx", "4xx", "5xx", "502", "504"];
/// The `node` label of a capped pool's summed series.
pub const ALL_NODES: &str = "*";

/// The last body's length: the next one is about as long, so its buffer is allocated once
/// instead of doubling its way up (a 10,000-node body is over 10 MB).
static LAST_LEN: AtomicUsize = AtomicUsize::new(0);

/// One pool as the scrape sees it: the snapshot taken for this scrape and, unless the pool is
/// over the limit, each node's rendered `pool` and `node` labels.
struct Scraped {
    pool: Arc<Pool>,
    snap: Arc<PoolSnapshot>,
    /// `None`: over `metrics.node_series_limit`, summed under [`ALL_NODES`].
    nodes: Option<Vec<Labels>>,
    /// `pool="NAME",node="*"`.
    all: Labels,
}

/// The whole `/metrics` body; pools of more than `node_series_limit` nodes (if set) get no
/// per-node series.
pub fn render(cluster: &Cluster, node_series_limit: Option<usize>) -> String {
    let mut out = render_recorder();
    out.reserve(LAST_LEN.load(Ordering::Relaxed));
    render_cluster(cluster, node_series_limit, &mut out);
    LAST_LEN.store(out.len(), Ordering::Relaxed);
    out
}

/// Appends every [`Origin::Cluster`](crate::metrics::Origin::Cluster) family to `out`.
fn render_cluster(cluster: &Cluster, limit: Option<usize>, out: &mut String) {
    let now = now_ms();
    let pools: Vec<Scraped> = cluster
        .pools()
        .into_iter()
        .map(|pool| {
            let snap = pool.snapshot_arc();
            let over = limit.is_some_and(|l| snap.nodes.len() > l);
            let label = |node: &str| Labels::new(&[("pool", &pool.name), ("node", node)]);
            let nodes = (!over).then(|| snap.nodes.iter().map(|n| label(n.id())).collect());
            let all = label(ALL_NODES);
            Scraped {
                pool,
                snap,
                nodes,
                all,
            }
        })
        .collect();
    let mut w = Writer::new(out);
    requests(&mut w, cluster.unrouted(), &pools);
    node_counts(&mut w, &pools, now);
    summed(&mut w, &pools, &NODE_IN_FLIGHT, |n| {
        u64::from(n.in_flight())
    });
    summed(&mut w, &pools, &NODE_FAILURES, Node::failures_total);
    per_node(&mut w, &pools, &NODE_WEIGHT, |n| Some(n.weight().into()));
    per_node(&mut w, &pools, &NODE_LATENCY, |n| {
        Some((n.latency_ms(now) / 1e3).into())
    });
    per_node(&mut w, &pools, &NODE_BUSY, |n| {
        n.reported_load().map(|l| l.busy.into())
    });
    per_node(&mut w, &pools, &NODE_WORKERS, |n| {
        n.reported_load().map(|l| l.capacity.into())
    });
    per_node(&mut w, &pools, &NODE_LISTEN_QUEUE, |n| {
        n.reported_load().map(|l| l.queue.into())
    });
    per_node(&mut w, &pools, &NODE_REPORT_AGE, |n| {
        n.reported_load()
            .map(|l| (now.saturating_sub(l.at_ms) as f64 / 1e3).into())
    });
}

/// [`REQUESTS`]: per node (or summed over a capped pool's nodes), per pool for requests that
/// reached no node, and for requests that matched no pool. The outcomes error-ratio queries
/// divide by are always shown (0 included) so that `rate()` sees their first increment: a node's
/// `2xx`, `4xx`, `5xx`, `502` and `504`, the `503` of a pool or of no pool; others only once they
/// happened.
fn requests(w: &mut Writer<'_>, unrouted: &RequestCounts, pools: &[Scraped]) {
    w.family(&REQUESTS);
    let mut counts =
        |labels: &Labels, to_node: bool, counts: &mut dyn Iterator<Item = (&str, u64)>| {
            for (outcome, n) in counts {
                let expected = if to_node {
                    NODE_ALWAYS.contains(&outcome)
                } else {
                    outcome == "503"
                };
                if expected || n > 0 {
                    w.labelled(REQUESTS.name, labels, &[("outcome", outcome)], n);
                }
            }
        };
    counts(&Labels::new(&[]), false, &mut unrouted.iter());
    for p in pools {
        let pool = Labels::new(&[("pool", &p.pool.name)]);
        counts(&pool, false, &mut p.pool.metrics.no_node.iter());
        match &p.nodes {
            Some(labels) => {
                for (node, labels) in p.snap.nodes.iter().zip(labels) {
                    counts(labels, true, &mut node.outcomes().iter());
                }
            }
            None => {
                let mut sums: Vec<(&str, u64)> = RequestCounts::new().iter().collect();
                for node in &p.snap.nodes {
                    for (sum, (_, n)) in sums.iter_mut().zip(node.outcomes().iter()) {
                        sum.1 += n;
                    }
                }
                counts(&p.all, true, &mut sums.into_iter());
            }
        }
    }
}

/// [`NODES`] per pool and state, and [`NODE_STATE`] per node (not for capped pools).
fn node_counts(w: &mut Writer<'_>, pools: &[Scraped], now: u64) {
    w.family(&NODES);
    let statuses: Vec<Vec<NodeStatus>> = pools
        .iter()
        .map(|p| {
            let slow_start = p.snap.settings.slow_start;
            p.snap
                .nodes
                .iter()
                .map(|n| n.status(now, slow_start))
                .collect()
        })
        .collect();
    for (p, statuses) in pools.iter().zip(&statuses) {
        for s in NodeStatus::ALL {
            let n = statuses.iter().filter(|&&st| st == s).count();
            w.sample(
                NODES.name,
                &[("pool", &p.pool.name), ("state", s.as_str())],
                n,
            );
        }
    }
    w.family(&NODE_STATE);
    for (p, statuses) in pools.iter().zip(&statuses) {
        for (labels, current) in p.nodes.iter().flatten().zip(statuses) {
            for s in NodeStatus::ALL {
                let state = [("state", s.as_str())];
                w.labelled(NODE_STATE.name, labels, &state, u8::from(s == *current));
            }
        }
    }
}

/// A count per node, or summed over a capped pool's nodes.
fn summed(w: &mut Writer<'_>, pools: &[Scraped], family: &Family, value: impl Fn(&Node) -> u64) {
    w.family(family);
    for p in pools {
        match &p.nodes {
            Some(labels) => {
                for (node, labels) in p.snap.nodes.iter().zip(labels) {
                    w.labelled(family.name, labels, &[], value(node));
                }
            }
            None => {
                let sum: u64 = p.snap.nodes.iter().map(|n| value(n)).sum();
                w.labelled(family.name, &p.all, &[], sum);
            }
        }
    }
}

/// One gauge per node, none for capped pools; `value` returns `None` to leave a node out.
fn per_node(
    w: &mut Writer<'_>,
    pools: &[Scraped],
    family: &Family,
    value: impl Fn(&Node) -> Option<Value>,
) {
    w.family(family);
    for p in pools {
        for (node, labels) in p.snap.nodes.iter().zip(p.nodes.iter().flatten()) {
            if let Some(v) = value(node) {
                w.labelled(family.name, labels, &[], v);
            }
        }
    }
}
