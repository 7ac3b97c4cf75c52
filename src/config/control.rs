//! `[control]`: the gRPC control listener (node registry and admin API) and its credentials.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::Problems;

/// Upper bound of `control.max_connections`.
pub(super) const MAX_CONNECTIONS: usize = 1_000_000;

/// `[control]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ControlConfig {
    /// gRPC listener for agents and routerctl, `ip:port`; `""` disables the control plane.
    pub listen: String,
    /// Files holding the tokens agents must present (`authorization: Bearer <token>`), one per
    /// line; several lines allow rotation.
    pub registry_token_files: Vec<PathBuf>,
    /// Files holding the tokens routerctl must present.
    pub admin_token_files: Vec<PathBuf>,
    /// TLS certificate chain (PEM) of the control listener.
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// CA (PEM) that client certificates must chain to: enables mTLS, and a verified client
    /// certificate then counts as credentials for both services.
    pub tls_client_ca: Option<PathBuf>,
    /// Largest gRPC message accepted, in bytes.
    pub max_message_bytes: usize,
    /// Registry sessions open at once (one per node and router).
    pub max_sessions: usize,
    /// Shortest accepted interval between two load reports of a node; faster ones are dropped.
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub min_report_interval: Duration,
    /// Time a new session has to send its Announce.
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub announce_timeout: Duration,
    /// Connections of the control listener open at once (agents hold one per session, routerctl
    /// one per command); at most a quarter of the open file limit is used.
    pub max_connections: usize,
    /// Time a new connection has to complete TLS and HTTP/2 and send a call that passes the
    /// credentials; an idle or unauthenticated connection is closed after it.
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub handshake_timeout: Duration,
    /// HTTP/2 keepalive: a connection silent this long is pinged.
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub keepalive_interval: Duration,
    /// HTTP/2 keepalive: a ping unanswered this long closes the connection.
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub keepalive_timeout: Duration,
}

impl Default for ControlConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9032".to_owned(),
            registry_token_files: Vec::new(),
            admin_token_files: Vec::new(),
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            max_message_bytes: 16 * 1024,
            max_sessions: 10_000,
            min_report_interval: Duration::from_millis(100),
            announce_timeout: Duration::from_secs(10),
            max_connections: 10_240,
            handshake_timeout: Duration::from_secs(5),
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
        }
    }
}

impl ControlConfig {
    /// The listener address, or `None` when the control plane is disabled.
    pub fn listen_addr(&self) -> Option<std::net::SocketAddr> {
        self.listen.parse().ok()
    }

    pub(super) fn check(&self, p: &mut Problems) {
        if self.listen.is_empty() {
            return;
        }
        let Some(addr) = self.listen_addr() else {
            p.add(
                "control.listen",
                format_args!("{:?} is not ip:port (or \"\" to disable)", self.listen),
            );
            return;
        };
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            p.add("control.tls_cert", "tls_cert and tls_key go together");
        }
        if self.tls_client_ca.is_some() && self.tls_cert.is_none() {
            p.add(
                "control.tls_client_ca",
                "mTLS needs tls_cert and tls_key too",
            );
        }
        let mtls = self.tls_client_ca.is_some();
        if !addr.ip().is_loopback() {
            for (key, files) in [
                ("registry_token_files", &self.registry_token_files),
                ("admin_token_files", &self.admin_token_files),
            ] {
                if files.is_empty() && !mtls {
                    p.add(
                        format_args!("control.{key}"),
                        format_args!("control.listen {addr} is reachable from other hosts: give token files (or tls_client_ca for mTLS), or listen on 127.0.0.1"),
                    );
                }
            }
        }
        for (i, f) in self
            .registry_token_files
            .iter()
            .chain(&self.admin_token_files)
            .enumerate()
        {
            if let Err(e) = super::read_tokens(f) {
                p.add(format_args!("control token file #{}", i + 1), e);
            }
        }
        if !(256..=4 * 1024 * 1024).contains(&self.max_message_bytes) {
            p.add("control.max_message_bytes", "use 256 bytes to 4 MiB");
        }
        if self.max_sessions == 0 {
            p.add("control.max_sessions", "must be at least 1");
        }
        if !(1..=MAX_CONNECTIONS).contains(&self.max_connections) {
            p.add(
                "control.max_connections",
                format_args!("use 1 to {MAX_CONNECTIONS}"),
            );
        }
        let bounded = [
            (
                "control.handshake_timeout",
                self.handshake_timeout,
                Duration::from_millis(100),
                Duration::from_secs(60),
                "use 100ms to 60s",
            ),
            (
                "control.keepalive_interval",
                self.keepalive_interval,
                Duration::from_secs(1),
                Duration::from_secs(3600),
                "use 1s to 1h",
            ),
            (
                "control.keepalive_timeout",
                self.keepalive_timeout,
                Duration::from_secs(1),
                Duration::from_secs(300),
                "use 1s to 5m",
            ),
        ];
        for (key, value, min, max, hint) in bounded {
            if !(min..=max).contains(&value) {
                p.add(key, hint);
            }
        }
    }
}
