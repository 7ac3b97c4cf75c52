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
/// Bounds of the re-resolve interval of `dns:///` names: more often than each second is load on
/// the resolver for nothing; less often than hourly leaves new routers without nodes.
const MIN_RESOLVE_INTERVAL: Duration = Duration::from_secs(1);
const MAX_RESOLVE_INTERVAL: Duration = Duration::from_secs(3600);

impl AgentConfig {
    /// Checks every value, adding one problem per bad key to `p`.
    pub(super) fn check(&self, p: &mut Problems) {
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
        if !(MIN_RESOLVE_INTERVAL..=MAX_RESOLVE_INTERVAL).contains(&self.router_resolve_interval) {
            p.add(
                "router_resolve_interval",
                format_args!("{:?} is not in 1s..1h", self.router_resolve_interval),
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
