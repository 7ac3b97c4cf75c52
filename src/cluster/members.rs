//! A pool's members as the control path changes them (under the pool's mutex), indexed by id, and
//! when their changes reach the snapshot the data plane reads: at once when the pool was quiet,
//! else at the end of the current [`MEMBERSHIP_WINDOW`], together with every change made in it.
//! So a lone join is visible at once, and churn costs one snapshot rebuild per window rather
//! than one per change (a rebuild copies the whole pool).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::PoolSettings;
use crate::config::StaticNode;
use crate::node::{Node, Source};

/// Membership changes of one pool within this long of its last snapshot rebuild are published
/// together, at the end of the window. Short enough that a node is taking requests well within
/// its first report interval; long enough that a mass join or expiry costs a few rebuilds.
pub const MEMBERSHIP_WINDOW: Duration = Duration::from_millis(20);

/// The members of a pool and its settings: what its snapshot is built from.
#[derive(Debug)]
pub(super) struct Members {
    pub(super) pool: Arc<str>,
    pub(super) settings: Arc<PoolSettings>,
    /// In join order: the order balancers see.
    nodes: Vec<Arc<Node>>,
    by_id: HashMap<Arc<str>, Arc<Node>>,
    /// The static nodes the config lists, those an agent took over included.
    pub(super) statics: Vec<StaticNode>,
    /// When the snapshot was last rebuilt from the members.
    published_at: Option<Instant>,
    /// A change is waiting for the end of the window.
    pending: bool,
    /// Membership changes made so far, to wait for their publication.
    changes: u64,
}

/// When a change should reach the snapshot.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Publish {
    /// Rebuild it now.
    Now,
    /// Rebuild it at this instant (nothing was scheduled yet).
    At(Instant),
    /// A rebuild is already scheduled, and will include the change.
    Scheduled,
}

impl Members {
    pub(super) fn new(pool: &str, settings: PoolSettings) -> Self {
        Self {
            pool: pool.into(),
            settings: Arc::new(settings),
            nodes: Vec::new(),
            by_id: HashMap::new(),
            statics: Vec::new(),
            published_at: None,
            pending: false,
            changes: 0,
        }
    }

    /// Every member, in join order.
    pub(super) fn nodes(&self) -> &[Arc<Node>] {
        &self.nodes
    }

    /// The member `id`.
    pub(super) fn get(&self, id: &str) -> Option<&Arc<Node>> {
        self.by_id.get(id)
    }

    /// Adds `node` last, replacing (and returning) a member with the same id.
    pub(super) fn insert(&mut self, node: Arc<Node>) -> Option<Arc<Node>> {
        let old = self.take(node.id());
        self.by_id.insert(node.id().clone(), node.clone());
        self.nodes.push(node);
        old
    }

    /// Removes and returns the member `id`.
    pub(super) fn take(&mut self, id: &str) -> Option<Arc<Node>> {
        let node = self.by_id.remove(id)?;
        // Pointer comparisons only: cheap even in a pool of thousands.
        if let Some(i) = self.nodes.iter().position(|n| Arc::ptr_eq(n, &node)) {
            self.nodes.remove(i);
        }
        Some(node)
    }

