//! Least load: power of two choices (two distinct random usable nodes, keep the cheaper) over a
//! cost that combines what the router sees now (its in-flight requests, peak-EWMA latency) with
//! what the node last reported (busy workers and listen queue beyond the router's own requests),
//! divided by the effective weight (slow start included).

use super::{first_usable, random_index, Balance, PickContext};
use crate::node::Node;

/// Power of two choices over [`cost`].
#[derive(Debug)]
pub(super) struct LeastLoad;

impl Balance for LeastLoad {
    fn pick(&self, cx: &PickContext<'_>, usable: &dyn Fn(usize) -> bool) -> Option<usize> {
        let n = cx.nodes.len();
        if n == 0 {
            return None;
        }
        let a = first_usable(random_index(n), n, usable)?;
        if n == 1 {
            return Some(a);
        }
        // A random start among the other n-1 positions, so b is distinct from a.
        let start = (a + 1 + random_index(n - 1)) % n;
        let Some(b) = first_usable(start, n, &|i| i != a && usable(i)) else {
            return Some(a);
        };
        let (ca, cb) = (cost(&cx.nodes[a], cx), cost(&cx.nodes[b], cx));
        Some(if ca <= cb { a } else { b })
    }
}

/// Expected wait on `node` for one more request, relative to its weight. Lower is better.
pub(super) fn cost(node: &Node, cx: &PickContext<'_>) -> f64 {
    let pending = f64::from(node.in_flight()) + 1.0 + node.extra_load(cx.now_ms);
    let latency = node.latency_ms(cx.now_ms).max(0.01);
    pending * latency / node.effective_weight(cx.now_ms, cx.slow_start)
}
