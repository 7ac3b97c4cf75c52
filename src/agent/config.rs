//! The agent's settings: command-line flags and the TOML file they override, merged and validated
//! into one [`AgentConfig`] with errors that name the key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::addr::SocketTarget;
use crate::config::{ConfigError, Problems};

pub use router::{DnsName, RouterTarget};

/// How often `dns:///` names are resolved again unless configured.
const DEFAULT_RESOLVE_INTERVAL: Duration = Duration::from_secs(30);

/// `router-agent`'s command line. Every flag but `--config` overrides the same key of the file.
#[derive(Debug, Default, clap::Parser)]
#[command(
    name = "router-agent",
    version = env!("UWSGI_ROUTER_VERSION"),
    about = "Registers a uWSGI node with every uwsgi-router routerd, reports its load from uWSGI's \
             stats server each interval, and on SIGTERM drains it everywhere before exiting."
)]
pub struct Flags {
    /// TOML file with the same keys as the flags (`routers`, `pool`, `node`, `stats`, ...).
    #[arg(long, short, env = "ROUTER_AGENT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log lines as `text` (coloured only on a terminal without NO_COLOR) or `json`.
    #[arg(
        long,
        env = "ROUTER_AGENT_LOG_FORMAT",
        value_enum,
        default_value = "text",
        value_name = "FORMAT"
    )]
    pub log_format: crate::logging::LogFormat,
    /// A router's control endpoint, `http://host:port` or `https://host:port`, or a DNS name
    /// listing the routers, `dns:///NAME:PORT` (`dns+https:///NAME:PORT` for TLS): a session per
    /// address, re-resolved each --router-resolve-interval. Repeat or comma-separate; replaces the
    /// file's `routers`.
    #[arg(
        long = "router",
        env = "ROUTER_AGENT_ROUTER",
        value_delimiter = ',',
        value_name = "URL"
    )]
    pub routers: Vec<String>,
    /// How often `dns:///` names are resolved again: new addresses get a session, gone ones are
    /// drained and left (default 30s).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub router_resolve_interval: Option<Duration>,
    /// The pool to join (configured on the routers).
    #[arg(long, env = "ROUTER_AGENT_POOL", value_name = "NAME")]
    pub pool: Option<String>,
    /// The node's uwsgi socket as the routers reach it: `host:port` or `unix:/path`.
    #[arg(long, env = "ROUTER_AGENT_NODE", value_name = "ADDR")]
    pub node: Option<String>,
    /// The node's id, unique across the fleet (default: the node address).
    #[arg(long, env = "ROUTER_AGENT_NODE_ID", value_name = "ID")]
    pub node_id: Option<String>,
    /// uWSGI's stats server (`--stats` of uWSGI): `host:port` or a UNIX socket path.
    #[arg(long, env = "ROUTER_AGENT_STATS", value_name = "ADDR")]
    pub stats: Option<String>,
    /// File holding the registry token (first non-empty line), sent as `authorization: Bearer`.
    #[arg(long, env = "ROUTER_AGENT_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Relative weight, 1..1000 (default 1).
    #[arg(long, value_name = "N")]
    pub weight: Option<u32>,
    /// A label `key=value` shown by routerctl; repeatable. Overrides the file's label of that key.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// How often to read the stats and send a load report (default 1s).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub interval: Option<Duration>,
    /// How long to wait for the routers to report the node drained on shutdown (default 30s).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub drain_timeout: Option<Duration>,
    /// Active check: send a GET for this path to the node each interval; no reports while it fails.
    #[arg(long, value_name = "PATH")]
    pub health_path: Option<String>,
    /// HTTP_HOST (and SERVER_NAME) of the active check (default `localhost`).
    #[arg(long, value_name = "HOST")]
    pub health_host: Option<String>,
    /// CA certificate (PEM) that `https://` routers must chain to.
    #[arg(long, env = "ROUTER_AGENT_TLS_CA", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for mTLS with the routers.
    #[arg(long, env = "ROUTER_AGENT_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of `--tls-cert`.
    #[arg(long, env = "ROUTER_AGENT_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Serve `/metrics`, `/healthz` and `/readyz` over HTTP on this `ip:port` (default: off).
    #[arg(long, env = "ROUTER_AGENT_METRICS", value_name = "ADDR")]
    pub metrics: Option<String>,
    /// File keeping the node's operator state (drain, maintenance, weight set with routerctl on
    /// any router) across agent restarts, written atomically (default: next to --config, its
    /// name with the extension `.state.json`; without --config, kept in memory only; the file's
    /// `state_file = ""` keeps none).
    #[arg(long, env = "ROUTER_AGENT_STATE_FILE", value_name = "FILE")]
    pub state_file: Option<PathBuf>,
}

