//! `[pools.NAME]`: a pool's balancing, static nodes, passive health checking and the networks its
//! dynamic nodes must be in, as written and as parsed.

use std::collections::HashSet;
use std::time::Duration;

use serde::Deserialize;

use super::traffic::{check_max_connections, RawPoolTimeouts, RawQueue};
use super::{NodeTimeouts, Problems, QueueConfig, RetryConfig, TimeoutsConfig};
use crate::addr::{Networks, NodeAddr};

/// Balancing algorithm of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    /// Power of two choices over a cost from in-flight requests, load, weight and latency.
    #[default]
    LeastLoad,
    /// Each node in turn.
    RoundRobin,
    /// Smooth weighted round robin, as nginx.
    WeightedRoundRobin,
    /// Fewest in-flight requests relative to weight.
    LeastConnections,
    /// Weighted random.
    Random,
    /// Consistent hash of a request var (`hash_var`).
    Hash,
}

impl Algorithm {
    /// The config spelling.
    pub fn name(self) -> &'static str {
        match self {
            Self::LeastLoad => "least-load",
            Self::RoundRobin => "round-robin",
            Self::WeightedRoundRobin => "weighted-round-robin",
            Self::LeastConnections => "least-connections",
            Self::Random => "random",
            Self::Hash => "hash",
        }
    }
}

/// `[pools.NAME]`, parsed.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// How nodes are picked.
    pub algorithm: Algorithm,
    /// For `hash`: the var whose value is hashed, e.g. `REMOTE_ADDR` or `HTTP_COOKIE`.
    pub hash_var: Option<String>,
    /// Connect attempts per request, each on a different node (1 = no retry), 1 to 16.
    pub connect_attempts: u32,
    /// New nodes ramp from 10% to full weight over this time.
    pub slow_start: Duration,
    /// Static nodes, each address once.
    pub nodes: Vec<StaticNode>,
    /// Passive health checking.
    pub ejection: EjectionConfig,
    /// Which failed requests are resent to another node.
    pub retry: RetryConfig,
    /// Where registered and subscribed nodes' addresses must be.
    pub allowed_networks: Networks,
    /// Most nodes the pool takes (static, registered and subscribed together).
    pub max_nodes: usize,
    /// Its node-facing timeouts (`[pools.NAME.timeouts]` over `[timeouts]`).
    pub timeouts: NodeTimeouts,
    /// Requests one node takes at once; 0 = no limit.
    pub max_connections: u32,
    /// Where requests wait while every usable node is at `max_connections`.
    pub queue: QueueConfig,
}

impl Default for PoolConfig {
    /// A pool with the embedded defaults, as `[pools.NAME]` with no key gives.
    fn default() -> Self {
        let mut p = Problems::default();
        let pool = RawPool::default().build("default", &TimeoutsConfig::default(), &mut p);
        debug_assert!(p.is_empty(), "the default pool is valid: {p}");
        pool
    }
}

/// A static node of a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticNode {
    /// The node's uwsgi socket.
    pub addr: NodeAddr,
    /// Relative weight, 1 to 1000.
    pub weight: u32,
    /// Used only when no other node is usable (nginx's `backup`).
    pub backup: bool,
}

/// `[pools.NAME.ejection]`: passive health checking, as Envoy's outlier detection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EjectionConfig {
    /// Consecutive failures (connect errors, resets, timeouts) that eject a node.
    pub consecutive_failures: u32,
    /// Consecutive 502, 503 or 504 answers of the node itself that eject it; 0 = never.
    pub consecutive_gateway_errors: u32,
    /// Consecutive 5xx answers (500 included) that eject a node; 0 = never. Off by default: a
    /// Django 500 is usually one view's bug, answered by every node alike.
    pub consecutive_5xx: u32,
    /// First ejection time; doubles with each ejection in a row.
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub base_time: Duration,
    /// Longest ejection time.
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub max_time: Duration,
    /// Most of the pool that may be ejected at once, in percent (at least one node always may).
    pub max_percent: u32,
}

impl Default for EjectionConfig {
    fn default() -> Self {
        Self {
            consecutive_failures: 3,
            consecutive_gateway_errors: 5,
            consecutive_5xx: 0,
            base_time: Duration::from_secs(2),
            max_time: Duration::from_secs(60),
            max_percent: 50,
        }
    }
}

/// `[pools.NAME]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawPool {
    /// How nodes are picked.
    pub(super) algorithm: Algorithm,
    /// For `hash`: the var whose value is hashed, e.g. `REMOTE_ADDR` or `HTTP_COOKIE`.
    pub(super) hash_var: Option<String>,
    /// Connect attempts per request, each on a different node (1 = no retry).
    pub(super) connect_attempts: u32,
    /// New nodes ramp from 10% to full weight over this time.
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub(super) slow_start: Duration,
    /// Static nodes: `"host:port"`, `"[v6]:port"`, `"unix:/path"`, or `{ address, weight }`.
    pub(super) nodes: Vec<NodeEntry>,
    /// Passive health checking.
    pub(super) ejection: EjectionConfig,
    /// Retries.
    pub(super) retry: RetryConfig,
    /// Networks (CIDR) that registered and subscribed nodes' addresses must be in; empty = any.
    pub(super) allowed_networks: Vec<String>,
    /// Most nodes the pool takes (static, registered and subscribed together).
    pub(super) max_nodes: usize,
    /// Node-facing timeouts; unset keys fall back to `[timeouts]`.
    pub(super) timeouts: RawPoolTimeouts,
    /// Requests one node takes at once; 0 = no limit.
    pub(super) max_connections: u32,
    /// The wait for a node under `max_connections`.
    pub(super) queue: RawQueue,
}

