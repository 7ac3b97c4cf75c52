//! One node as the router knows it. Its identity is fixed when it joins; everything that changes
//! (admin state, weights, load reports, in-flight requests, outcomes, latency, health, lease) is
//! private and changes only through the methods here, each the one place its rule is written.
//!
//! `state` holds the admin state and [`Node::status`]; `load` the load-report rule; `request` the
//! in-flight guard that records a request's outcome, latency and health; `health` passive health
//! and ejection; `ewma` the latency estimate; `outcome` request outcomes and their counters;
//! `signal` what the node's own session must hear (admin state changes, its departure).

mod ewma;
mod health;
mod load;
mod outcome;
mod request;
mod signal;
mod state;

pub use ewma::PeakEwma;
pub use health::{FailureVerdict, Health, StatusFault};
pub use load::{LoadReport, ReportedLoad, REPORT_STALE_MS};
pub use outcome::{Outcome, RequestCounts, LABELS as OUTCOME_LABELS};
pub use request::{Evidence, Fault, InFlight};
pub use signal::Departure;
pub use state::{AdminState, NodeStatus, Source};

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use crate::addr::NodeAddr;
use crate::clock::now_ms;

/// A node of a pool. Shared by `Arc` between its pool (owner) and pool snapshots.
#[derive(Debug)]
pub struct Node {
    id: Arc<str>,
    addr: NodeAddr,
    source: Source,
    /// [`now_ms`] it joined at: drives slow start.
    joined_ms: u64,
    meta: NodeMeta,
    /// `modifier1` and `modifier2` written over bytes 0 and 3 of each request forwarded to the
    /// node (a subscribed node's announced ones, as uWSGI's FastRouter does); `None`: unchanged.
    modifiers: Option<(u8, u8)>,
    /// Configured or reported weight, 1..=1000.
    weight: AtomicU32,
    /// Operator override; 0 = none.
    weight_override: AtomicU32,
    /// Taken only when no other node of its pool is usable (a static node's `backup`).
    backup: AtomicBool,
    /// An [`AdminState`].
    admin_state: AtomicU8,
    /// Its agent keeps its operator state (see [`Node::agent_admin`]).
    agent_admin: bool,
    /// A drain ends in maintenance, the node staying listed (see [`Node::finish_drain`]).
    stays_drained: AtomicBool,
    /// Requests this router has on the node right now.
    in_flight: AtomicU32,
    /// Requests this router sent to it (ever).
    requests: AtomicU64,
    /// Requests that failed on it (connect errors, resets, timeouts).
    failures: AtomicU64,
    /// Requests that reached it, by outcome (read at scrape time).
    outcomes: RequestCounts,
    /// Time to first byte per request, peak-EWMA.
    latency: PeakEwma,
    health: Health,
    load: load::LoadCell,
    /// [`now_ms`] when the node leaves unless renewed; 0 = no lease (static nodes).
    lease_until: AtomicU64,
    signal: signal::Signal,
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
            meta: NodeMeta::default(),
            modifiers: None,
            weight: AtomicU32::new(weight.clamp(1, 1000)),
            weight_override: AtomicU32::new(0),
            backup: AtomicBool::new(false),
            admin_state: AtomicU8::new(AdminState::Active as u8),
            agent_admin: false,
            stays_drained: AtomicBool::new(false),
            in_flight: AtomicU32::new(0),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            outcomes: RequestCounts::new(),
            latency: PeakEwma::default(),
            health: Health::default(),
            load: load::LoadCell::default(),
            lease_until: AtomicU64::new(0),
            signal: signal::Signal::default(),
        }
    }

    /// Sets the announced facts (before the node is shared).
    pub fn with_meta(mut self, meta: NodeMeta) -> Self {
        self.meta = meta;
        self
    }

    /// Sets the worker count the node announced (before the node is shared): known before its
    /// first load report.
    pub fn with_capacity(self, capacity: u32) -> Self {
        self.load.announce_capacity(capacity);
        self
    }

    /// Sets the modifiers to write into forwarded requests (before the node is shared).
    pub fn with_modifiers(mut self, modifiers: Option<(u8, u8)>) -> Self {
        self.modifiers = modifiers;
        self
    }

    /// Stable id: the agent's node id, the address for static nodes, `address@pool` for
    /// subscribed ones.
    pub fn id(&self) -> &Arc<str> {
        &self.id
    }

    /// The node's uwsgi socket.
    pub fn addr(&self) -> &NodeAddr {
        &self.addr
    }

    /// Static, registered or subscribed.
    pub fn source(&self) -> Source {
        self.source
    }

    /// [`now_ms`] it joined at.
    pub fn joined_ms(&self) -> u64 {
        self.joined_ms
    }

    /// What it announced about itself.
    pub fn meta(&self) -> &NodeMeta {
        &self.meta
    }

    /// The modifiers written into requests forwarded to it, if any.
    pub fn modifiers(&self) -> Option<(u8, u8)> {
        self.modifiers
    }

    /// Passive health: consecutive failures and ejection.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Records a load report, which also renews the node's lease by `lease`: a node that reports
    /// is alive.
    pub fn record_report(&self, report: &LoadReport, now_ms: u64, lease: Duration) {
        if let Some(w) = report.weight {
            self.set_weight(w);
        }
        self.load.record(report, now_ms);
        self.renew_lease(now_ms, lease);
    }

    /// Workers the node has, as announced or last reported; 0 = unknown.
    pub fn capacity(&self) -> u32 {
        self.load.capacity()
    }

    /// The last load report, if any.
    pub fn reported_load(&self) -> Option<ReportedLoad> {
        self.load.get()
    }

    /// Load the node reported beyond the router's own in-flight requests (0 without a fresh
    /// report).
    pub fn extra_load(&self, now_ms: u64) -> f64 {
        self.load.extra_load(now_ms, self.in_flight())
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
        self.weight_override()
            .unwrap_or_else(|| self.weight_configured())
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

    /// Marks the node a backup, or a primary again (its pool rebuilds its snapshot after).
    pub fn set_backup(&self, backup: bool) {
        self.backup.store(backup, Relaxed);
    }

    /// True for a backup node: its pool sends it requests only when no other node is usable.
    pub fn is_backup(&self) -> bool {
        self.backup.load(Relaxed)
    }

    /// True when the node may take a new request now: active and not ejected.
    pub fn is_usable(&self, now_ms: u64) -> bool {
        self.admin_state() == AdminState::Active && !self.health.is_ejected(now_ms)
    }

    /// Requests this router has on the node now.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Relaxed)
    }

    /// Requests this router sent to it.
    pub fn requests_total(&self) -> u64 {
        self.requests.load(Relaxed)
    }

    /// Requests that failed on it.
    pub fn failures_total(&self) -> u64 {
        self.failures.load(Relaxed)
    }

    /// Counts a failed request or connect attempt (the pool decides about ejection).
    pub fn count_failure(&self) {
        self.failures.fetch_add(1, Relaxed);
    }

    /// Requests that reached it, by outcome.
    pub fn outcomes(&self) -> &RequestCounts {
        &self.outcomes
    }

    /// Counts the outcome of a request whose last connect attempt failed on this node (its
    /// failure is counted with the attempt).
    pub(crate) fn count_outcome(&self, outcome: Outcome) {
        self.outcomes.add(outcome);
    }

    /// The latency estimate in milliseconds, as the balancer sees it now.
    pub fn latency_ms(&self, now_ms: u64) -> f64 {
        self.latency.get(now_ms, self.in_flight() > 0)
    }
}
