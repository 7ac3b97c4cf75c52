//! What operators do to nodes (through the Admin API): drain and resume, weigh, eject, remove.
//! Each action takes effect at once and is announced as a cluster event.

use std::sync::Arc;
use std::time::Duration;

use super::{Cluster, ClusterEvent, EjectCause, Pool};
use crate::clock::now_ms;
use crate::node::{AdminState, Node};

impl Cluster {
    /// Takes node `id` back into rotation: active again, any ejection ended.
    pub fn resume(&self, id: &str) -> Option<(Arc<Pool>, Arc<Node>)> {
        let (pool, node) = self.find(id)?;
        node.set_admin_state(AdminState::Active);
        node.health().clear();
        self.events.emit(ClusterEvent::NodeResumed {
            pool: pool.name.clone(),
            node: node.id().clone(),
        });
        Some((pool, node))
    }

    /// Sets (`Some`) or clears (`None`) the operator's weight override of node `id`.
    pub fn set_weight_override(
        &self,
        id: &str,
        weight: Option<u32>,
    ) -> Option<(Arc<Pool>, Arc<Node>)> {
        let (pool, node) = self.find(id)?;
        node.set_weight_override(weight);
        pool.refresh();
        tracing::info!(pool = %pool.name, node = %node.id(), weight = node.weight(), "weight override {}", if weight.is_some() { "set" } else { "cleared" });
        Some((pool, node))
    }

    /// Ejects node `id` for `time` (the pool's base ejection time if `None`), whatever its health.
    pub fn eject(&self, id: &str, time: Option<Duration>) -> Option<(Arc<Pool>, Arc<Node>)> {
        let (pool, node) = self.find(id)?;
        let time = time.unwrap_or(pool.settings().ejection.base_time);
        pool.eject(&node, now_ms(), time, EjectCause::Operator);
        Some((pool, node))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn operator_actions_apply_at_once() {
        let config = Config::parse("[pools.default]\nalgorithm = \"weighted-round-robin\"\nnodes = [\"127.0.0.1:1\", \"127.0.0.1:2\"]\n").unwrap();
        let c = Cluster::default();
        c.apply_config(&config);
        let now = now_ms();
        let (_, n) = c
            .eject("127.0.0.1:1", Some(Duration::from_secs(60)))
            .unwrap();
        assert!(!n.is_usable(now));
        c.resume("127.0.0.1:1").unwrap();
        assert!(n.is_usable(now));
        c.drain("127.0.0.1:1");
        assert!(!n.is_usable(now));
        c.resume("127.0.0.1:1").unwrap();
        assert!(n.is_usable(now));
        c.set_weight_override("127.0.0.1:2", Some(3)).unwrap();
        let snap = c.pool("default").unwrap().snapshot_arc();
        let picks: Vec<usize> = (0..8).map(|_| snap.pick(None, &[]).unwrap()).collect();
        assert_eq!(
            picks
                .iter()
                .filter(|&&i| snap.nodes[i].id().as_ref() == "127.0.0.1:2")
                .count(),
            6,
            "3:1 after the override"
        );
        assert!(c.resume("nope").is_none());
    }
}