impl Default for RawPool {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::default(),
            hash_var: None,
            connect_attempts: 3,
            slow_start: Duration::from_secs(10),
            nodes: Vec::new(),
            ejection: EjectionConfig::default(),
            retry: RetryConfig::default(),
            allowed_networks: Vec::new(),
            max_nodes: 1000,
            timeouts: RawPoolTimeouts::default(),
            max_connections: 0,
            queue: RawQueue::default(),
        }
    }
}

/// A static node.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum NodeEntry {
    /// Just the address, weight 1.
    Address(String),
    /// Address and weight.
    Detailed {
        /// The node's uwsgi socket.
        address: String,
        /// Relative weight, 1 to 1000.
        #[serde(default = "one")]
        weight: u32,
        /// Used only when no other node is usable.
        #[serde(default)]
        backup: bool,
    },
}

fn one() -> u32 {
    1
}

impl NodeEntry {
    /// The node's address as written.
    fn address(&self) -> &str {
        match self {
            Self::Address(a) | Self::Detailed { address: a, .. } => a,
        }
    }

    /// The node's weight.
    fn weight(&self) -> u32 {
        match self {
            Self::Address(_) => 1,
            Self::Detailed { weight, .. } => *weight,
        }
    }

    /// Whether the node is a backup.
    fn backup(&self) -> bool {
        matches!(self, Self::Detailed { backup: true, .. })
    }
}

impl RawPool {
    /// The typed pool `name`, every problem recorded in `p` under `pools.NAME`.
    pub(super) fn build(
        &self,
        name: &str,
        global: &TimeoutsConfig,
        p: &mut Problems,
    ) -> PoolConfig {
        let key = format!("pools.{name}");
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            p.add(&key, "pool names use letters, digits, '-', '_' and '.'");
        }
        if self.algorithm == Algorithm::Hash && self.hash_var.as_deref().is_none_or(str::is_empty) {
            p.add(
                format_args!("{key}.hash_var"),
                "algorithm \"hash\" needs the var to hash, e.g. hash_var = \"REMOTE_ADDR\"",
            );
        }
        if !(1..=16).contains(&self.connect_attempts) {
            p.add(format_args!("{key}.connect_attempts"), "use 1 to 16");
        }
        check_ejection(&self.ejection, &key, p);
        self.retry.check(&key, p);
        let allowed_networks = match Networks::allowed(&self.allowed_networks) {
            Ok(networks) => networks,
            Err(bad) => {
                for b in bad {
                    p.add(
                        format_args!("{key}.allowed_networks[{}]", b.index),
                        format_args!("{b}: use CIDR such as \"10.0.0.0/8\" or \"::1/128\""),
                    );
                }
                // Never used (the config is refused), and allowing nothing even so.
                Networks::Only(Vec::new())
            }
        };
        if self.max_nodes == 0 || self.max_nodes < self.nodes.len() {
            p.add(
                format_args!("{key}.max_nodes"),
                "must be at least 1 and at least the number of static nodes",
            );
        }
        check_max_connections(self.max_connections, &key, p);
        PoolConfig {
            algorithm: self.algorithm,
            hash_var: self.hash_var.clone(),
            connect_attempts: self.connect_attempts,
            slow_start: self.slow_start,
            nodes: self.static_nodes(&key, p),
            ejection: self.ejection.clone(),
            retry: self.retry.clone(),
            allowed_networks,
            max_nodes: self.max_nodes,
            timeouts: self.timeouts.build(global, &key, p),
            max_connections: self.max_connections,
            queue: self.queue.build(&key, p),
        }
    }

    fn static_nodes(&self, key: &str, p: &mut Problems) -> Vec<StaticNode> {
        let mut nodes = Vec::with_capacity(self.nodes.len());
        let mut seen = HashSet::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let nkey = format!("{key}.nodes[{i}]");
            match p.check(&nkey, node.address().parse::<NodeAddr>()) {
                Some(addr) if !seen.insert(addr.clone()) => {
                    p.add(&nkey, format_args!("{} is listed twice", node.address()));
                }
                Some(addr) => nodes.push(StaticNode {
                    addr,
                    weight: node.weight(),
                    backup: node.backup(),
                }),
                None => {}
            }
            if !(1..=1000).contains(&node.weight()) {
                p.add(format_args!("{nkey}.weight"), "use 1 to 1000");
            }
        }
        nodes
    }
}

fn check_ejection(e: &EjectionConfig, key: &str, p: &mut Problems) {
    if e.consecutive_failures == 0 {
        p.add(
            format_args!("{key}.ejection.consecutive_failures"),
            "must be at least 1",
        );
    }
    if e.max_time < e.base_time {
        p.add(
            format_args!("{key}.ejection.max_time"),
            "must be at least base_time",
        );
    }
    if e.max_percent > 100 {
        p.add(
            format_args!("{key}.ejection.max_percent"),
            "is a percentage: 0 to 100",
        );
    }
}

#[cfg(test)]
mod tests;
