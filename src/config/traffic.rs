//! A pool's traffic settings: `[pools.NAME.timeouts]` (the node-facing timeouts, each falling back
//! to `[timeouts]`), `max_connections` per node and `[pools.NAME.queue]`, where requests wait
//! while every usable node is at its limit (HAProxy's `maxconn` and `timeout queue`).

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::duration::{check, secs, MS};
use super::{Problems, TimeoutsConfig};

/// The timeouts of an exchange with a node, as a pool uses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeTimeouts {
    /// For one connect attempt to a node.
    pub connect: Duration,
    /// For the node's first response byte, counted from the last request byte sent to it.
    pub first_byte: Duration,
    /// With no byte moving either way (the request body from the client, the response once it
    /// has started).
    pub idle: Duration,
}

impl From<&TimeoutsConfig> for NodeTimeouts {
    fn from(t: &TimeoutsConfig) -> Self {
        Self {
            connect: t.connect,
            first_byte: t.first_byte,
            idle: t.idle,
        }
    }
}

/// `[pools.NAME.timeouts]` as written: each key unset falls back to `[timeouts]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawPoolTimeouts {
    #[serde(deserialize_with = "optional")]
    connect: Option<Duration>,
    #[serde(deserialize_with = "optional")]
    first_byte: Option<Duration>,
    #[serde(deserialize_with = "optional")]
    idle: Option<Duration>,
}

fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    super::duration::deserialize(d).map(Some)
}

impl RawPoolTimeouts {
    /// The pool's timeouts over the `global` ones, each within the bounds of its `[timeouts]` key.
    pub(super) fn build(
        &self,
        global: &TimeoutsConfig,
        key: &str,
        p: &mut Problems,
    ) -> NodeTimeouts {
        let day = secs(24 * 3600);
        let t = NodeTimeouts {
            connect: self.connect.unwrap_or(global.connect),
            first_byte: self.first_byte.unwrap_or(global.first_byte),
            idle: self.idle.unwrap_or(global.idle),
        };
        for (name, set, range) in [
            ("connect", self.connect, MS..=secs(300)),
            ("first_byte", self.first_byte, MS..=day),
            ("idle", self.idle, MS..=day),
        ] {
            if let Some(d) = set {
                check(p, &format!("{key}.timeouts.{name}"), d, range);
            }
        }
        t
    }
}

/// `[pools.NAME.queue]`: requests that find every usable node at `max_connections`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueConfig {
    /// Requests waiting at once; one more gets a 503 at once.
    pub size: u32,
    /// Longest wait for a free node; then a 503.
    pub timeout: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            size: 1000,
            timeout: Duration::from_secs(5),
        }
    }
}

/// `[pools.NAME.queue]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawQueue {
    size: u32,
    #[serde(deserialize_with = "super::duration::deserialize")]
    timeout: Duration,
}

impl Default for RawQueue {
    fn default() -> Self {
        let d = QueueConfig::default();
        Self {
            size: d.size,
            timeout: d.timeout,
        }
    }
}

impl RawQueue {
    pub(super) fn build(&self, key: &str, p: &mut Problems) -> QueueConfig {
        if self.size > 1_000_000 {
            p.add(format_args!("{key}.queue.size"), "use 0 to 1000000");
        }
        check(
            p,
            &format!("{key}.queue.timeout"),
            self.timeout,
            MS..=secs(3600),
        );
        QueueConfig {
            size: self.size,
            timeout: self.timeout,
        }
    }
}

/// Checks `max_connections`: 0 (no limit) or up to a million per node.
pub(super) fn check_max_connections(n: u32, key: &str, p: &mut Problems) {
    if n > 1_000_000 {
        p.add(
            format_args!("{key}.max_connections"),
            "use 0 (no limit) to 1000000 requests per node",
        );
    }
}
