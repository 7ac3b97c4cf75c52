//! The typed config routerd reads: addresses, modes and durations already parsed and checked.
//! Sections without text to parse (limits, timeouts, ejection) are also what serde reads.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::addr::ListenAddr;

/// The whole `routerd` configuration, every value parsed and checked: built only by
/// [`Config::parse`], [`Config::load`] and [`Config::default`].
#[derive(Debug, Clone)]
pub struct Config {
    /// Where routerd accepts uwsgi traffic.
    pub listen: ListenConfig,
    /// Connection and packet limits.
    pub limits: LimitsConfig,
    /// Session timeouts.
    pub timeouts: TimeoutsConfig,
    /// The pool for requests no route matches. Empty: such requests get a 503.
    pub default_pool: String,
    /// Pools by name.
    pub pools: BTreeMap<String, PoolConfig>,
    /// Routing rules, most specific match wins.
    pub routes: Vec<RouteConfig>,
    /// The gRPC control plane.
    pub control: super::ControlConfig,
    /// The HTTP listener for Prometheus and health probes.
    pub metrics: super::MetricsConfig,
    /// uWSGI subscriptions (`--subscribe-to`).
    pub subscription: super::SubscriptionConfig,
}

/// `[listen]`: client-facing listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenConfig {
    /// uwsgi listeners.
    pub uwsgi: Vec<ListenAddr>,
    /// Permissions of the UNIX sockets routerd creates (uwsgi and subscription listeners).
    pub unix_socket_mode: u32,
    /// Kernel accept backlog for TCP and UNIX listeners.
    pub backlog: u32,
}

/// `[limits]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Client connections served at once; further ones wait in the kernel backlog.
    pub max_connections: usize,
    /// Largest vars block accepted from a client (at most 65535).
    pub max_vars_size: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_vars_size: 65_535,
        }
    }
}

/// `[timeouts]`, written as `"5s"`, `"250ms"`, `"1m"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutsConfig {
    /// To receive the request header and vars from the client.
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub header: Duration,
    /// For one connect attempt to a node.
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub connect: Duration,
    /// For the node's first response byte, counted from the last request byte sent to it.
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub first_byte: Duration,
    /// With no byte moving either way, once the response has started.
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub idle: Duration,
    /// On SIGTERM/SIGINT, how long in-flight sessions may take to finish.
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub shutdown_grace: Duration,
    /// On SIGTERM/SIGINT, how long routerd keeps accepting after `/readyz` starts failing, so
    /// that load balancers and Kubernetes stop sending first.
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub shutdown_delay: Duration,
}

impl Default for TimeoutsConfig {
    fn default() -> Self {
        Self {
            header: Duration::from_secs(10),
            connect: Duration::from_secs(1),
            first_byte: Duration::from_secs(60),
            idle: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(30),
            shutdown_delay: Duration::ZERO,
        }
    }
}

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

/// `[pools.NAME]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolConfig {
    /// How nodes are picked.
    pub algorithm: Algorithm,
    /// For `hash`: the var whose value is hashed, e.g. `REMOTE_ADDR` or `HTTP_COOKIE`.
    pub hash_var: Option<String>,
    /// Connect attempts per request, each on a different node (1 = no retry).
    pub connect_attempts: u32,
    /// New nodes ramp from 10% to full weight over this time.
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub slow_start: Duration,
    /// Static nodes: `"host:port"`, `"[v6]:port"`, `"unix:/path"`, or `{ address, weight }`.
    pub nodes: Vec<NodeEntry>,
    /// Passive health checking.
    pub ejection: EjectionConfig,
    /// Networks (CIDR) that registered and subscribed nodes' addresses must be in; empty = any.
    pub allowed_networks: Vec<String>,
    /// Most nodes the pool takes (static, registered and subscribed together).
    pub max_nodes: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::default(),
            hash_var: None,
            connect_attempts: 3,
            slow_start: Duration::from_secs(10),
            nodes: Vec::new(),
            ejection: EjectionConfig::default(),
            allowed_networks: Vec::new(),
            max_nodes: 1000,
        }
    }
}

/// A static node.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum NodeEntry {
    /// Just the address, weight 1.
    Address(String),
    /// Address and weight.
    Detailed {
        /// The node's uwsgi socket.
        address: String,
        /// Relative weight, 1 to 1000.
        #[serde(default = "one")]
        weight: u32,
    },
}

fn one() -> u32 {
    1
}

impl NodeEntry {
    /// The node's address as written.
    pub fn address(&self) -> &str {
        match self {
            Self::Address(a) | Self::Detailed { address: a, .. } => a,
        }
    }

    /// The node's weight.
    pub fn weight(&self) -> u32 {
        match self {
            Self::Address(_) => 1,
            Self::Detailed { weight, .. } => *weight,
        }
    }
}

/// `[pools.NAME.ejection]`: passive health checking, as Envoy's outlier detection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EjectionConfig {
    /// Consecutive failures (connect errors, resets, timeouts) that eject a node.
    pub consecutive_failures: u32,
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
            base_time: Duration::from_secs(2),
            max_time: Duration::from_secs(60),
            max_percent: 50,
        }
    }
}

/// `[[routes]]`: send matching requests to `pool`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Host to match (HTTP_HOST, else SERVER_NAME): `example.com`, `*.example.com`,
    /// `example.com:8080`. Omitted: any host.
    pub host: Option<String>,
    /// Only requests whose PATH_INFO starts with this.
    pub path_prefix: Option<String>,
    /// Target pool.
    pub pool: String,
}
