//! A pool: its settings and members (changed on the control path, under a mutex) and the snapshot
//! built from them (read by sessions through arc-swap, never locked). Membership changes reach the
//! snapshot as `members` decides: at once in a quiet pool, else batched per window.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use arc_swap::{ArcSwap, Guard};

use tokio::sync::watch;
use tokio::time::Instant;

use super::members::{Members, Publish};
use super::{ClusterEvent, EjectCause, Events, JoinError, LeaveReason};
use crate::addr::Networks;
use crate::balance::{self, Balance, PickContext};
use crate::clock::now_ms;
use crate::config::{
    Algorithm, EjectionConfig, NodeTimeouts, PoolConfig, QueueConfig, RetryConfig, StaticNode,
};
use crate::metrics;
use crate::node::{AdminState, FailureVerdict, Node};

/// The pool settings sessions need, converted once from the config.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// How nodes are picked.
    pub algorithm: Algorithm,
    /// For `hash`: the var to hash.
    pub hash_var: Option<Box<[u8]>>,
    /// Connect attempts per request, each on another node.
    pub connect_attempts: u32,
    /// Slow-start ramp for new nodes.
    pub slow_start: Duration,
    /// Passive health checking.
    pub ejection: EjectionConfig,
    /// Which failed requests are resent elsewhere, and the retry budget.
    pub retry: RetryConfig,
    /// Where registered and subscribed nodes' addresses must be.
    pub allowed_networks: Networks,
    /// Most nodes the pool takes.
    pub max_nodes: usize,
    /// Node-facing timeouts.
    pub timeouts: NodeTimeouts,
    /// Requests one node takes at once; 0 = no limit.
    pub max_connections: u32,
    /// Where requests wait while every usable node is busy.
    pub queue: QueueConfig,
}

impl From<&PoolConfig> for PoolSettings {
    fn from(c: &PoolConfig) -> Self {
        Self {
            algorithm: c.algorithm,
            hash_var: c.hash_var.as_ref().map(|v| v.as_bytes().into()),
            connect_attempts: c.connect_attempts.max(1),
            slow_start: c.slow_start,
            ejection: c.ejection.clone(),
            retry: c.retry.clone(),
            allowed_networks: c.allowed_networks.clone(),
            max_nodes: c.max_nodes,
            timeouts: c.timeouts,
            max_connections: c.max_connections,
            queue: c.queue,
        }
    }
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self::from(&PoolConfig::default())
    }
}

/// An immutable view of a pool, swapped in whole when membership or settings change.
#[derive(Debug)]
pub struct PoolSnapshot {
    /// The pool's name.
    pub pool: Arc<str>,
    /// Settings in force.
    pub settings: Arc<PoolSettings>,
    /// Members, draining ones included (they finish their requests but get no new ones).
    pub nodes: Vec<Arc<Node>>,
    /// True when a member is a backup node.
    has_backup: bool,
    balancer: Box<dyn Balance>,
}

/// A pool of nodes serving one routing key.
#[derive(Debug)]
pub struct Pool {
    /// The pool's name.
    pub name: Arc<str>,
    /// Its metric series, registered once.
    pub metrics: metrics::PoolMetrics,
    snapshot: ArcSwap<PoolSnapshot>,
    members: Mutex<Members>,
    /// How many membership changes the snapshot has: what [`Pool::published`] waits on.
    published: watch::Sender<u64>,
    /// Serialises ejection decisions so the cap on ejected nodes holds under concurrent failures.
    eject_lock: Mutex<()>,
    events: Events,
    rate: super::rate::RateMeter,
    /// Resends in flight now, against the retry budget.
    pub(super) retries_in_flight: std::sync::atomic::AtomicU32,
    /// Requests waiting for a node under `max_connections`.
    pub queue: super::Queue,
}

impl Pool {
    /// An empty pool reporting its changes to `events`.
    pub fn new(name: &str, settings: PoolSettings, events: Events) -> Self {
        let members = Members::new(name, settings);
        Self {
            name: name.into(),
            metrics: metrics::PoolMetrics::new(
                name,
                metrics::CauseLabels {
                    ejections: &EjectCause::LABELS,
                    leaves: &LeaveReason::LABELS,
                    queue_refusals: &super::QueueRefusal::LABELS,
                },
            ),
            snapshot: ArcSwap::from_pointee(PoolSnapshot::of(&members)),
            members: Mutex::new(members),
            published: watch::Sender::new(0),
            eject_lock: Mutex::new(()),
            events,
            rate: super::rate::RateMeter::default(),
            retries_in_flight: std::sync::atomic::AtomicU32::new(0),
            queue: super::Queue::default(),
        }
    }

