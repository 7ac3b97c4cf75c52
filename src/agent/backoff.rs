//! Reconnect delays: exponential from 100 ms to 5 s, each with ±20% jitter so that agents that
//! lost the same router do not all come back in the same instant.

use std::time::Duration;

use rand::Rng;

/// First delay after a failure.
pub(crate) const BASE: Duration = Duration::from_millis(100);
/// Delays stop growing here.
pub(crate) const MAX: Duration = Duration::from_secs(5);
/// Each delay is the nominal one times a factor in `1 ± JITTER`.
const JITTER: f64 = 0.2;

/// Jittered exponential backoff; [`Backoff::reset`] after a success.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    nominal: Duration,
}

impl Backoff {
    pub(crate) fn new() -> Self {
        Self { nominal: BASE }
    }

    /// The next delay: the nominal one jittered; the nominal one then doubles, up to [`MAX`].
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = jitter(self.nominal);
        self.nominal = (self.nominal * 2).min(MAX);
        delay
    }

    /// A delay at the top of the range, for refusals that will not change in a moment.
    pub(crate) fn max_delay(&mut self) -> Duration {
        self.nominal = MAX;
        jitter(MAX)
    }

    /// Back to [`BASE`] after a session got through.
    pub(crate) fn reset(&mut self) {
        self.nominal = BASE;
    }
}

fn jitter(d: Duration) -> Duration {
    d.mul_f64(rand::thread_rng().gen_range(1.0 - JITTER..=1.0 + JITTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn within(d: Duration, nominal: Duration) -> bool {
        d >= nominal.mul_f64(1.0 - JITTER) && d <= nominal.mul_f64(1.0 + JITTER)
    }

    #[test]
    fn delays_double_from_100ms_up_to_5s_with_jitter() {
        let mut b = Backoff::new();
        let nominal = [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000];
        for ms in nominal {
            let d = b.next_delay();
            assert!(within(d, Duration::from_millis(ms)), "{d:?} vs {ms} ms");
        }
        for _ in 0..100 {
            let d = b.next_delay();
            assert!(
                d <= Duration::from_secs(6) && d >= Duration::from_secs(4),
                "{d:?}"
            );
        }
    }

    #[test]
    fn reset_starts_over_and_max_jumps_to_the_top() {
        let mut b = Backoff::new();
        assert!(within(b.max_delay(), MAX));
        assert!(within(b.next_delay(), MAX));
        b.reset();
        assert!(within(b.next_delay(), BASE));
    }

    #[test]
    fn jitter_spreads_delays() {
        let delays: std::collections::BTreeSet<Duration> =
            (0..50).map(|_| Backoff::new().next_delay()).collect();
        assert!(delays.len() > 10, "50 agents must not retry in lockstep");
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_loop_waits_the_backoff_on_tokio_clock() {
        let start = tokio::time::Instant::now();
        let mut b = Backoff::new();
        for _ in 0..8 {
            tokio::time::sleep(b.next_delay()).await;
        }
        // Nominal total 100+200+400+800+1600+3200+5000+5000 = 16.3 s, ±20%.
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(13_040) && waited <= Duration::from_millis(19_560),
            "{waited:?}"
        );
    }
}
