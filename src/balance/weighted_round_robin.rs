//! Smooth weighted round robin, as nginx's: over a cycle each node is picked in proportion to its
//! weight, interleaved rather than in bursts. The cycle is computed once per snapshot, so a pick is
//! one atomic increment instead of nginx's per-pick pass over every node under a lock.

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use super::{rotate, Balance, PickContext};
use crate::node::Node;

/// Longest precomputed cycle; larger weight sums are scaled down to fit.
const MAX_CYCLE: u64 = 16_384;

/// A precomputed smooth weighted cycle.
#[derive(Debug)]
pub(super) struct Smooth {
    cycle: Vec<u32>,
    next: AtomicUsize,
}

impl Smooth {
    pub(super) fn new(nodes: &[Arc<Node>]) -> Self {
        let weights = scaled_weights(nodes.iter().map(|n| u64::from(n.weight())).collect());
        Self {
            cycle: smooth_cycle(&weights),
            next: AtomicUsize::new(0),
        }
    }
}

impl Balance for Smooth {
    fn pick(&self, _cx: &PickContext<'_>, usable: &dyn Fn(usize) -> bool) -> Option<usize> {
        let len = self.cycle.len();
        if len == 0 {
            return None;
        }
        let pos = rotate(&self.next, len, &|k| usable(self.cycle[k] as usize))?;
        Some(self.cycle[pos] as usize)
    }
}

/// Divides weights by their gcd and, if the sum is still too long a cycle, scales them down.
fn scaled_weights(mut w: Vec<u64>) -> Vec<u64> {
    let g = w.iter().copied().fold(0, gcd).max(1);
    w.iter_mut().for_each(|x| *x /= g);
    let sum: u64 = w.iter().sum();
    if sum > MAX_CYCLE {
        w.iter_mut()
            .for_each(|x| *x = (*x * MAX_CYCLE / sum).max(1));
    }
    w
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// nginx's algorithm: add each weight to its node's current score, pick the highest, subtract the
/// total from it. Repeated `sum(weights)` times this yields each node exactly `weight` times.
fn smooth_cycle(weights: &[u64]) -> Vec<u32> {
    let total: i64 = weights.iter().sum::<u64>() as i64;
    let mut current = vec![0i64; weights.len()];
    let mut cycle = Vec::with_capacity(total as usize);
    for _ in 0..total {
        let mut best = 0;
        for (i, w) in weights.iter().enumerate() {
            current[i] += *w as i64;
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total;
        cycle.push(best as u32);
    }
    cycle
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_nginx_sequence() {
        // The example of nginx's commit introducing smooth weighting: weights a=5, b=1, c=1.
        assert_eq!(smooth_cycle(&[5, 1, 1]), vec![0, 0, 1, 0, 2, 0, 0]);
    }

    #[test]
    fn large_weight_sums_are_scaled() {
        let w = scaled_weights(vec![
            1000, 999, 1, 7, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000,
            1000, 1000, 1000,
        ]);
        assert!(w.iter().sum::<u64>() <= MAX_CYCLE + w.len() as u64);
        assert!(w.iter().all(|&x| x >= 1));
        assert_eq!(scaled_weights(vec![4, 2, 6]), vec![2, 1, 3]);
    }
}