    /// Rebuilds the snapshot from the current members, so that balancers precomputed from
    /// weights (weighted round robin, hash rings) see a weight change.
    pub fn refresh(&self) {
        let m = self.lock();
        self.store(&m);
    }

    /// Rebuilds the snapshot from `m`, with every change so far. Weight changes and config
    /// applies come here directly: rare, they publish at once and open no membership window, so
    /// the join that follows them (a restored override, a router just started) is not delayed.
    fn store(&self, m: &Members) {
        self.snapshot.store(Arc::new(PoolSnapshot::of(m)));
        self.published.send_replace(m.changes());
    }

    /// Waits until every membership change made so far is in the snapshot (at most about one
    /// [`super::MEMBERSHIP_WINDOW`]): a registry session says Accepted or Removed once the data
    /// plane, and everyone reading the snapshot, sees it so.
    pub async fn published(&self) {
        let (mut published, made) = {
            let m = self.lock();
            (self.published.subscribe(), m.changes())
        };
        // The sender lives as long as the pool, which the caller holds.
        let _ = published.wait_for(|&n| n >= made).await;
    }

    /// Rebuilds the snapshot for a membership change, opening a membership window.
    fn publish_now(&self, m: &mut Members) {
        self.store(m);
        m.published(Instant::now());
    }

    /// Publishes a membership change as [`Members::changed`] decides: now, or with the rest of
    /// the window's changes by a task that waits for its end.
    fn publish_change(self: &Arc<Self>, m: &mut Members) {
        let runtime = tokio::runtime::Handle::try_current().ok();
        match (m.changed(Instant::now(), runtime.is_some()), runtime) {
            (Publish::At(end), Some(runtime)) => {
                let pool = self.clone();
                runtime.spawn(async move {
                    tokio::time::sleep_until(end).await;
                    pool.publish_pending();
                });
            }
            (Publish::Scheduled, _) => {}
            _ => self.publish_now(m),
        }
    }

    /// Publishes the changes waiting for the end of their window, if any.
    pub fn publish_pending(&self) {
        let mut m = self.lock();
        if m.pending() {
            self.publish_now(&mut m);
        }
    }

    /// Requests per second to the pool's nodes, as last measured by [`Pool::measure_rate`].
    pub fn requests_per_second(&self) -> f64 {
        self.rate.get()
    }

    /// Samples the pool's request counters to update its request rate (called about once a
    /// second by the maintenance tick).
    pub fn measure_rate(&self, now_ms: u64) {
        let total = self
            .snapshot
            .load()
            .nodes
            .iter()
            .map(|n| n.requests_total())
            .sum();
        self.rate.sample(total, now_ms);
    }

    /// Settings in force.
    pub fn settings(&self) -> Arc<PoolSettings> {
        self.snapshot.load().settings.clone()
    }

    /// The current snapshot (lock-free).
    pub fn snapshot(&self) -> Guard<Arc<PoolSnapshot>> {
        self.snapshot.load()
    }

    /// The current snapshot as an owned `Arc`, for holding across awaits.
    pub fn snapshot_arc(&self) -> Arc<PoolSnapshot> {
        self.snapshot.load_full()
    }

    /// True when the pool has no member (published or not).
    pub fn is_empty(&self) -> bool {
        self.lock().nodes().is_empty()
    }

    /// Replaces settings and the static node list in one snapshot swap.
    pub fn configure(&self, settings: PoolSettings, statics: &[StaticNode]) {
        let mut m = self.lock();
        m.settings = Arc::new(settings);
        let (joined, left) = m.set_statics(statics);
        self.store(&m);
        self.announce(&joined, &left);
    }

    /// Replaces the static node list, keeping settings.
    pub fn configure_statics(&self, statics: &[StaticNode]) {
        let mut m = self.lock();
        let (joined, left) = m.set_statics(statics);
        self.store(&m);
        self.announce(&joined, &left);
    }

    /// Announces static nodes added and removed by a config change (after the snapshot swap).
    fn announce(&self, joined: &[Arc<Node>], left: &[Arc<Node>]) {
        left.iter()
            .for_each(|n| self.emit_left(n, LeaveReason::RemovedFromConfig));
        joined.iter().for_each(|n| self.emit_joined(n));
    }

