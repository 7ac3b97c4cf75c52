//! Peak-EWMA latency, after linkerd2-proxy and tower: a new peak is taken at once, lower samples
//! blend in with a weight that grows with the time since the last one, and reading decays the
//! estimate towards zero, so a node that is no longer picked is tried again instead of frozen out.
//!
//! Two departures from linkerd, both measured on a pool with one node 10x slower than the others
//! (`bash benches/run.sh --only hetero`): the first sample replaces the default estimate, and the
//! decay takes 1 s, not 10 s. With linkerd's values a 2 ms and a 20 ms node looked alike for the
//! first 20-30 s, and one slow outlier held a fast node's estimate up for 10 s; p99 was 0.27-0.36x
//! of nginx `least_conn`'s, against 0.16-0.20x with these.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// Estimate for a node with no sample yet (linkerd's default RTT): new nodes are neither
/// flooded nor starved before their first response says what they are worth.
pub(super) const DEFAULT_RTT_MS: f64 = 30.0;
/// Time constant of the decay.
pub(super) const DECAY_MS: f64 = 1_000.0;

/// A lock-free peak-EWMA. Concurrent updates may lose one sample; the estimate stays sane.
#[derive(Debug)]
pub struct PeakEwma {
    /// f64 bits of the estimate in milliseconds.
    value: AtomicU64,
    /// `now_ms` of the last update.
    at_ms: AtomicU64,
    /// Set by the first sample, which replaces the default instead of blending with it.
    sampled: AtomicBool,
}

impl Default for PeakEwma {
    fn default() -> Self {
        Self {
            value: AtomicU64::new(DEFAULT_RTT_MS.to_bits()),
            at_ms: AtomicU64::new(crate::clock::now_ms()),
            sampled: AtomicBool::new(false),
        }
    }
}

impl PeakEwma {
    /// Adds a latency sample of `rtt_ms` observed at `now_ms`.
    pub fn observe(&self, rtt_ms: f64, now_ms: u64) {
        let prev = if self.sampled.swap(true, Relaxed) {
            self.decayed(now_ms, rtt_ms)
        } else {
            rtt_ms
        };
        self.value.store(prev.to_bits(), Relaxed);
        self.at_ms.store(now_ms, Relaxed);
    }

    /// The estimate as of `now_ms`, decayed towards zero since the last sample, unless requests
    /// are `pending`: a node whose requests hang must not look faster while they do.
    pub fn get(&self, now_ms: u64, pending: bool) -> f64 {
        if pending {
            return f64::from_bits(self.value.load(Relaxed));
        }
        self.decayed(now_ms, 0.0)
    }

    fn decayed(&self, now_ms: u64, sample: f64) -> f64 {
        let prev = f64::from_bits(self.value.load(Relaxed));
        if sample > prev {
            return sample;
        }
        let elapsed = now_ms.saturating_sub(self.at_ms.load(Relaxed)) as f64;
        let w = (-elapsed / DECAY_MS).exp();
        prev * w + sample * (1.0 - w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peaks_are_taken_at_once_and_fade() {
        let e = PeakEwma::default();
        e.observe(200.0, 1_000);
        assert_eq!(e.get(1_000, false), 200.0);
        // One time constant later the estimate has decayed to about 37%...
        let later = e.get(1_000 + DECAY_MS as u64, false);
        assert!((later - 200.0 / std::f64::consts::E).abs() < 1.0, "{later}");
        // ... unless requests are still pending on the node.
        assert_eq!(e.get(1_000 + DECAY_MS as u64, true), 200.0);
        // A low sample right after a peak barely moves it.
        e.observe(1.0, 1_010);
        assert!(e.get(1_010, false) > 190.0);
    }

    #[test]
    fn the_first_sample_replaces_the_default() {
        let e = PeakEwma::default();
        assert_eq!(e.get(0, true), DEFAULT_RTT_MS);
        e.observe(2.0, 5);
        assert_eq!(
            e.get(5, false),
            2.0,
            "a fast node is known as fast from its first response"
        );
        e.observe(1.0, 6);
        assert!(e.get(6, false) > 1.9, "later samples blend in");
    }
}
