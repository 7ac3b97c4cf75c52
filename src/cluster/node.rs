//! One node as the data plane sees it: identity, and atomics that sessions and reports update.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use super::ewma::PeakEwma;
use super::health::Health;
use super::NodeAddr;
use crate::clock::now_ms;
use crate::metrics::RequestCounts;

/// Where a node came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Listed in the config file.
    Static,
    /// Announced by an agent over the Registry API.
    Registered,
    /// Announced by a uWSGI `--subscribe-to` datagram.
    Subscribed,
}

impl Source {
    /// Label value for logs, metrics and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Static => "static",
            Self::Registered => "registered",
            Self::Subscribed => "subscribed",
        }
    }
}

/// Lifecycle state kept on the node (ejection is separate: see [`Health`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum NodeState {
    /// Takes new requests.
    Active = 0,
    /// Takes no new requests; in-flight ones finish.
    Draining = 1,
    /// Drained: nothing in flight and no new requests until resumed (or removed).
    Drained = 2,
}

impl NodeState {
    /// Label value for logs, metrics and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Draining => "draining",
            Self::Drained => "drained",
        }
    }
}

/// What the node last said about its own load (all zero until it reports).
#[derive(Debug, Default)]
pub struct ReportedLoad {
    /// Workers (processes x threads); 0 = unknown.
    pub capacity: AtomicU32,
    /// Workers busy at the last report.
    pub busy: AtomicU32,
    /// Listen-queue backlog at the last report.
    pub queue: AtomicU32,
    /// [`now_ms`] of the last report; 0 = never.
    pub at_ms: AtomicU64,
}

/// Reports older than this are ignored: the cost falls back to what the router sees itself.
pub const REPORT_STALE_MS: u64 = 3_000;

impl ReportedLoad {
    /// Load the node reported (busy workers plus listen queue) beyond the router's own
    /// `in_flight` requests, or 0 when there is no fresh report.
    pub fn extra_load(&self, now_ms: u64, in_flight: u32) -> f64 {
        let at = self.at_ms.load(Relaxed);
        if at == 0 || now_ms.saturating_sub(at) > REPORT_STALE_MS {
            return 0.0;
        }
        // The router's own requests are in the node's busy workers and listen queue too, and
        // already counted through `in_flight`: only what is beyond them is someone else's.
        let reported = self.busy.load(Relaxed) + self.queue.load(Relaxed);
        f64::from(reported.saturating_sub(in_flight))
    }
}

/// A node of a pool. Shared by `Arc` between the cluster (owner) and pool snapshots.
#[derive(Debug)]
pub struct Node {
    /// Stable id: the agent's node id, or the address for static nodes.
    pub id: Arc<str>,
    /// The node's uwsgi socket.
    pub addr: NodeAddr,
    /// Static, registered or subscribed.
    pub source: Source,
    /// When it joined, in [`now_ms`]: drives slow start.
    pub joined_ms: u64,
    /// Configured or reported weight, 1..=1000.
    weight: AtomicU32,
    /// Operator override; 0 = none.
    weight_override: AtomicU32,
    state: AtomicU8,
    /// Requests this router has on the node right now.
    pub in_flight: AtomicU32,
    /// Requests this router sent to it (ever).
    pub requests: AtomicU64,
    /// Requests that failed on it (connect errors, resets, timeouts).
    pub failures: AtomicU64,
    /// Requests that reached it, by outcome (read at scrape time).
    pub outcomes: RequestCounts,
    /// Response latency (time to first byte), peak-EWMA.
    pub latency: PeakEwma,
    /// Passive health: consecutive failures and ejection.
    pub health: Health,
    /// The node's own load reports.
    pub load: ReportedLoad,
    /// [`now_ms`] when the node leaves unless renewed; 0 = no lease (static nodes).
    lease_until: AtomicU64,
    /// What the node said about itself when it joined.
    pub meta: NodeMeta,
    /// `modifier1` and `modifier2` written over bytes 0 and 3 of each request forwarded to the
    /// node (a subscribed node's announced ones, as uWSGI's FastRouter does); `None`: unchanged.
    pub modifiers: Option<(u8, u8)>,
}