    fn emit_joined(&self, node: &Node) {
        self.events.emit(ClusterEvent::NodeJoined {
            pool: self.name.clone(),
            node: node.id().clone(),
            addr: node.addr().to_string(),
            source: node.source(),
        });
    }

    /// Tells the node's own session first (directly: the broadcast may drop events for a slow
    /// listener), then everyone else.
    fn emit_left(&self, node: &Node, reason: LeaveReason) {
        node.mark_left(reason.label(), reason.to_string());
        self.events.emit(ClusterEvent::NodeLeft {
            pool: self.name.clone(),
            node: node.id().clone(),
            reason,
        });
    }

    /// Number of members (published or not).
    pub fn len(&self) -> usize {
        self.lock().nodes().len()
    }

    /// Number of members (published or not) for which `which` holds: limits count what joined,
    /// not what the snapshot shows yet.
    pub fn count_members(&self, which: impl Fn(&Node) -> bool) -> usize {
        self.lock().nodes().iter().filter(|n| which(n)).count()
    }

    /// The member `id` (published or not).
    pub fn node(&self, id: &str) -> Option<Arc<Node>> {
        self.lock().get(id).cloned()
    }

    /// Puts a member in `Draining`: no new requests. Returns false if it is not a member.
    pub fn drain(&self, id: &str) -> bool {
        let Some(node) = self.node(id) else {
            return false;
        };
        if node.admin_state() == AdminState::Active {
            node.set_admin_state(AdminState::Draining);
            self.events.emit(ClusterEvent::NodeDraining {
                pool: self.name.clone(),
                node: node.id().clone(),
            });
        }
        true
    }

    /// Adds `node`, replacing a member with the same id (returned). Refused when the pool already
    /// holds `max_nodes` others.
    pub fn add(self: &Arc<Self>, node: Arc<Node>) -> Result<Option<Arc<Node>>, JoinError> {
        let mut m = self.lock();
        let replaces = m.get(node.id()).is_some();
        if !replaces && m.nodes().len() >= m.settings.max_nodes {
            return Err(JoinError::PoolFull {
                pool: self.name.to_string(),
                max: m.settings.max_nodes,
            });
        }
        let old = m.insert(node.clone());
        // Members first, then the event: whoever reacts to the event finds the node
        // ([`Pool::node`]); the data plane sees it within the membership window.
        self.publish_change(&mut m);
        self.emit_joined(&node);
        Ok(old)
    }

    /// Removes the member `id`, saying why. Returns it if it was there.
    pub fn remove(self: &Arc<Self>, id: &str, reason: LeaveReason) -> Option<Arc<Node>> {
        self.remove_if(id, |_| true, reason)
    }

    /// Removes `node` if it is still the member with its id (not replaced by a re-join since).
    pub fn remove_member(self: &Arc<Self>, node: &Arc<Node>, reason: LeaveReason) -> bool {
        self.remove_if(node.id(), |n| Arc::ptr_eq(n, node), reason)
            .is_some()
    }

    fn remove_if(
        self: &Arc<Self>,
        id: &str,
        this_one: impl FnOnce(&Arc<Node>) -> bool,
        reason: LeaveReason,
    ) -> Option<Arc<Node>> {
        let mut m = self.lock();
        if !this_one(m.get(id)?) {
            return None;
        }
        let node = m.take(id)?;
        // A node that had taken over a static entry still listed hands it back.
        let back = m.static_behind(&node);
        if let Some(s) = &back {
            m.insert(s.clone());
        }
        // Members first, then the node's session and the event: the session that hears of the
        // removal and re-announces must find its node gone.
        self.publish_change(&mut m);
        self.emit_left(&node, reason);
        if let Some(s) = back {
            self.emit_joined(&s);
        }
        Some(node)
    }

    fn lock(&self) -> MutexGuard<'_, Members> {
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a failed attempt on `node` and ejects it when its failures cross the threshold,
    /// unless that would eject more than the pool's cap. Returns the ejection time if ejected.
    pub(super) fn record_failure(&self, node: &Node) -> Option<Duration> {
        node.count_failure();
        let snap = self.snapshot();
        let FailureVerdict::Eject(time) = node.health().record_failure(&snap.settings.ejection)
        else {
            return None;
        };
        self.eject_capped(node, time, EjectCause::ConsecutiveFailures)
            .then_some(time)
    }

