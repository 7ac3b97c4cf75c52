//! What a node's own registry session must hear about it: its admin state changed, or it left its
//! pool. Kept on the node itself rather than sent through the cluster's event broadcast, which
//! drops events for a slow listener: a mass removal must reach every session it concerns.

use std::sync::OnceLock;

use tokio::sync::Notify;

use super::{AdminState, Node};

/// Why a node left its pool, as its session tells the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Departure {
    /// The leave reason's metric label (`lease_expired`, `drained`, ...).
    pub label: &'static str,
    /// The reason, for people (`lease expired`, `removed by an operator`, ...).
    pub reason: String,
}

/// The node's departure, once it left, and a wake-up for whoever watches the node.
#[derive(Debug, Default)]
pub(super) struct Signal {
    departure: OnceLock<Departure>,
    /// One permit at most is kept: a watcher that was not waiting still sees the change on its
    /// next wait, and it reads the state itself, so coalesced wake-ups lose nothing.
    changed: Notify,
}

impl Node {
    /// Records that the node left its pool (the first reason wins) and wakes its watcher.
    pub fn mark_left(&self, label: &'static str, reason: String) {
        let _ = self.signal.departure.set(Departure { label, reason });
        self.signal.changed.notify_one();
    }

    /// Why the node left its pool; `None` while it is a member.
    pub fn departure(&self) -> Option<&Departure> {
        self.signal.departure.get()
    }

    /// Waits until the node's admin state changes or it leaves (possibly already happened since
    /// the last wait): read [`Node::admin_state`] and [`Node::departure`] after it.
    pub async fn changed(&self) {
        self.signal.changed.notified().await;
    }

    /// Moves the node to `state` (drain, drained, resume) and wakes its watcher.
    pub fn set_admin_state(&self, state: AdminState) {
        self.admin_state
            .store(state as u8, std::sync::atomic::Ordering::Relaxed);
        self.signal.changed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::Source;

    #[tokio::test]
    async fn a_change_made_before_the_wait_is_not_missed() {
        let node = Node::new("a", "127.0.0.1:1".parse().unwrap(), Source::Registered, 1);
        node.set_admin_state(AdminState::Draining);
        node.mark_left("lease_expired", "lease expired".into());
        node.mark_left("drained", "drained".into());
        node.changed().await;
        assert_eq!(node.admin_state(), AdminState::Draining);
        assert_eq!(node.departure().map(|d| d.label), Some("lease_expired"));
    }
}
