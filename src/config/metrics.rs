//! `[metrics]`: the HTTP listener for Prometheus (`/metrics`) and probes (`/healthz`, `/readyz`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde::Deserialize;

use super::Problems;

/// Where the metrics listener goes when the config does not say.
pub const DEFAULT_METRICS_LISTEN: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9031);

/// Default of `metrics.max_connections`.
pub const DEFAULT_METRICS_MAX_CONNECTIONS: usize = 64;
/// Upper bound of `metrics.max_connections`.
const MAX_METRICS_CONNECTIONS: usize = 4096;

/// `[metrics]`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// The HTTP listener; `None` (`listen = ""`) disables it, and metrics recording with it.
    pub listen: Option<SocketAddr>,
    /// True when `listen` is [`DEFAULT_METRICS_LISTEN`] because the file does not set it: if that
    /// port is taken routerd runs without it (with a warning), while an address written in the
    /// file must be free or routerd does not start.
    pub listen_is_default: bool,
    /// Connections served at once; when full, the oldest one still sending its request head is
    /// closed for a new one. At most a sixteenth of the open file limit is used.
    pub max_connections: usize,
    /// `/readyz` also fails while a pool that has nodes (static ones, or registered or subscribed
    /// ones it knows) has none usable: active and not ejected. Off by default: a router is ready
    /// once it listens, so that agents which find routers through a Service listing only ready pods
    /// can reach it to register, and one pool's outage does not take the router, and the other
    /// pools with it, out of its load balancer.
    pub readyz_requires_nodes: bool,
    /// A pool with more nodes than this shows no per-node series, only its pool-wide ones and
    /// its nodes' requests, in-flight requests and failures summed under `node="*"`; `None`
    /// (unset): every node's series, whatever the pool's size.
    pub node_series_limit: Option<usize>,
}

/// `[metrics]` as written; each key is described on [`MetricsConfig`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawMetrics {
    pub(super) listen: Option<String>,
    pub(super) max_connections: usize,
    pub(super) readyz_requires_nodes: bool,
    pub(super) node_series_limit: Option<usize>,
}

impl Default for RawMetrics {
    fn default() -> Self {
        Self {
            listen: None,
            max_connections: DEFAULT_METRICS_MAX_CONNECTIONS,
            readyz_requires_nodes: false,
            node_series_limit: None,
        }
    }
}

impl RawMetrics {
    /// The typed `[metrics]`, every problem recorded in `p`.
    pub(super) fn build(&self, p: &mut Problems) -> MetricsConfig {
        if !(1..=MAX_METRICS_CONNECTIONS).contains(&self.max_connections) {
            p.add(
                "metrics.max_connections",
                format_args!("use 1 to {MAX_METRICS_CONNECTIONS}"),
            );
        }
        if self.node_series_limit == Some(0) {
            p.add(
                "metrics.node_series_limit",
                "use 1 or more (leave it out for no limit)",
            );
        }
        let listen = match self.listen.as_deref() {
            None => Some(DEFAULT_METRICS_LISTEN),
            Some("") => None,
            Some(a) => p.check(
                "metrics.listen",
                a.parse::<SocketAddr>().map_err(|_| {
                    format!("{a:?} is not ip:port, e.g. \"127.0.0.1:9031\" or \"[::1]:9031\" (\"\" disables metrics)")
                }),
            ),
        };
        MetricsConfig {
            listen,
            listen_is_default: self.listen.is_none(),
            max_connections: self.max_connections,
            readyz_requires_nodes: self.readyz_requires_nodes,
            node_series_limit: self.node_series_limit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn unset_is_the_best_effort_default_and_empty_is_off() {
        let unset = Config::parse("").unwrap().metrics;
        assert_eq!(unset.listen, Some(DEFAULT_METRICS_LISTEN));
        assert!(unset.listen_is_default);
        let off = Config::parse("[metrics]\nlisten = \"\"\n").unwrap().metrics;
        assert_eq!((off.listen, off.listen_is_default), (None, false));
        let given = Config::parse("[metrics]\nlisten = \"[::1]:0\"\n")
            .unwrap()
            .metrics;
        assert_eq!(given.listen, Some("[::1]:0".parse().unwrap()));
        assert!(!given.listen_is_default);
        let err = Config::parse("[metrics]\nlisten = \"localhost:9031\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("metrics.listen: \"localhost:9031\" is not ip:port"),
            "{err}"
        );
    }

    #[test]
    fn node_series_limit_is_unset_or_positive() {
        assert_eq!(Config::parse("").unwrap().metrics.node_series_limit, None);
        let set = Config::parse("[metrics]\nnode_series_limit = 500\n").unwrap();
        assert_eq!(set.metrics.node_series_limit, Some(500));
        let err = Config::parse("[metrics]\nnode_series_limit = 0\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("metrics.node_series_limit"), "{err}");
    }
}
