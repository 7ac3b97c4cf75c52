//! The node probe: every interval it reads uWSGI's stats (and runs the active check, if any) and
//! publishes the node's load, or `None` while the node does not answer, to every router session.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::addr::SocketTarget;
use super::counters::AgentCounters;
use super::health::{HealthCheck, HealthError};
use super::stats::{read_stats, NodeLoad, StatsError};

/// The node's latest state: its load, or `None` while it does not answer.
pub(crate) type NodeState = Option<NodeLoad>;

/// Why the node counts as down for this interval.
#[derive(Debug, thiserror::Error)]
enum Unavailable {
    #[error(transparent)]
    Stats(#[from] StatsError),
    #[error(transparent)]
    Health(#[from] HealthError),
}

/// Reads the node's state each interval.
#[derive(Debug)]
pub(crate) struct Probe {
    pub(crate) stats: SocketTarget,
    pub(crate) health: Option<HealthCheck>,
    pub(crate) interval: Duration,
    pub(crate) counters: Arc<AgentCounters>,
}

impl Probe {
    /// Time allowed for one stats read or active check.
    fn timeout(&self) -> Duration {
        self.interval
            .clamp(Duration::from_millis(500), Duration::from_secs(5))
    }

    /// Publishes the node's state into `tx` each interval until `stop`.
    pub(crate) async fn run(self, tx: watch::Sender<NodeState>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut was_up = None;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let state = match self.once().await {
                Ok(load) => {
                    if was_up != Some(true) {
                        tracing::info!(stats = %self.stats, capacity = load.capacity, busy = load.busy, "node answers; reporting its load");
                    }
                    Some(load)
                }
                Err(e) => {
                    self.count(&e);
                    if was_up == Some(false) {
                        tracing::debug!(error = %e, "node still unavailable");
                    } else {
                        tracing::warn!(error = %e, "node unavailable; no reports until it answers again");
                    }
                    None
                }
            };
            was_up = Some(state.is_some());
            self.counters.node_state(state.as_ref());
            tx.send_replace(state);
        }
    }

    async fn once(&self) -> Result<NodeLoad, Unavailable> {
        let limit = self.timeout();
        let stats = read_stats(&self.stats, limit);
        match &self.health {
            None => Ok(stats.await?),
            Some(check) => {
                let (load, status) = tokio::join!(stats, check.check(limit));
                let load = load?;
                status?;
                Ok(load)
            }
        }
    }

    fn count(&self, e: &Unavailable) {
        match e {
            Unavailable::Stats(_) => AgentCounters::inc(&self.counters.stats_errors),
            Unavailable::Health(_) => AgentCounters::inc(&self.counters.health_failures),
        }
    }
}
