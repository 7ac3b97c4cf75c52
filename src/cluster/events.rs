//! Cluster events: every membership and health change is logged and counted here, once, and
//! broadcast to whoever listens (route rebuilds, registry sessions waiting for a drain,
//! `routerctl watch`).

use std::sync::Arc;

use tokio::sync::broadcast;

use super::{EjectCause, LeaveReason};
use crate::metrics;
use crate::node::Source;

/// A change in the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterEvent {
    /// A node entered a pool.
    NodeJoined {
        /// Pool name.
        pool: Arc<str>,
        /// Node id.
        node: Arc<str>,
        /// Its uwsgi address.
        addr: String,
        /// Where it came from.
        source: Source,
    },
    /// A node left a pool.
    NodeLeft {
        /// Pool name.
        pool: Arc<str>,
        /// Node id.
        node: Arc<str>,
        /// Why.
        reason: LeaveReason,
    },
    /// A node was ejected.
    NodeEjected {
        /// Pool name.
        pool: Arc<str>,
        /// Node id.
        node: Arc<str>,
        /// For how long.
        for_ms: u64,
        /// By passive health checks or an operator.
        cause: EjectCause,
    },
    /// A node stopped taking new requests.
    NodeDraining {
        /// Pool name.
        pool: Arc<str>,
        /// Node id.
        node: Arc<str>,
    },
    /// An operator acted on a node (through the Admin API): who, and why they said.
    OperatorAction {
        /// Pool name.
        pool: Arc<str>,
        /// Node id.
        node: Arc<str>,
        /// `drain`, `resume`, `weight 7`, `weight cleared`, `eject for 30s`, `remove`.
        action: String,
        /// The caller: a token's name or a client certificate's fingerprint.
        actor: Arc<str>,
        /// The reason given (`routerctl --reason`), possibly empty.
        reason: Arc<str>,
    },
    /// A draining node has no request left in flight.
    NodeDrained {
        /// Pool name.
        pool: Arc<str>,
        /// Node id.
        node: Arc<str>,
    },
    /// An operator took a node back into rotation.
    NodeResumed {
        /// Pool name.
        pool: Arc<str>,
        /// Node id.
        node: Arc<str>,
    },
    /// A pool was created or dropped: routes must be rebuilt.
    PoolsChanged,
    /// The config file was reloaded and applied.
    ConfigReloaded,
}

/// Sender side of the event stream. Cloning is cheap; sending with no listener is fine.
#[derive(Debug, Clone)]
pub struct Events(broadcast::Sender<ClusterEvent>);

impl Default for Events {
    fn default() -> Self {
        Self(broadcast::channel(1024).0)
    }
}

impl Events {
    /// Logs and counts the event, and broadcasts it.
    pub fn emit(&self, event: ClusterEvent) {
        log(&event);
        count(&event);
        let _ = self.0.send(event);
    }

    /// A new listener, seeing events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ClusterEvent> {
        self.0.subscribe()
    }
}

fn log(event: &ClusterEvent) {
    use ClusterEvent::*;
    match event {
        NodeJoined {
            pool,
            node,
            addr,
            source,
        } => {
            tracing::info!(%pool, %node, %addr, source = source.as_str(), "node joined")
        }
        NodeLeft { pool, node, reason } => {
            tracing::info!(%pool, %node, reason = %reason, "node left")
        }
        NodeEjected {
            pool,
            node,
            for_ms,
            cause,
        } => tracing::warn!(%pool, %node, for_ms, cause = cause.label(), "node ejected {cause}"),
        NodeDraining { pool, node } => tracing::info!(%pool, %node, "node draining"),
        OperatorAction {
            pool,
            node,
            action,
            actor,
            reason,
        } => tracing::info!(%pool, %node, %action, %actor, %reason, "operator action"),
        NodeDrained { pool, node } => tracing::info!(%pool, %node, "node drained"),
        NodeResumed { pool, node } => tracing::info!(%pool, %node, "node resumed"),
        PoolsChanged => tracing::debug!("pools changed"),
        ConfigReloaded => tracing::info!("config reloaded"),
    }
}

/// The metric each event moves, if any.
fn count(event: &ClusterEvent) {
    match event {
        ClusterEvent::NodeJoined { pool, source, .. } if *source != Source::Static => {
            metrics::node_registered(pool, source.as_str());
        }
        ClusterEvent::NodeLeft { pool, reason, .. } => metrics::node_left(pool, reason.label()),
        ClusterEvent::NodeEjected { pool, cause, .. } => metrics::node_ejected(pool, cause.label()),
        _ => {}
    }
}
