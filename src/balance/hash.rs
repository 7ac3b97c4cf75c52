//! Consistent hashing on a request var (sticky routing): a ring of points, many per node in
//! proportion to its weight, hashed with a stable function so every router agrees. Adding a node
//! moves only the keys that now land on its points (about 1/n of them).

use std::sync::Arc;

use xxhash_rust::xxh3::xxh3_64;

use super::{random::WeightedRandom, Balance, PickContext};
use crate::node::Node;

/// Ring points per unit of weight.
const POINTS_PER_WEIGHT: u64 = 160;
/// Most points for one node, whatever its weight.
const MAX_POINTS: u64 = 160 * 16;

/// A hash ring over a snapshot's nodes.
#[derive(Debug)]
pub(super) struct Ring {
    /// (point hash, node index), sorted by hash.
    points: Vec<(u64, u32)>,
}

impl Ring {
    pub(super) fn new(nodes: &[Arc<Node>]) -> Self {
        let min_weight = nodes.iter().map(|n| n.weight()).min().unwrap_or(1).max(1);
        let mut points = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            let count = (POINTS_PER_WEIGHT * u64::from(node.weight()) / u64::from(min_weight))
                .min(MAX_POINTS);
            for p in 0..count {
                let label = format!("{}#{p}", node.id());
                points.push((xxh3_64(label.as_bytes()), i as u32));
            }
        }
        points.sort_unstable();
        Self { points }
    }
}

impl Balance for Ring {
    fn pick(&self, cx: &PickContext<'_>, usable: &dyn Fn(usize) -> bool) -> Option<usize> {
        let Some(key) = cx.hash_key else {
            // No key to be sticky on: spread by weight.
            return WeightedRandom.pick(cx, usable);
        };
        let len = self.points.len();
        if len == 0 {
            return None;
        }
        let h = xxh3_64(key);
        let start = self.points.partition_point(|&(p, _)| p < h);
        (0..len)
            .map(|k| self.points[(start + k) % len].1 as usize)
            .find(|&i| usable(i))
    }
}