/// Parses `1s`, `250ms`, `2m` (humantime).
fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime_serde::re::humantime::parse_duration(s).map_err(|e| e.to_string())
}

/// The TOML file: the same keys as the flags (`routers` for `--router`, `labels` as a table).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Router control endpoints and `dns:///` names.
    #[serde(default)]
    pub routers: Vec<String>,
    /// Re-resolve interval of `dns:///` names.
    #[serde(default, with = "humantime_serde")]
    pub router_resolve_interval: Option<Duration>,
    /// Pool to join.
    pub pool: Option<String>,
    /// The node's uwsgi socket.
    pub node: Option<String>,
    /// The node's id.
    pub node_id: Option<String>,
    /// uWSGI's stats server.
    pub stats: Option<String>,
    /// Registry token file.
    pub token_file: Option<PathBuf>,
    /// Relative weight.
    pub weight: Option<u32>,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Report interval.
    #[serde(default, with = "humantime_serde")]
    pub interval: Option<Duration>,
    /// Drain timeout on shutdown.
    #[serde(default, with = "humantime_serde")]
    pub drain_timeout: Option<Duration>,
    /// Active check path.
    pub health_path: Option<String>,
    /// Active check host.
    pub health_host: Option<String>,
    /// CA of `https://` routers.
    pub tls_ca: Option<PathBuf>,
    /// mTLS client certificate.
    pub tls_cert: Option<PathBuf>,
    /// mTLS client key.
    pub tls_key: Option<PathBuf>,
    /// HTTP listener for `/metrics`.
    pub metrics: Option<String>,
    /// The node's operator state.
    pub state_file: Option<PathBuf>,
}

/// The active check: a GET of `path` with `host` as HTTP_HOST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthConfig {
    /// Path (and optional `?query`) to request.
    pub path: String,
    /// HTTP_HOST and SERVER_NAME to send.
    pub host: String,
}

/// TLS files for `https://` routers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// CA certificate the routers' certificates must chain to.
    pub ca: Option<PathBuf>,
    /// Client certificate and key, for mTLS.
    pub identity: Option<(PathBuf, PathBuf)>,
}

/// The validated agent configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    /// Router URLs (one session each) and DNS names (one session per address).
    pub routers: Vec<RouterTarget>,
    /// How often the DNS names of `routers` are resolved again.
    pub router_resolve_interval: Duration,
    /// Pool to join.
    pub pool: String,
    /// The node's uwsgi socket, as announced.
    pub node: String,
    /// The node's id.
    pub node_id: String,
    /// uWSGI's stats server.
    pub stats: SocketTarget,
    /// Registry token file; `None` sends no token (routers on loopback without tokens).
    pub token_file: Option<PathBuf>,
    /// Relative weight, 1..1000.
    pub weight: u32,
    /// Labels for operators.
    pub labels: BTreeMap<String, String>,
    /// Stats read and report interval.
    pub interval: Duration,
    /// Bound on waiting for Drained on shutdown.
    pub drain_timeout: Duration,
    /// Optional active check.
    pub health: Option<HealthConfig>,
    /// TLS for `https://` routers.
    pub tls: TlsFiles,
    /// HTTP listener for `/metrics`, `/healthz`, `/readyz`; `None`: off.
    pub metrics: Option<SocketAddr>,
    /// Where the node's operator state is kept; `None`: in memory only.
    pub state_file: Option<PathBuf>,
}

impl AgentConfig {
    /// Reads the file named by `--config` (if any) and merges the flags over it.
    pub fn load(flags: Flags) -> Result<Self, ConfigError> {
        let file = match &flags.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        Self::merge(file, flags)
    }

