//! Raw latency samples and their summary: exact percentiles over every sample, with no
//! coordinated-omission correction (the load is a closed loop, so this is what clients saw).

use std::time::Duration;

/// Percentiles over a set of samples.
#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    /// Number of samples.
    pub count: usize,
    /// Mean.
    pub mean: Duration,
    /// Median.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Slowest sample.
    pub max: Duration,
}

/// Summarizes samples given in microseconds (sorted in place).
pub fn summarize(samples_us: &mut [u32]) -> Summary {
    if samples_us.is_empty() {
        return Summary::default();
    }
    samples_us.sort_unstable();
    let total: u64 = samples_us.iter().map(|&s| u64::from(s)).sum();
    let us = |v: u64| Duration::from_micros(v);
    Summary {
        count: samples_us.len(),
        mean: us(total / samples_us.len() as u64),
        p50: us(rank(samples_us, 50.0)),
        p90: us(rank(samples_us, 90.0)),
        p99: us(rank(samples_us, 99.0)),
        max: us(u64::from(samples_us[samples_us.len() - 1])),
    }
}

/// Nearest-rank percentile of sorted samples: the smallest sample with `pct`% at or below it.
fn rank(sorted: &[u32], pct: f64) -> u64 {
    let n = sorted.len();
    let idx = ((pct / 100.0 * n as f64).ceil() as usize).clamp(1, n) - 1;
    u64::from(sorted[idx])
}

/// Converts a duration to whole microseconds, saturating (a sample over an hour is a bug anyway).
pub fn as_us(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut s: Vec<u32> = (1..=100).rev().collect();
        let sum = summarize(&mut s);
        assert_eq!(sum.count, 100);
        assert_eq!(sum.p50, Duration::from_micros(50));
        assert_eq!(sum.p99, Duration::from_micros(99));
        assert_eq!(sum.max, Duration::from_micros(100));
    }

    #[test]
    fn empty_is_zero() {
        assert_eq!(summarize(&mut []).count, 0);
    }
}
