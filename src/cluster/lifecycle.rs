//! Membership of dynamic nodes (registered by agents, subscribed by uWSGI): admission checks,
//! leases, drains, and the maintenance tick that expires leases and completes drains.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Cluster, ClusterEvent, LeaveReason, Pool};
use crate::clock::now_ms;
use crate::node::{AdminState, Node, Source};

/// How often leases and drains are checked.
pub const MAINTENANCE_TICK: Duration = Duration::from_millis(100);

/// Why a node may not join.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// No pool by that name, and pools are not created on demand.
    #[error("no pool named {0:?} is configured")]
    UnknownPool(String),
    /// The pool already holds its `max_nodes`.
    #[error("pool {pool:?} is full ({max} nodes)")]
    PoolFull {
        /// Pool name.
        pool: String,
        /// Its limit.
        max: usize,
    },
    /// The address is outside the pool's `allowed_networks`.
    #[error("address {addr} is not in the allowed networks of pool {pool:?}")]
    AddressNotAllowed {
        /// Pool name.
        pool: String,
        /// The address announced.
        addr: String,
    },
    /// The node id is taken by a node of another source or address.
    #[error("node id {id:?} is already used by {holder}: {advice}")]
    IdTaken {
        /// The id.
        id: String,
        /// Which node holds it.
        holder: String,
        /// What to do.
        advice: &'static str,
    },
}

impl JoinError {
    /// A short stable name for metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::UnknownPool(_) => "unknown_pool",
            Self::PoolFull { .. } => "pool_full",
            Self::AddressNotAllowed { .. } => "address_not_allowed",
            Self::IdTaken { .. } => "id_taken",
        }
    }
}

impl Cluster {
    /// Admits a dynamic node into `pool` with a lease, replacing an earlier incarnation with the
    /// same id (a re-join after a blip or a router restart keeps nothing stale).
    pub fn join(&self, pool: &str, node: Node, lease: Duration) -> Result<Arc<Node>, JoinError> {
        let pool = self
            .pool(pool)
            .ok_or_else(|| JoinError::UnknownPool(pool.to_owned()))?;
        if !pool.settings().allowed_networks.allows_node(node.addr()) {
            return Err(JoinError::AddressNotAllowed {
                pool: pool.name.to_string(),
                addr: node.addr().to_string(),
            });
        }
        if let Some((other_pool, other)) = self.find(node.id()) {
            let same_pool = Arc::ptr_eq(&other_pool, &pool);
            let same_kind = other.source() == node.source() && same_pool;
            // An agent announcing a static node (same pool, same address) takes it over: the
            // migration from a static list to agents, with no gap in traffic.
            let adopts =
                other.source() == Source::Static && same_pool && other.addr() == node.addr();
            if adopts {
                tracing::info!(pool = %pool.name, node = %node.id(), source = node.source().as_str(), "node takes over its static entry");
            } else if !same_kind {
                let holder = format!(
                    "the {} node {} of pool {}",
                    other.source().as_str(),
                    other.addr(),
                    other_pool.name
                );
                let advice = if other.source() == Source::Static {
                    "announce that static node's own address in its pool to take it over, or give this node another id (router-agent --node-id)"
                } else {
                    "give this node another id (router-agent --node-id)"
                };
                return Err(JoinError::IdTaken {
                    id: node.id().to_string(),
                    holder,
                    advice,
                });
            }
        }
        let node = Arc::new(node);
        node.renew_lease(now_ms(), lease);
        // Before it takes a request: an operator's drain or weight of this node still holds.
        self.apply_overrides(&pool, &node);
        pool.add(node.clone())?;
        Ok(node)
    }

    /// Removes node `id` from whichever pool holds it.
    pub fn leave(&self, id: &str, reason: LeaveReason) -> Option<Arc<Node>> {
        let (pool, _) = self.find(id)?;
        pool.remove(id, reason)
    }

    /// The pool and node with id `id`.
    pub fn find(&self, id: &str) -> Option<(Arc<Pool>, Arc<Node>)> {
        self.pools
            .iter()
            .find_map(|p| Some((p.clone(), p.node(id)?)))
    }

    /// Starts draining node `id`. False if there is no such node.
    pub fn drain(&self, id: &str) -> bool {
        self.find(id).is_some_and(|(pool, _)| pool.drain(id))
    }

    /// One maintenance pass: dynamic nodes whose lease ran out leave; draining nodes with nothing
    /// in flight are announced drained, and dynamic ones leave unless their agent keeps their
    /// operator state (they stay, in maintenance).
    pub fn maintain_once(&self, now_ms: u64) {
        for pool in self.pools() {
            pool.measure_rate(now_ms);
            for node in pool.snapshot().nodes.iter() {
                let dynamic = node.source() != Source::Static;
                // By identity: the snapshot may still hold an incarnation a re-join replaced.
                if dynamic && node.lease_expired(now_ms) {
                    pool.remove_member(node, LeaveReason::LeaseExpired);
                } else if node.admin_state() == AdminState::Draining && node.in_flight() == 0 {
                    let end = node.finish_drain();
                    self.events.emit(ClusterEvent::NodeDrained {
                        pool: pool.name.clone(),
                        node: node.id().clone(),
                    });
                    // A node whose agent keeps its state stays listed, in maintenance.
                    if dynamic && end == AdminState::Drained {
                        pool.remove_member(node, LeaveReason::Drained);
                    }
                }
            }
        }
    }