    /// Ejects `node` for `time` unless that would eject more of the pool than its cap allows.
    /// Returns whether it was ejected.
    pub(super) fn eject_capped(&self, node: &Node, time: Duration, cause: EjectCause) -> bool {
        let snap = self.snapshot();
        let _serial = self.eject_lock.lock().unwrap_or_else(|e| e.into_inner());
        let now = now_ms();
        let ejected = snap
            .nodes
            .iter()
            .filter(|n| n.health().is_ejected(now))
            .count();
        let cap = (snap.nodes.len() * snap.settings.ejection.max_percent as usize / 100).max(1);
        if ejected >= cap {
            tracing::warn!(pool = %self.name, node = %node.id(), ejected, cap, cause = cause.label(), "node keeps failing but the ejection cap is reached; it stays in");
            return false;
        }
        self.eject(node, now, time, cause);
        true
    }

    /// Ejects `node` from `now` for `time`, and announces why.
    pub(super) fn eject(&self, node: &Node, now: u64, time: Duration, cause: EjectCause) {
        node.health().eject(now, time);
        self.events.emit(ClusterEvent::NodeEjected {
            pool: self.name.clone(),
            node: node.id().clone(),
            for_ms: crate::clock::ms(time),
            cause,
        });
    }
}

impl PoolSnapshot {
    /// The snapshot of `m`, with its balancer built.
    fn of(m: &Members) -> Self {
        let nodes = m.nodes().to_vec();
        Self {
            pool: m.pool.clone(),
            settings: m.settings.clone(),
            has_backup: nodes.iter().any(|n| n.is_backup()),
            balancer: balance::build(m.settings.algorithm, &nodes),
            nodes,
        }
    }
}

impl PoolSnapshot {
    /// True when a node not in `tried` could take a request now (without claiming a probe).
    pub fn pick_available(&self, tried: &[usize]) -> bool {
        let now = now_ms();
        (0..self.nodes.len()).any(|i| !tried.contains(&i) && self.nodes[i].is_usable(now))
    }

    /// Picks a node for a request, skipping the indices in `tried`: a primary node, or a backup
    /// when no primary is usable; never one at the pool's `max_connections`. Takes the probe slot
    /// of a node whose ejection just ended. If every untried active node is ejected, picks among
    /// those anyway (panic mode): a request tried on a suspect node beats a certain 503.
    pub fn pick(&self, hash_key: Option<&[u8]>, tried: &[usize]) -> Result<usize, NoPick> {
        let now = now_ms();
        let cx = PickContext {
            nodes: &self.nodes,
            now_ms: now,
            slow_start: self.settings.slow_start,
            hash_key,
        };
        let limit = self.settings.max_connections;
        let has_room = |i: usize| limit == 0 || self.nodes[i].in_flight() < limit;
        let usable = |i: usize| !tried.contains(&i) && self.nodes[i].is_usable(now);
        for backup in [false, true] {
            if backup && !self.has_backup {
                break;
            }
            let tier = |i: usize| self.nodes[i].is_backup() == backup;
            if let Some(i) = self.pick_healthy(&cx, &|i| tier(i) && usable(i) && has_room(i)) {
                return Ok(i);
            }
            // A usable node of this tier is busy: the request waits for it (HAProxy's queue)
            // rather than spill over to backups that are meant for a pool that is down.
            if limit > 0 && (0..self.nodes.len()).any(|i| tier(i) && usable(i) && !has_room(i)) {
                return Err(NoPick::AllBusy);
            }
        }
        let active = |i: usize| {
            !tried.contains(&i) && self.nodes[i].admin_state() == AdminState::Active && has_room(i)
        };
        let i = self.balancer.pick(&cx, &active).ok_or(NoPick::NoNode)?;
        metrics::panic_pick(&self.pool);
        Ok(i)
    }

    /// A node for which `eligible` holds whose ejection is over (claiming the probe of one whose
    /// ejection just ended; a node whose probe another request holds is passed over).
    fn pick_healthy(
        &self,
        cx: &PickContext<'_>,
        eligible: &dyn Fn(usize) -> bool,
    ) -> Option<usize> {
        let mut lost_probe: Vec<usize> = Vec::new();
        loop {
            let i = self
                .balancer
                .pick(cx, &|i| eligible(i) && !lost_probe.contains(&i))?;
            let health = self.nodes[i].health();
            if health.ejected_until().is_none() || health.try_claim_probe(cx.now_ms) {
                return Some(i);
            }
            lost_probe.push(i);
        }
    }
}

/// Why [`PoolSnapshot::pick`] found no node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoPick {
    /// No untried node can take a request.
    NoNode,
    /// Every untried usable node has `max_connections` requests in flight.
    AllBusy,
}