    /// Merges `flags` over `file` and validates the result.
    pub fn merge(file: FileConfig, flags: Flags) -> Result<Self, ConfigError> {
        let mut p = Problems::default();
        let routers = if flags.routers.is_empty() {
            file.routers
        } else {
            flags.routers
        };
        let mut labels = file.labels;
        for l in &flags.labels {
            match l.split_once('=') {
                Some((k, v)) => {
                    labels.insert(k.trim().to_owned(), v.trim().to_owned());
                }
                None => p.add("labels", format_args!("{l:?} is not key=value (--label)")),
            }
        }
        let node = flags.node.or(file.node).unwrap_or_default();
        let health_path = flags.health_path.or(file.health_path);
        let health_host = flags.health_host.or(file.health_host);
        let tls_ca = flags.tls_ca.or(file.tls_ca);
        let tls_cert = flags.tls_cert.or(file.tls_cert);
        let tls_key = flags.tls_key.or(file.tls_key);
        let routers = router::parse_routers(&routers, tls_ca.is_some(), &mut p);
        let resolve_interval = flags
            .router_resolve_interval
            .or(file.router_resolve_interval);
        let config = Self {
            node_id: flags
                .node_id
                .or(file.node_id)
                .unwrap_or_else(|| default_node_id(&node)),
            node,
            router_resolve_interval: resolve_interval.unwrap_or(DEFAULT_RESOLVE_INTERVAL),
            routers,
            pool: flags.pool.or(file.pool).unwrap_or_default(),
            stats: parse_stats(flags.stats.or(file.stats), &mut p),
            token_file: flags.token_file.or(file.token_file),
            weight: flags.weight.or(file.weight).unwrap_or(1),
            labels,
            interval: flags
                .interval
                .or(file.interval)
                .unwrap_or(Duration::from_secs(1)),
            drain_timeout: flags
                .drain_timeout
                .or(file.drain_timeout)
                .unwrap_or(Duration::from_secs(30)),
            health: health_path.clone().map(|path| HealthConfig {
                path,
                host: health_host
                    .clone()
                    .unwrap_or_else(|| "localhost".to_owned()),
            }),
            tls: TlsFiles {
                ca: tls_ca,
                identity: tls_cert.clone().zip(tls_key.clone()),
            },
            metrics: parse_metrics(flags.metrics.or(file.metrics), &mut p),
            state_file: state_file(flags.state_file, file.state_file, flags.config.as_deref()),
        };
        config.check(&mut p);
        let has_name = config
            .routers
            .iter()
            .any(|r| matches!(r, RouterTarget::Dns(_)));
        if resolve_interval.is_some() && !has_name {
            p.add(
                "router_resolve_interval",
                "only used with a dns:/// router (--router dns:///NAME:PORT)",
            );
        }
        if health_host.is_some() && health_path.is_none() {
            p.add("health_host", "needs health_path (--health-path)");
        }
        if tls_cert.is_some() != tls_key.is_some() {
            p.add("tls_cert", "tls_cert and tls_key go together");
        }
        if p.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid(p))
        }
    }
}

impl FileConfig {
    /// Reads and parses a TOML file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))
    }
}

/// The stats address, or a problem (and a placeholder) when it is missing or malformed.
fn parse_stats(s: Option<String>, p: &mut Problems) -> SocketTarget {
    let parsed = match s.as_deref() {
        None | Some("") => Err("required (--stats ADDR)".to_owned()),
        Some(s) => SocketTarget::parse_stats(s),
    };
    parsed.unwrap_or_else(|e| {
        p.add("stats", e);
        SocketTarget::Tcp(String::new())
    })
}

/// The metrics listener: `ip:port`, or `None` when unset or `""`.
fn parse_metrics(s: Option<String>, p: &mut Problems) -> Option<SocketAddr> {
    match s.as_deref() {
        None | Some("") => None,
        Some(a) => a
            .parse()
            .map_err(|_| {
                p.add(
                    "metrics",
                    format_args!("{a:?} is not ip:port, e.g. \"127.0.0.1:9033\""),
                )
            })
            .ok(),
    }
}

/// The state file given, else the config file's sibling `NAME.state.json`; `""` means none.
fn state_file(
    flag: Option<PathBuf>,
    key: Option<PathBuf>,
    config: Option<&Path>,
) -> Option<PathBuf> {
    let given = flag.or(key);
    let path = given.or_else(|| config.map(|c| c.with_extension("state.json")))?;
    (!path.as_os_str().is_empty()).then_some(path)
}

/// The node address as an id; IPv6 brackets are dropped because ids may not hold them.
fn default_node_id(node: &str) -> String {
    node.replace(['[', ']'], "")
}

mod router;
mod validate;

#[cfg(test)]
mod tests;