    /// Keeps the members for which `keep` holds.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&Arc<Node>) -> bool) {
        let by_id = &mut self.by_id;
        self.nodes.retain(|n| {
            let kept = keep(n);
            if !kept {
                by_id.remove(n.id());
            }
            kept
        });
    }

    /// Notes a membership change made at `now` and says when to publish it; `can_wait` is false
    /// where nothing could publish it later (no runtime), and it is then published now.
    pub(super) fn changed(&mut self, now: Instant, can_wait: bool) -> Publish {
        self.changes += 1;
        if self.pending {
            return Publish::Scheduled;
        }
        match self.published_at {
            Some(at) if can_wait && now < at + MEMBERSHIP_WINDOW => {
                self.pending = true;
                Publish::At(at + MEMBERSHIP_WINDOW)
            }
            _ => Publish::Now,
        }
    }

    /// Notes that the snapshot was rebuilt at `now`, with every change so far.
    pub(super) fn published(&mut self, now: Instant) {
        self.published_at = Some(now);
        self.pending = false;
    }

    /// Membership changes made so far (each [`Members::changed`] counts one).
    pub(super) fn changes(&self) -> u64 {
        self.changes
    }

    /// True while a change waits for the end of the window.
    pub(super) fn pending(&self) -> bool {
        self.pending
    }

    /// Keeps static members still listed in `statics` (updating weights), adds new ones, drops
    /// the rest. Returns the nodes added and removed.
    pub(super) fn set_statics(
        &mut self,
        statics: &[StaticNode],
    ) -> (Vec<Arc<Node>>, Vec<Arc<Node>>) {
        self.statics = statics.to_vec();
        let mut left = Vec::new();
        self.retain(|n| {
            let keep = n.source() != Source::Static || statics.iter().any(|s| &s.addr == n.addr());
            if !keep {
                left.push(n.clone());
            }
            keep
        });
        let mut joined = Vec::new();
        for s in statics {
            match self
                .nodes
                .iter()
                .find(|n| n.source() == Source::Static && n.addr() == &s.addr)
            {
                Some(n) => {
                    n.set_weight(s.weight);
                    n.set_backup(s.backup);
                }
                // Taken over by an agent's node: it serves the address now.
                None if self.by_id.contains_key(&*s.addr.to_string()) => {}
                None => {
                    let node = static_node(s);
                    self.insert(node.clone());
                    joined.push(node);
                }
            }
        }
        (joined, left)
    }

    /// The static entry that `node`, a dynamic node that had taken it over, hands back when it
    /// leaves, as a fresh member.
    pub(super) fn static_behind(&self, node: &Node) -> Option<Arc<Node>> {
        self.statics
            .iter()
            .find(|s| {
                node.source() != Source::Static
                    && s.addr == *node.addr()
                    && *s.addr.to_string() == **node.id()
            })
            .map(static_node)
    }
}

/// A fresh node for the static entry `s`.
fn static_node(s: &StaticNode) -> Arc<Node> {
    let node = Node::new(s.addr.to_string(), s.addr.clone(), Source::Static, s.weight);
    node.set_backup(s.backup);
    Arc::new(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str) -> Arc<Node> {
        Arc::new(Node::new(
            id,
            "127.0.0.1:1".parse().unwrap(),
            Source::Registered,
            1,
        ))
    }

    #[test]
    fn the_index_follows_every_change() {
        let mut m = Members::new("web", PoolSettings::default());
        m.insert(node("a"));
        m.insert(node("b"));
        let old = m.insert(node("a")).expect("a re-join replaces a");
        assert!(!Arc::ptr_eq(&old, m.get("a").unwrap()));
        let ids: Vec<_> = m.nodes().iter().map(|n| n.id().to_string()).collect();
        assert_eq!(ids, ["b", "a"], "the re-joined node goes last");
        m.retain(|n| &**n.id() != "b");
        assert!(m.get("b").is_none());
        assert!(m.take("a").is_some() && m.take("a").is_none());
        assert!(m.nodes().is_empty());
    }

    #[test]
    fn changes_within_a_window_of_the_last_rebuild_wait_for_its_end() {
        let mut m = Members::new("web", PoolSettings::default());
        let t0 = Instant::now();
        assert_eq!(
            m.changed(t0, true),
            Publish::Now,
            "a quiet pool publishes at once"
        );
        m.published(t0);
        let soon = t0 + MEMBERSHIP_WINDOW / 2;
        assert_eq!(m.changed(soon, true), Publish::At(t0 + MEMBERSHIP_WINDOW));
        assert_eq!(
            m.changed(soon, true),
            Publish::Scheduled,
            "one rebuild for both"
        );
        m.published(t0 + MEMBERSHIP_WINDOW);
        let later = t0 + MEMBERSHIP_WINDOW * 3;
        assert_eq!(m.changed(later, true), Publish::Now);
        m.published(later);
        assert_eq!(
            m.changed(later, false),
            Publish::Now,
            "nothing could publish later"
        );
    }
}
