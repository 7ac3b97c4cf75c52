//! Validation of the merged agent config: every problem collected, each naming its key.

use std::time::Duration;

use super::AgentConfig;
use crate::agent::addr::SocketTarget;
use crate::config::Problems;

/// Longest accepted report interval: three intervals (the router's lease) must fit in the
/// router's 60 s lease cap.
const MAX_INTERVAL: Duration = Duration::from_secs(20);
/// Shortest accepted report interval (routerd drops reports faster than 100 ms by default).
const MIN_INTERVAL: Duration = Duration::from_millis(100);

impl AgentConfig {
    /// Checks every value, adding one problem per bad key to `p`.
    pub(super) fn check(&self, p: &mut Problems) {
        self.check_routers(p);
        if self.pool.is_empty() {
            p.add("pool", "required (--pool NAME)");
        }
        if self.node.is_empty() {
            p.add("node", "required (--node ADDR)");
        } else if let Err(e) = SocketTarget::parse_node(&self.node) {
            p.add("node", e);
        }
        if !valid_node_id(&self.node_id) {
            p.add(
                "node_id",
                format_args!(
                    "{:?} must be 1 to 128 characters of A-Z a-z 0-9 . _ : @ / -",
                    self.node_id
                ),
            );
        }
        if !(1..=1000).contains(&self.weight) {
            p.add("weight", format_args!("{} is not in 1..1000", self.weight));
        }
        self.check_labels(p);
        if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&self.interval) {
            p.add(
                "interval",
                format_args!("{:?} is not in 100ms..20s", self.interval),
            );
        }
        if self.drain_timeout > Duration::from_secs(3600) {
            p.add("drain_timeout", "is longer than 1h");
        }
        if let Some(h) = &self.health {
            if !h.path.starts_with('/') {
                p.add(
                    "health_path",
                    format_args!("{:?} must start with /", h.path),
                );
            }
            if h.host.is_empty() || h.host.contains(char::is_whitespace) {
                p.add(
                    "health_host",
                    format_args!("{:?} is not a host name", h.host),
                );
            }
        }
    }

    fn check_routers(&self, p: &mut Problems) {
        if self.routers.is_empty() {
            p.add("routers", "at least one router is needed (--router URL)");
        }
        for (i, url) in self.routers.iter().enumerate() {
            let key = format!("routers[{i}]");
            match url.split_once("://") {
                Some(("http", rest)) | Some(("https", rest))
                    if !rest.is_empty() && !rest.starts_with('/') =>
                {
                    if tonic::transport::Endpoint::from_shared(url.clone()).is_err() {
                        p.add(&key, format_args!("{url:?} is not a valid URL"));
                    }
                }
                _ => p.add(
                    &key,
                    format_args!("{url:?} is not http://host:port or https://host:port"),
                ),
            }
            if url.starts_with("https://") && self.tls.ca.is_none() {
                p.add(
                    &key,
                    "https needs tls_ca (--tls-ca FILE): the CA the router's certificate chains to",
                );
            }
            if self.routers[..i].contains(url) {
                p.add(&key, format_args!("{url:?} is listed twice"));
            }
        }
    }

    fn check_labels(&self, p: &mut Problems) {
        if self.labels.len() > 32 {
            p.add(
                "labels",
                format_args!("{} labels; at most 32", self.labels.len()),
            );
        }
        for (k, v) in &self.labels {
            if k.is_empty() || k.len() > 128 || v.len() > 128 {
                p.add(
                    "labels",
                    format_args!("{k:?}: keys must be 1 to 128 bytes, values at most 128"),
                );
            }
        }
    }
}

/// The node id the announce contract accepts: 1 to 128 characters of `[A-Za-z0-9._:@/-]`.
fn valid_node_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:@/-".contains(&b))
}
