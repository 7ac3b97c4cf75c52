//! Pools and routes added at run time: a pool created for a subscription key that no configured
//! route matches, and the exact-host route to it. Route tables read these when they are built.

use std::sync::Arc;

use super::{Cluster, ClusterEvent, Pool, PoolSettings};

impl Cluster {
    /// Adds the exact-host route `host` -> `pool`, creating the pool with `settings` unless it
    /// exists, and has the routes rebuilt.
    pub fn add_dynamic_pool(&self, host: &str, pool: &str, settings: PoolSettings) -> Arc<Pool> {
        // The route goes in first, so the rebuild that pool creation triggers already sees it.
        self.dynamic_routes.insert(Arc::from(host), Arc::from(pool));
        let existed = self.pool(pool).is_some();
        let created = self.ensure_pool(pool, settings);
        if existed {
            self.events.emit(ClusterEvent::PoolsChanged);
        }
        created
    }

    /// The pool a dynamic route sends `host` to.
    pub fn dynamic_route(&self, host: &str) -> Option<Arc<str>> {
        self.dynamic_routes.get(host).map(|p| p.clone())
    }

    /// Every dynamic route as `(host, pool)`, sorted by host.
    pub fn dynamic_routes(&self) -> Vec<(Arc<str>, Arc<str>)> {
        let mut v: Vec<_> = self
            .dynamic_routes
            .iter()
            .map(|e| (e.key().clone(), e.value().clone()))
            .collect();
        v.sort();
        v
    }

    /// How many dynamic routes there are.
    pub fn dynamic_route_count(&self) -> usize {
        self.dynamic_routes.len()
    }

    /// Drops the dynamic route for `host` and, when `drop_pool`, its pool if it holds no node.
    /// Has the routes rebuilt. Returns false if there was no such route.
    pub fn remove_dynamic_route(&self, host: &str, drop_pool: bool) -> bool {
        let Some((_, pool)) = self.dynamic_routes.remove(host) else {
            return false;
        };
        if drop_pool {
            self.pools.remove_if(&pool, |_, p| p.is_empty());
        }
        self.events.emit(ClusterEvent::PoolsChanged);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::LeaveReason;
    use crate::node::{Node, Source};
    use std::time::Duration;

    #[test]
    fn dynamic_pools_come_and_go_with_their_route() {
        let c = Cluster::default();
        let mut events = c.events().subscribe();
        let pool = c.add_dynamic_pool("app.test", "app.test", PoolSettings::default());
        assert!(matches!(events.try_recv(), Ok(ClusterEvent::PoolsChanged)));
        assert_eq!(c.dynamic_route("app.test").as_deref(), Some("app.test"));
        assert_eq!(c.dynamic_route_count(), 1);
        let node = Node::new("n", "127.0.0.1:1".parse().unwrap(), Source::Subscribed, 1);
        c.join(&pool.name, node, Duration::from_secs(5)).unwrap();
        // A pool still holding a node outlives its route.
        assert!(c.remove_dynamic_route("app.test", true));
        assert!(c.pool("app.test").is_some());
        assert!(!c.remove_dynamic_route("app.test", true), "already gone");
        c.add_dynamic_pool("app.test", "app.test", PoolSettings::default());
        c.leave("n", LeaveReason::Unsubscribed);
        assert!(c.remove_dynamic_route("app.test", true));
        assert!(
            c.pool("app.test").is_none(),
            "an empty dynamic pool is dropped"
        );
    }
}