/// Descriptive facts a dynamic node announces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeMeta {
    /// Free-form `key=value` labels (host, zone, release...).
    pub labels: Vec<(String, String)>,
    /// The node's software version, as announced.
    pub version: String,
}

impl Node {
    /// A new active node joining now.
    pub fn new(id: impl Into<Arc<str>>, addr: NodeAddr, source: Source, weight: u32) -> Self {
        Self {
            id: id.into(),
            addr,
            source,
            joined_ms: now_ms(),
            weight: AtomicU32::new(weight.clamp(1, 1000)),
            weight_override: AtomicU32::new(0),
            state: AtomicU8::new(NodeState::Active as u8),
            in_flight: AtomicU32::new(0),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            outcomes: RequestCounts::new(),
            latency: PeakEwma::default(),
            health: Health::default(),
            load: ReportedLoad::default(),
            lease_until: AtomicU64::new(0),
            meta: NodeMeta::default(),
            modifiers: None,
        }
    }

    /// Sets the announced facts (before the node is shared).
    pub fn with_meta(mut self, meta: NodeMeta) -> Self {
        self.meta = meta;
        self
    }

    /// Sets the modifiers to write into forwarded requests (before the node is shared).
    pub fn with_modifiers(mut self, modifiers: Option<(u8, u8)>) -> Self {
        self.modifiers = modifiers;
        self
    }

    /// Extends the node's lease to `now_ms + lease`.
    pub fn renew_lease(&self, now_ms: u64, lease: Duration) {
        self.lease_until
            .store(now_ms.saturating_add(crate::clock::ms(lease)), Relaxed);
    }

    /// True when the node has a lease and it ran out.
    pub fn lease_expired(&self, now_ms: u64) -> bool {
        let until = self.lease_until.load(Relaxed);
        until != 0 && now_ms >= until
    }

    /// Current lifecycle state.
    pub fn state(&self) -> NodeState {
        match self.state.load(Relaxed) {
            1 => NodeState::Draining,
            2 => NodeState::Drained,
            _ => NodeState::Active,
        }
    }

    /// Moves the node to `state`.
    pub fn set_state(&self, state: NodeState) {
        self.state.store(state as u8, Relaxed);
    }

    /// Sets the configured or reported weight.
    pub fn set_weight(&self, weight: u32) {
        self.weight.store(weight.clamp(1, 1000), Relaxed);
    }

    /// Sets (Some) or clears (None) the operator's weight override.
    pub fn set_weight_override(&self, weight: Option<u32>) {
        self.weight_override
            .store(weight.map_or(0, |w| w.clamp(1, 1000)), Relaxed);
    }

    /// The configured or reported weight, ignoring any override.
    pub fn weight_configured(&self) -> u32 {
        self.weight.load(Relaxed)
    }

    /// The operator's override, if set.
    pub fn weight_override(&self) -> Option<u32> {
        match self.weight_override.load(Relaxed) {
            0 => None,
            w => Some(w),
        }
    }

    /// The weight in force: the override if set, else the configured or reported one.
    pub fn weight(&self) -> u32 {
        match self.weight_override.load(Relaxed) {
            0 => self.weight.load(Relaxed),
            w => w,
        }
    }

    /// Weight scaled by slow start: from 10% at join to 100% after `slow_start`.
    pub fn effective_weight(&self, now_ms: u64, slow_start: Duration) -> f64 {
        let w = f64::from(self.weight());
        let ramp = crate::clock::ms(slow_start);
        let age = now_ms.saturating_sub(self.joined_ms);
        if ramp == 0 || age >= ramp {
            return w;
        }
        w * (0.1 + 0.9 * age as f64 / ramp as f64)
    }

    /// True when the node may take a new request now: active and not ejected.
    pub fn is_usable(&self, now_ms: u64) -> bool {
        self.state() == NodeState::Active && !self.health.is_ejected(now_ms)
    }
}
