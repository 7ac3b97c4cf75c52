//! `[metrics]`: the HTTP listener for Prometheus (`/metrics`) and probes (`/healthz`, `/readyz`).

use std::net::SocketAddr;

use serde::Deserialize;

use super::Problems;

/// Where the metrics listener goes when the config does not say.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9031";

/// Default of `metrics.max_connections`.
pub const DEFAULT_METRICS_MAX_CONNECTIONS: usize = 64;
/// Upper bound of `metrics.max_connections`.
pub(super) const MAX_METRICS_CONNECTIONS: usize = 4096;

/// `[metrics]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// `ip:port` of the HTTP listener; `""` disables it (and metrics recording with it). Unset:
    /// [`DEFAULT_METRICS_LISTEN`], and if that port is taken routerd runs without it (with a
    /// warning); an address written in the file must be free or routerd does not start.
    pub listen: Option<String>,
    /// Connections served at once; when full, the oldest one still sending its request head is
    /// closed for a new one. At most a sixteenth of the open file limit is used.
    pub max_connections: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            listen: None,
            max_connections: DEFAULT_METRICS_MAX_CONNECTIONS,
        }
    }
}

impl MetricsConfig {
    /// The address to listen on, `None` when disabled.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.listen
            .as_deref()
            .unwrap_or(DEFAULT_METRICS_LISTEN)
            .parse()
            .ok()
    }

    /// True when the address is the built-in default rather than one the operator chose.
    pub fn is_default(&self) -> bool {
        self.listen.is_none()
    }

    pub(super) fn check(&self, p: &mut Problems) {
        if !(1..=MAX_METRICS_CONNECTIONS).contains(&self.max_connections) {
            p.add(
                "metrics.max_connections",
                format_args!("use 1 to {MAX_METRICS_CONNECTIONS}"),
            );
        }
        match self.listen.as_deref() {
            None | Some("") => {}
            Some(a) if a.parse::<SocketAddr>().is_ok() => {}
            Some(a) => p.add(
                "metrics.listen",
                format_args!(
                    "{a:?} is not ip:port, e.g. \"127.0.0.1:9031\" or \"[::1]:9031\" (\"\" disables metrics)"
                ),
            ),
        }
    }
}
