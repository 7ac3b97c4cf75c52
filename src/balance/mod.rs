//! Load balancing: the [`Balance`] trait and one file per algorithm. A balancer is built for each
//! pool snapshot (so precomputed schedules and rings match its nodes) and reads node atomics live.

mod hash;
mod least_connections;
mod least_load;
mod random;
mod round_robin;
mod weighted_round_robin;

use std::fmt::Debug;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use crate::config::Algorithm;
use crate::node::Node;

/// What a balancer sees of one pick.
#[derive(Debug, Clone, Copy)]
pub struct PickContext<'a> {
    /// The pool snapshot's nodes; the picked index refers to this slice.
    pub nodes: &'a [Arc<Node>],
    /// Current [`crate::clock::now_ms`].
    pub now_ms: u64,
    /// The pool's slow-start ramp.
    pub slow_start: Duration,
    /// For `hash`: the value of the pool's hash var, if the request has it.
    pub hash_key: Option<&'a [u8]>,
}

/// A node-picking algorithm.
pub trait Balance: Send + Sync + Debug {
    /// Picks the index of a node for which `usable` is true, or `None` if there is none.
    fn pick(&self, cx: &PickContext<'_>, usable: &dyn Fn(usize) -> bool) -> Option<usize>;
}

/// Builds the balancer for a snapshot of `nodes`.
pub fn build(algorithm: Algorithm, nodes: &[Arc<Node>]) -> Box<dyn Balance> {
    match algorithm {
        Algorithm::LeastLoad => Box::new(least_load::LeastLoad),
        Algorithm::RoundRobin => Box::<round_robin::RoundRobin>::default(),
        Algorithm::WeightedRoundRobin => Box::new(weighted_round_robin::Smooth::new(nodes)),
        Algorithm::LeastConnections => Box::new(least_connections::LeastConnections),
        Algorithm::Random => Box::new(random::WeightedRandom),
        Algorithm::Hash => Box::new(hash::Ring::new(nodes)),
    }
}

/// The first usable index at or after `start`, wrapping around.
fn first_usable(start: usize, n: usize, usable: &dyn Fn(usize) -> bool) -> Option<usize> {
    (0..n).map(|k| (start + k) % n).find(|&i| usable(i))
}

/// The next usable position of a rotating `counter` over `n` positions. Positions skipped as
/// unusable are consumed too, so the node after a dead one gets one turn, not the dead one's as
/// well (with node 2 of 3 down, nodes 1 and 3 each get half). Under concurrent picks the skip is
/// best-effort: a lost compare-exchange only means another pick already moved the counter.
fn rotate(counter: &AtomicUsize, n: usize, usable: &dyn Fn(usize) -> bool) -> Option<usize> {
    let ticket = counter.fetch_add(1, Relaxed);
    let start = ticket % n;
    let pos = first_usable(start, n, usable)?;
    let skipped = (pos + n - start) % n;
    if skipped > 0 {
        let after = ticket.wrapping_add(1);
        let _ = counter.compare_exchange(after, after.wrapping_add(skipped), Relaxed, Relaxed);
    }
    Some(pos)
}

/// A uniformly random index below `n` (`n` > 0).
fn random_index(n: usize) -> usize {
    use rand::Rng;
    rand::thread_rng().gen_range(0..n)
}

#[cfg(test)]
mod tests;
