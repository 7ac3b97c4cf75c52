//! Cluster events: every membership and health change is logged here, once, and broadcast to
//! whoever listens (route rebuilds, registry sessions waiting for a drain, `routerctl watch`).

use std::sync::Arc;

use tokio::sync::broadcast;

use super::Source;

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
        /// Why: `lease expired`, `agent left`, `drained`, `removed from config`, ...
        reason: String,
    },
    /// Passive health checks ejected a node.
    NodeEjected {
        /// Pool name.
        pool: Arc<str>,
        /// Node id.
        node: Arc<str>,
        /// For how long.
        for_ms: u64,
    },
    /// A node stopped taking new requests.
    NodeDraining {
        /// Pool name.
        pool: Arc<str>,
        /// Node id.
        node: Arc<str>,
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
    /// Logs the event and broadcasts it.
    pub fn emit(&self, event: ClusterEvent) {
        log(&event);
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
        NodeLeft { pool, node, reason } => tracing::info!(%pool, %node, reason, "node left"),
        NodeEjected { pool, node, for_ms } => {
            tracing::warn!(%pool, %node, for_ms, "node ejected after consecutive failures")
        }
        NodeDraining { pool, node } => tracing::info!(%pool, %node, "node draining"),
        NodeDrained { pool, node } => tracing::info!(%pool, %node, "node drained"),
        NodeResumed { pool, node } => tracing::info!(%pool, %node, "node resumed"),
        PoolsChanged => tracing::debug!("pools changed"),
        ConfigReloaded => tracing::info!("config reloaded"),
    }
}
