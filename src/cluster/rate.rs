//! A request-rate meter fed by samples of a growing counter: lock-free, about once a second.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Shortest span between two samples that produce a rate.
const MIN_SPAN_MS: u64 = 1_000;

/// Rate of a counter, measured between samples at least a second apart.
#[derive(Debug, Default)]
pub(super) struct RateMeter {
    last_total: AtomicU64,
    last_ms: AtomicU64,
    rate: AtomicU64,
}

impl RateMeter {
    /// Feeds the counter's current `total`. A total that went down (nodes left with their
    /// counters) restarts the measurement instead of producing a negative rate.
    pub(super) fn sample(&self, total: u64, now_ms: u64) {
        let last_ms = self.last_ms.load(Relaxed);
        if last_ms != 0 && now_ms.saturating_sub(last_ms) < MIN_SPAN_MS {
            return;
        }
        let last_total = self.last_total.swap(total, Relaxed);
        self.last_ms.store(now_ms.max(1), Relaxed);
        if last_ms == 0 {
            return;
        }
        let rate = total.saturating_sub(last_total) as f64 * 1000.0 / (now_ms - last_ms) as f64;
        self.rate.store(rate.to_bits(), Relaxed);
    }

    /// The last measured rate, per second.
    pub(super) fn get(&self) -> f64 {
        f64::from_bits(self.rate.load(Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_per_second() {
        let m = RateMeter::default();
        m.sample(100, 1_000);
        assert_eq!(m.get(), 0.0);
        m.sample(150, 1_500); // too soon: ignored
        m.sample(400, 3_000);
        assert_eq!(m.get(), 150.0);
        m.sample(10, 4_000); // counter went down
        assert_eq!(m.get(), 0.0);
    }
}
