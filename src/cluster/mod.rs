//! Cluster state, the one owner of membership: pools, their nodes, and each pool's snapshot that the
//! data plane reads lock-free. Membership changes rebuild a snapshot (batched per
//! [`MEMBERSHIP_WINDOW`] under churn); traffic and load reports only touch atomics.

mod cause;
mod dynamic;
mod events;
mod lifecycle;
mod members;
mod operate;
mod overrides;
mod pool;
mod queue;
mod rate;
mod request;
mod retry;

pub use cause::{EjectCause, LeaveReason};
pub use events::{ClusterEvent, Events};
pub use lifecycle::{JoinError, MAINTENANCE_TICK};
pub use members::MEMBERSHIP_WINDOW;
pub use overrides::{OperatorChange, Overrides, StateFileError};
pub use pool::{NoPick, Pool, PoolSettings, PoolSnapshot};
pub use queue::{Place, Queue, QueueRefusal};
pub use retry::RetryPermit;

use std::sync::Arc;

use dashmap::DashMap;

use crate::config::Config;
use crate::node::RequestCounts;

/// Every pool by name. Control-path structure: sessions reach pools through the route table.
#[derive(Debug, Default)]
pub struct Cluster {
    pools: DashMap<Arc<str>, Arc<Pool>>,
    events: Events,
    /// Exact-host routes added at run time (host -> pool), for pools created from subscription keys.
    dynamic_routes: DashMap<Arc<str>, Arc<str>>,
    /// Requests that matched no pool, by outcome.
    unrouted: RequestCounts,
    /// Operators' drains, weights and ejections, kept across restarts.
    overrides: arc_swap::ArcSwap<Overrides>,
}

impl Cluster {
    /// Brings pools and static nodes in line with `config`: new pools are created, existing ones
    /// keep their nodes' state (counters, ejections) where the node is still listed, and pools no
    /// longer configured are dropped once they hold no node from another source.
    pub fn apply_config(&self, config: &Config) {
        let mut created = false;
        for (name, pool_cfg) in &config.pools {
            let settings = PoolSettings::from(pool_cfg);
            let pool = self
                .pools
                .entry(Arc::from(name.as_str()))
                .or_insert_with(|| {
                    created = true;
                    Arc::new(Pool::new(name, settings.clone(), self.events.clone()))
                })
                .clone();
            pool.configure(settings, &pool_cfg.nodes);
        }
        let before = self.pools.len();
        self.pools.retain(|name, pool| {
            config.pools.contains_key(&**name) || {
                pool.configure_statics(&[]);
                !pool.is_empty()
            }
        });
        // Announced once every pool is in place, so a route rebuild sees them all.
        if created || self.pools.len() != before {
            self.events.emit(ClusterEvent::PoolsChanged);
        }
    }

    /// Creates pool `name` with `settings` unless it exists; returns it either way.
    pub fn ensure_pool(&self, name: &str, settings: PoolSettings) -> Arc<Pool> {
        if let Some(p) = self.pool(name) {
            return p;
        }
        let pool = self
            .pools
            .entry(Arc::from(name))
            .or_insert_with(|| Arc::new(Pool::new(name, settings, self.events.clone())))
            .clone();
        self.events.emit(ClusterEvent::PoolsChanged);
        pool
    }

    /// The event stream.
    pub fn events(&self) -> &Events {
        &self.events
    }

    /// The pool called `name`.
    pub fn pool(&self, name: &str) -> Option<Arc<Pool>> {
        self.pools.get(name).map(|p| p.clone())
    }

    /// All pools, sorted by name.
    pub fn pools(&self) -> Vec<Arc<Pool>> {
        let mut v: Vec<_> = self.pools.iter().map(|p| p.clone()).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// The pools that have nodes but none usable now (every one draining or ejected), by name:
    /// what `metrics.readyz_requires_nodes` waits for.
    pub fn pools_without_usable_node(&self) -> Vec<Arc<str>> {
        self.pools()
            .into_iter()
            .filter(|p| {
                let s = p.snapshot();
                !s.nodes.is_empty() && !s.pick_available(&[])
            })
            .map(|p| p.name.clone())
            .collect()
    }

    /// Requests that matched no pool, by outcome.
    pub fn unrouted(&self) -> &RequestCounts {
        &self.unrouted
    }
}
