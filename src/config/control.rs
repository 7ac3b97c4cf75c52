//! `[control]`: the gRPC control listener (node registry and admin API) and its credentials.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::Problems;

/// Upper bound of `control.max_connections`.
const MAX_CONNECTIONS: usize = 1_000_000;

/// `[control]`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlConfig {
    /// gRPC listener for agents and routerctl; `None` (`listen = ""`): no control plane.
    pub listen: Option<SocketAddr>,
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
    pub min_report_interval: Duration,
    /// Time a new session has to send its Announce.
    pub announce_timeout: Duration,
    /// Connections of the control listener open at once (agents hold one per session, routerctl
    /// one per command); at most a quarter of the open file limit is used.
    pub max_connections: usize,
    /// Time a new connection has to complete TLS and HTTP/2 and send a call that passes the
    /// credentials; an idle or unauthenticated connection is closed after it.
    pub handshake_timeout: Duration,
    /// HTTP/2 keepalive: a connection silent this long is pinged.
    pub keepalive_interval: Duration,
    /// HTTP/2 keepalive: a ping unanswered this long closes the connection.
    pub keepalive_timeout: Duration,
}

/// `[control]` as written; each key is described on [`ControlConfig`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawControl {
    pub(super) listen: String,
    pub(super) registry_token_files: Vec<PathBuf>,
    pub(super) admin_token_files: Vec<PathBuf>,
    pub(super) tls_cert: Option<PathBuf>,
    pub(super) tls_key: Option<PathBuf>,
    pub(super) tls_client_ca: Option<PathBuf>,
    pub(super) max_message_bytes: usize,
    pub(super) max_sessions: usize,
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub(super) min_report_interval: Duration,
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub(super) announce_timeout: Duration,
    pub(super) max_connections: usize,
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub(super) handshake_timeout: Duration,
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub(super) keepalive_interval: Duration,
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub(super) keepalive_timeout: Duration,
}

impl Default for RawControl {
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

impl RawControl {
    /// The typed `[control]`, every problem recorded in `p`. Without a listener (or with a bad
    /// one) the other keys are not checked: they would serve nothing.
    pub(super) fn build(&self, p: &mut Problems) -> ControlConfig {
        let listen = match self.listen.as_str() {
            "" => None,
            text => p.check(
                "control.listen",
                text.parse::<SocketAddr>()
                    .map_err(|_| format!("{text:?} is not ip:port (or \"\" to disable)")),
            ),
        };
        if let Some(addr) = listen {
            self.check(addr, p);
        }
        ControlConfig {
            listen,
            registry_token_files: self.registry_token_files.clone(),
            admin_token_files: self.admin_token_files.clone(),
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            tls_client_ca: self.tls_client_ca.clone(),
            max_message_bytes: self.max_message_bytes,
            max_sessions: self.max_sessions,
            min_report_interval: self.min_report_interval,
            announce_timeout: self.announce_timeout,
            max_connections: self.max_connections,
            handshake_timeout: self.handshake_timeout,
            keepalive_interval: self.keepalive_interval,
            keepalive_timeout: self.keepalive_timeout,
        }
    }

    fn check(&self, addr: SocketAddr, p: &mut Problems) {
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
