//! Least connections: the usable node with the fewest in-flight requests per unit of weight;
//! ties go to whichever comes first after a random start, so they spread evenly.

use super::{random_index, Balance, PickContext};

/// Fewest in-flight requests relative to weight.
#[derive(Debug)]
pub(super) struct LeastConnections;

impl Balance for LeastConnections {
    fn pick(&self, cx: &PickContext<'_>, usable: &dyn Fn(usize) -> bool) -> Option<usize> {
        let n = cx.nodes.len();
        if n == 0 {
            return None;
        }
        let start = random_index(n);
        let mut best: Option<(usize, f64)> = None;
        for i in (0..n).map(|k| (start + k) % n).filter(|&i| usable(i)) {
            let node = &cx.nodes[i];
            let score =
                f64::from(node.in_flight()) / node.effective_weight(cx.now_ms, cx.slow_start);
            if best.is_none_or(|(_, b)| score < b) {
                best = Some((i, score));
            }
        }
        best.map(|(i, _)| i)
    }
}
