//! Weighted random: each usable node with a probability proportional to its effective weight.

use rand::Rng;

use super::{Balance, PickContext};

/// Weighted random choice.
#[derive(Debug)]
pub(super) struct WeightedRandom;

impl Balance for WeightedRandom {
    fn pick(&self, cx: &PickContext<'_>, usable: &dyn Fn(usize) -> bool) -> Option<usize> {
        let weight = |i: usize| cx.nodes[i].effective_weight(cx.now_ms, cx.slow_start);
        let total: f64 = (0..cx.nodes.len()).filter(|&i| usable(i)).map(weight).sum();
        if total <= 0.0 {
            return None;
        }
        let mut r = rand::thread_rng().gen_range(0.0..total);
        let mut last = None;
        for i in (0..cx.nodes.len()).filter(|&i| usable(i)) {
            r -= weight(i);
            last = Some(i);
            if r < 0.0 {
                break;
            }
        }
        last
    }
}
