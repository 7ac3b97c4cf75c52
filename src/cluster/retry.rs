//! The retry budget of a pool, as Envoy's: resends in flight at once are at most a share of the
//! pool's requests in flight (with a floor), so that a pool whose nodes all fail is not hit by
//! every request twice or three times over.

use std::sync::atomic::Ordering::Relaxed;

use super::Pool;

/// A resend the budget allowed, counted until dropped.
#[derive(Debug)]
pub struct RetryPermit<'a> {
    pool: &'a Pool,
}

impl Pool {
    /// A permit for one more resend, or `None` when the budget is spent (counted).
    pub fn try_retry(&self) -> Option<RetryPermit<'_>> {
        let snap = self.snapshot();
        let budget = &snap.settings.retry;
        let in_flight: u64 = snap.nodes.iter().map(|n| u64::from(n.in_flight())).sum();
        let allowed = (in_flight * u64::from(budget.budget_percent) / 100)
            .max(u64::from(budget.min_concurrency));
        let taken = self.retries_in_flight.fetch_add(1, Relaxed);
        if u64::from(taken) >= allowed {
            self.retries_in_flight.fetch_sub(1, Relaxed);
            self.metrics.retry_refused();
            return None;
        }
        Some(RetryPermit { pool: self })
    }
}

impl Drop for RetryPermit<'_> {
    fn drop(&mut self) {
        self.pool.retries_in_flight.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use crate::cluster::{Events, Pool, PoolSettings};
    use crate::config::RetryConfig;

    #[test]
    fn resends_in_flight_stay_within_the_budget() {
        let settings = PoolSettings {
            retry: RetryConfig {
                min_concurrency: 2,
                ..RetryConfig::default()
            },
            ..PoolSettings::default()
        };
        let pool = Pool::new("budget", settings, Events::default());
        let a = pool.try_retry().expect("within the floor");
        let _b = pool.try_retry().expect("within the floor");
        assert!(
            pool.try_retry().is_none(),
            "the floor is 2 with nothing in flight"
        );
        drop(a);
        assert!(
            pool.try_retry().is_some(),
            "a finished resend frees its place"
        );
    }
}
