//! The config file as serde reads it, with every default: text where the typed
//! [`Config`](super::Config) holds addresses, networks and patterns. Private to config:
//! [`super::build`] turns it into the typed config, once, and nothing else reads it.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::access_log::RawAccessLog;
use super::control::RawControl;
use super::metrics::RawMetrics;
use super::pool::RawPool;
use super::subscription::RawSubscription;
use super::{LimitsConfig, RequestIdConfig, TimeoutsConfig};

/// The whole file. Every field has a default, so an empty file (or none) is a working config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawConfig {
    /// Where routerd accepts uwsgi traffic.
    pub(super) listen: RawListen,
    /// Connection and packet limits.
    pub(super) limits: LimitsConfig,
    /// Session timeouts.
    pub(super) timeouts: TimeoutsConfig,
    /// The pool for requests no route matches. Empty: such requests get a 503.
    pub(super) default_pool: String,
    /// Where operators' drains, weights and ejections are kept across restarts; "" = nowhere.
    pub(super) state_file: String,
    /// `text` or `json` (read at start).
    pub(super) log_format: crate::logging::LogFormat,
    /// Pools by name.
    pub(super) pools: BTreeMap<String, RawPool>,
    /// Routing rules, most specific match wins.
    pub(super) routes: Vec<RawRoute>,
    /// The gRPC control plane.
    pub(super) control: RawControl,
    /// The HTTP listener for Prometheus and health probes.
    pub(super) metrics: RawMetrics,
    /// uWSGI subscriptions (`--subscribe-to`).
    pub(super) subscription: RawSubscription,
    /// One line per request.
    pub(super) access_log: RawAccessLog,
    /// The HTTP listeners' settings.
    pub(super) http: super::http::RawHttp,
    /// The id each request carries.
    pub(super) request_id: RequestIdConfig,
}

impl Default for RawConfig {
    fn default() -> Self {
        let mut pools = BTreeMap::new();
        pools.insert("default".to_owned(), RawPool::default());
        Self {
            listen: RawListen::default(),
            limits: LimitsConfig::default(),
            timeouts: TimeoutsConfig::default(),
            default_pool: "default".to_owned(),
            state_file: String::new(),
            log_format: crate::logging::LogFormat::default(),
            pools,
            routes: Vec::new(),
            control: RawControl::default(),
            metrics: RawMetrics::default(),
            subscription: RawSubscription::default(),
            access_log: RawAccessLog::default(),
            http: super::http::RawHttp::default(),
            request_id: RequestIdConfig::default(),
        }
    }
}

/// `[listen]`: client-facing listeners.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawListen {
    /// uwsgi listeners: `host:port` (IPv4 or `[IPv6]:port`) or `unix:/path/to.sock`.
    pub(super) uwsgi: Vec<String>,
    /// HTTP/1.1 listeners, written the same way.
    pub(super) http: Vec<String>,
    /// Permissions of UNIX listener sockets, octal (nginx must be able to connect).
    pub(super) unix_socket_mode: String,
    /// Kernel accept backlog for TCP and UNIX listeners.
    pub(super) backlog: u32,
}

impl Default for RawListen {
    fn default() -> Self {
        Self {
            uwsgi: vec!["127.0.0.1:3031".to_owned()],
            http: Vec::new(),
            unix_socket_mode: "0666".to_owned(),
            backlog: 1024,
        }
    }
}

/// `[[routes]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    /// Host to match (HTTP_HOST, else SERVER_NAME): `example.com`, `*.example.com`,
    /// `example.com:8080`. Omitted: any host.
    pub(super) host: Option<String>,
    /// Only requests whose PATH_INFO starts with this.
    pub(super) path_prefix: Option<String>,
    /// Target pool.
    pub(super) pool: String,
}
