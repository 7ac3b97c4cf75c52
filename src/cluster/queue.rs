//! A pool's queue: requests that found every usable node at `max_connections` wait here, first
//! come first served, until a request ends on one of them (HAProxy's backend queue). The queue
//! is bounded in length and in time; what it refuses gets a 503.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Arc;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::Pool;
use crate::config::QueueConfig;

/// The waiting side of a pool's node limit.
#[derive(Debug, Default)]
pub struct Queue {
    /// Notified once by each request that ends on a node under the limit: one waiter may go.
    freed: Arc<Notify>,
    /// Requests waiting now.
    waiting: AtomicU32,
}

/// Why a request left the queue without a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueRefusal {
    /// The queue already held `queue.size` requests.
    Full,
    /// No node freed up within `queue.timeout`.
    Timeout,
}

impl QueueRefusal {
    /// Label value of `uwsgi_router_queue_refused_total`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Timeout => "timeout",
        }
    }

    /// Every label, so that their series can start at 0.
    pub const LABELS: [&'static str; 2] = ["full", "timeout"];
}

impl Queue {
    /// What a request started under the limit notifies when it ends.
    pub fn freed(&self) -> &Arc<Notify> {
        &self.freed
    }

    /// True while requests wait: one that arrives now goes behind them.
    pub fn is_waiting(&self) -> bool {
        self.waiting.load(Relaxed) > 0
    }

    /// Requests waiting now.
    pub fn len(&self) -> u32 {
        self.waiting.load(Relaxed)
    }

    /// True when no request waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A request's place in its pool's queue, held until it gets a node or gives up.
#[derive(Debug)]
pub struct Place {
    pool: Arc<Pool>,
    /// When it gives up.
    pub deadline: Instant,
    /// When it started waiting.
    pub since: Instant,
}

impl Pool {
    /// Enters the queue, unless it already holds `cfg.size` requests.
    pub fn enter_queue(self: &Arc<Self>, cfg: &QueueConfig) -> Result<Place, QueueRefusal> {
        let queue = &self.queue;
        queue
            .waiting
            .fetch_update(Relaxed, Relaxed, |n| (n < cfg.size).then_some(n + 1))
            .map_err(|_| {
                self.metrics.queue_refused(QueueRefusal::Full.label());
                QueueRefusal::Full
            })?;
        self.metrics.queued(1.0);
        let since = Instant::now();
        Ok(Place {
            pool: self.clone(),
            deadline: since + cfg.timeout,
            since,
        })
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.pool.queue.waiting.fetch_sub(1, Relaxed);
        self.pool.metrics.queued(-1.0);
        // A wake-up that raced with giving up is not lost: tokio hands a `notify_one` that a
        // dropped `Notified` had received on to the next waiter.
    }
}
