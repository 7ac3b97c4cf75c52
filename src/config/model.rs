//! The typed config routerd reads: the whole of it, `[listen]`, `[limits]`, `[timeouts]` and
//! routes, every value parsed and checked. Limits and timeouts hold no text to parse, so serde
//! reads them as they are (durations bounded by [`super::duration`]).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::PoolConfig;
use crate::addr::{HostPattern, ListenAddr};

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
    /// Where operators' overrides are kept across restarts (read at start only).
    pub state_file: Option<std::path::PathBuf>,
    /// How log lines are written (read at start only; `--log-format` wins).
    pub log_format: crate::logging::LogFormat,
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
    /// One line per request (off by default).
    pub access_log: super::AccessLogConfig,
    /// The HTTP listeners' connections and trusted proxies.
    pub http: super::HttpConfig,
    /// The id each request carries to its node, its log line and the router's replies.
    pub request_id: super::RequestIdConfig,
}

/// `[listen]`: client-facing listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenConfig {
    /// uwsgi listeners.
    pub uwsgi: Vec<ListenAddr>,
    /// HTTP/1.1 listeners.
    pub http: Vec<ListenAddr>,
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

/// `[[routes]]`: send matching requests to `pool`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConfig {
    /// Host to match (HTTP_HOST, else SERVER_NAME); `None`: any host.
    pub host: Option<HostPattern>,
    /// Only requests whose PATH_INFO starts with this (it starts with `/`).
    pub path_prefix: Option<String>,
    /// Target pool, one the config defines.
    pub pool: String,
}