    /// Runs [`Cluster::maintain_once`] every [`MAINTENANCE_TICK`] until `shutdown`.
    pub async fn maintain(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(MAINTENANCE_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.maintain_once(now_ms()),
                () = shutdown.cancelled() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn cluster(extra: &str) -> Arc<Cluster> {
        let config = Config::parse(&format!(
            "default_pool = \"\"\n[pools.web]\nmax_nodes = 2\n{extra}"
        ))
        .unwrap();
        let c = Arc::new(Cluster::default());
        c.apply_config(&config);
        c
    }

    fn node(id: &str, addr: &str) -> Node {
        Node::new(id, addr.parse().unwrap(), Source::Registered, 1)
    }

    const LEASE: Duration = Duration::from_secs(3);

    #[test]
    fn joins_are_checked() {
        let c = cluster("allowed_networks = [\"10.0.0.0/8\", \"127.0.0.0/8\"]\n");
        let mut events = c.events().subscribe();
        c.join("web", node("a", "10.1.2.3:3031"), LEASE).unwrap();
        assert!(matches!(
            events.try_recv(),
            Ok(ClusterEvent::NodeJoined { .. })
        ));
        assert_eq!(
            c.join("nope", node("b", "10.1.2.4:3031"), LEASE)
                .unwrap_err()
                .kind(),
            "unknown_pool"
        );
        assert_eq!(
            c.join("web", node("b", "192.168.1.1:3031"), LEASE)
                .unwrap_err()
                .kind(),
            "address_not_allowed"
        );
        assert_eq!(
            c.join("web", node("b", "app.internal:3031"), LEASE)
                .unwrap_err()
                .kind(),
            "address_not_allowed"
        );
        c.join("web", node("b", "unix:/run/app.sock"), LEASE)
            .unwrap();
        assert_eq!(
            c.join("web", node("c", "10.1.2.5:3031"), LEASE)
                .unwrap_err()
                .kind(),
            "pool_full"
        );
        // A re-join of a known id replaces it, even when full.
        c.join("web", node("a", "10.1.2.9:3031"), LEASE).unwrap();
        assert_eq!(c.pool("web").unwrap().len(), 2);
        assert_eq!(c.find("a").unwrap().1.addr().to_string(), "10.1.2.9:3031");
        // The same id from another source is refused.
        let sub = Node::new("a", "10.1.2.9:3031".parse().unwrap(), Source::Subscribed, 1);
        assert_eq!(c.join("web", sub, LEASE).unwrap_err().kind(), "id_taken");
    }

    #[test]
    fn leases_expire_unless_renewed() {
        let c = cluster("");
        let a = c.join("web", node("a", "127.0.0.1:1"), LEASE).unwrap();
        c.join("web", node("b", "127.0.0.1:2"), LEASE).unwrap();
        let now = now_ms();
        a.renew_lease(now + 2_000, LEASE);
        c.maintain_once(now + 3_500);
        assert!(c.find("a").is_some(), "renewed");
        assert!(c.find("b").is_none(), "expired");
    }

    #[test]
    fn drains_complete_when_nothing_is_in_flight() {
        let c = cluster("nodes = [\"127.0.0.1:9\"]\n");
        let a = c.join("web", node("a", "127.0.0.1:1"), LEASE).unwrap();
        let mut events = c.events().subscribe();
        let request = a.start_request();
        assert!(c.drain("a"));
        assert!(!a.is_usable(now_ms()));
        c.maintain_once(now_ms());
        assert!(c.find("a").is_some(), "still finishing a request");
        drop(request);
        c.maintain_once(now_ms());
        assert!(c.find("a").is_none(), "a drained dynamic node leaves");
        let seen: Vec<_> = std::iter::from_fn(|| events.try_recv().ok()).collect();
        assert!(matches!(seen[0], ClusterEvent::NodeDraining { .. }));
        assert!(matches!(seen[1], ClusterEvent::NodeDrained { .. }));
        assert!(matches!(
            &seen[2],
            ClusterEvent::NodeLeft {
                reason: LeaveReason::Drained,
                ..
            }
        ));
        // A static node drains but stays, drained, until resumed.
        assert!(c.drain("127.0.0.1:9"));
        c.maintain_once(now_ms());
        c.maintain_once(now_ms());
        let (_, s) = c.find("127.0.0.1:9").unwrap();
        assert_eq!(s.admin_state(), AdminState::Drained);
        let drained = std::iter::from_fn(|| events.try_recv().ok())
            .filter(|e| matches!(e, ClusterEvent::NodeDrained { .. }))
            .count();
        assert_eq!(drained, 1, "announced once");
    }
}
