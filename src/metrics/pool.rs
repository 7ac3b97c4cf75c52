//! A pool's recorder series, registered once when the pool is created so that recording a request
//! needs no lookup.

use std::time::Duration;

use metrics::{counter, gauge, histogram, Counter, Gauge, Histogram};

use super::{
    CONNECT_DURATION, EJECTIONS, NODES_LEFT, PANIC_PICKS, QUEUED, QUEUE_REFUSED, REQUEST_DROPS,
    REQUEST_DURATION, RETRIES, RETRY_BUDGET_EXHAUSTED,
};
use crate::config::RetryOn;
use crate::node::RequestCounts;

/// Label values of [`EJECTIONS`] and [`NODES_LEFT`], so their series start at 0.
#[derive(Debug, Clone, Copy)]
pub struct CauseLabels {
    /// Every ejection cause.
    pub ejections: &'static [&'static str],
    /// Every leave reason.
    pub leaves: &'static [&'static str],
    /// Every reason the queue refuses a request.
    pub queue_refusals: &'static [&'static str],
}

/// A pool's series.
#[derive(Debug)]
pub struct PoolMetrics {
    /// Requests of this pool that reached no node, by outcome (read at scrape time).
    pub no_node: RequestCounts,
    request_duration: Histogram,
    connect_duration: Histogram,
    /// By [`RetryOn::ALL`] order.
    retries: [Counter; RetryOn::ALL.len()],
    retries_refused: Counter,
    queued: Gauge,
    /// By [`CauseLabels::queue_refusals`] label.
    queue_refused: Vec<(&'static str, Counter)>,
    drops: Counter,
}

impl PoolMetrics {
    /// Registers the series of pool `name`; counters start at 0 so that `rate()` sees their
    /// first increment.
    pub fn new(name: &str, causes: CauseLabels) -> Self {
        let pool = name.to_owned();
        for reason in causes.ejections {
            counter!(EJECTIONS.name, "pool" => pool.clone(), "reason" => *reason).increment(0);
        }
        for reason in causes.leaves {
            counter!(NODES_LEFT.name, "pool" => pool.clone(), "reason" => *reason).increment(0);
        }
        counter!(PANIC_PICKS.name, "pool" => pool.clone()).increment(0);
        Self {
            no_node: RequestCounts::new(),
            request_duration: histogram!(REQUEST_DURATION.name, "pool" => pool.clone()),
            connect_duration: histogram!(CONNECT_DURATION.name, "pool" => pool.clone()),
            retries: RetryOn::ALL
                .map(|why| counter!(RETRIES.name, "pool" => pool.clone(), "reason" => why.label())),
            retries_refused: counter!(RETRY_BUDGET_EXHAUSTED.name, "pool" => pool.clone()),
            queued: gauge!(QUEUED.name, "pool" => pool.clone()),
            queue_refused: causes
                .queue_refusals
                .iter()
                .map(|r| {
                    let c = counter!(QUEUE_REFUSED.name, "pool" => pool.clone(), "reason" => *r);
                    c.increment(0);
                    (*r, c)
                })
                .collect(),
            drops: counter!(REQUEST_DROPS.name, "pool" => pool),
        }
    }

    /// A request of the pool ended, `took` after its head was read.
    pub fn request_finished(&self, took: Duration) {
        self.request_duration.record(took.as_secs_f64());
    }

    /// A connect to a node succeeded after `took`.
    pub fn connected(&self, took: Duration) {
        self.connect_duration.record(took.as_secs_f64());
    }

    /// A request is sent again, to another node, because of `why`.
    pub fn retry(&self, why: RetryOn) {
        let i = RetryOn::ALL.iter().position(|w| *w == why).unwrap_or(0);
        self.retries[i].increment(1);
    }

    /// A resend was refused by the retry budget.
    pub fn retry_refused(&self) {
        self.retries_refused.increment(1);
    }

    /// A request entered (`1.0`) or left (`-1.0`) the pool's queue.
    pub fn queued(&self, delta: f64) {
        self.queued.increment(delta);
    }

    /// The queue refused a request, for the reason labelled `reason`.
    pub fn queue_refused(&self, reason: &str) {
        if let Some((_, c)) = self.queue_refused.iter().find(|(r, _)| *r == reason) {
            c.increment(1);
        }
    }

    /// A node dropped a request but accepts connections.
    pub fn request_dropped(&self) {
        self.drops.increment(1);
    }
}
