//! What a datagram did: the outcome every datagram is counted under, why one was refused, and
//! the log of refusals, limited so that a flood of bad datagrams does not flood the log.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::address::NotifyRefused;
use super::listener::DatagramSource;
use super::packet::{BadPacket, Subscription};
use super::signature::SignatureError;
use crate::cluster::JoinError;

/// What a datagram did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// A new node joined a pool.
    Joined,
    /// A known node renewed its lease.
    Renewed,
    /// A node left on its own unsubscribe.
    Left,
    /// An unsubscribe for a node that is not there (already expired, or never joined).
    UnknownNode,
}

impl Outcome {
    pub(super) fn label(self) -> &'static str {
        match self {
            Self::Joined => "joined",
            Self::Renewed => "renewed",
            Self::Left => "left",
            Self::UnknownNode => "unknown_node",
        }
    }
}

/// Why a subscription datagram was dropped.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// Not a usable subscription packet.
    #[error(transparent)]
    Packet(#[from] BadPacket),
    /// The signature check failed (only when `subscription.key_dir` is set).
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// The sender is outside `subscription.allowed_networks` or the pool's `allowed_networks`.
    #[error("sender {0} is outside the allowed networks")]
    SenderNotAllowed(IpAddr),
    /// The announced address is outside `subscription.allowed_networks`.
    #[error("announced address {0} is outside subscription.allowed_networks")]
    AddressNotAllowed(String),
    /// The key cannot be a host name.
    #[error("key {0:?} is not a host name (or name:port)")]
    BadKey(String),
    /// The announced address is not a node address (ip:port, [v6]:port, host:port by DNS
    /// label rules, an absolute UNIX path without control characters; bounded length).
    #[error("address {0:?} is not a node address")]
    BadAddress(String),
    /// A signed packet announces a relative address (`:port`, `0.0.0.0:port`), which names the
    /// sender's IP, from a host `subscription.relative_address_networks` does not allow for the
    /// key.
    #[error("address {address:?} means the sender's IP {sender}, which the signature does not cover, and subscription.relative_address_networks does not allow {sender} for key {key:?}: announce the node's own address")]
    RelativeAddress {
        /// The address as announced.
        address: String,
        /// The sender's IP.
        sender: IpAddr,
        /// The key, as a route host.
        key: String,
    },
    /// The `notify` var is not a socket path a node would name (control characters, invalid
    /// UTF-8, over 102 bytes).
    #[error("notify {0:?} is not a socket path")]
    BadNotify(String),
    /// No route for the key, and `create_pools` is off.
    #[error("no route for key {0:?}, and subscription.create_pools is off")]
    NoRoute(String),
    /// A pool by the key's name exists and was not created from a key.
    #[error("a pool named {0:?} exists already; route the key to it instead")]
    PoolNameTaken(String),
    /// `subscription.max_pools` pools created from keys exist already.
    #[error("{0} pools created from keys exist already (subscription.max_pools)")]
    TooManyPools(usize),
    /// `subscription.max_nodes` subscribed nodes exist already.
    #[error("{0} subscribed nodes exist already (subscription.max_nodes)")]
    TooManyNodes(usize),
    /// The pool refused the node (full, address not allowed, id taken).
    #[error(transparent)]
    Join(#[from] JoinError),
}

impl Refused {
    /// A short stable name for metrics labels and log fields.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Packet(e) => e.kind(),
            Self::Signature(e) => e.kind(),
            Self::SenderNotAllowed(_) => "sender_not_allowed",
            Self::AddressNotAllowed(_) => "address_not_allowed",
            Self::BadKey(_) => "bad_key",
            Self::BadAddress(_) => "bad_address",
            Self::RelativeAddress { .. } => "relative_address",
            Self::BadNotify(_) => "bad_notify",
            Self::NoRoute(_) => "no_route",
            Self::PoolNameTaken(_) => "pool_name_taken",
            Self::TooManyPools(_) => "max_pools",
            Self::TooManyNodes(_) => "max_nodes",
            Self::Join(e) => e.kind(),
        }
    }

    /// True for a well-formed request that admission turned down (counted as a rejected
    /// registration too), as opposed to a packet that is broken.
    pub(super) fn is_rejection(&self) -> bool {
        !matches!(self, Self::Packet(_))
    }
}

/// Logs each kind of refusal at most once per [`LOG_EVERY`] at `warn` (saying how many were
/// left out since), the others at `debug`: a flood of bad datagrams must not flood the log.
#[derive(Debug, Default)]
pub(super) struct LogLimiter {
    kinds: HashMap<&'static str, (Option<Instant>, u64)>,
}

const LOG_EVERY: Duration = Duration::from_secs(10);

impl LogLimiter {
    pub(super) fn refused(
        &mut self,
        refused: &Refused,
        from: DatagramSource,
        s: Option<Subscription<'_>>,
    ) {
        let kind = refused.kind();
        let (key, address) = s.map_or((None, None), |s| {
            let text = |b: &[u8]| Some(String::from_utf8_lossy(b).into_owned());
            (text(s.key), text(s.address))
        });
        let Some(skipped) = self.due(kind) else {
            tracing::debug!(%from, key = key.as_deref(), address = address.as_deref(), reason = kind, error = %refused, "subscription refused");
            return;
        };
        tracing::warn!(%from, key = key.as_deref(), address = address.as_deref(), reason = kind, error = %refused, similar_since_last = skipped, "subscription refused");
    }

    /// A node joined, but its `notify` path may not be written to: logged (within the same
    /// limits) when `notify_dir` is set, since the path is then a misconfiguration or an attempt
    /// at another socket; without `notify_dir` nothing is ever acknowledged, so only at `debug`.
    pub(super) fn not_acknowledged(
        &mut self,
        why: &NotifyRefused,
        from: DatagramSource,
        key: &[u8],
    ) {
        let key = String::from_utf8_lossy(key);
        const KIND: &str = "notify_outside_dir";
        if matches!(why, NotifyRefused::Outside { .. }) {
            if let Some(skipped) = self.due(KIND) {
                tracing::warn!(%from, key = &*key, reason = KIND, error = %why, similar_since_last = skipped, "subscription acknowledgement not sent");
                return;
            }
        }
        tracing::debug!(%from, key = &*key, error = %why, "subscription acknowledgement not sent");
    }

    /// `Some(number left out since)` when a line of `kind` may be logged at `warn` now.
    fn due(&mut self, kind: &'static str) -> Option<u64> {
        let now = Instant::now();
        let (last, skipped) = self.kinds.entry(kind).or_default();
        if last.is_some_and(|t| now.duration_since(t) < LOG_EVERY) {
            *skipped += 1;
            crate::metrics::log_suppressed(kind);
            return None;
        }
        *last = Some(now);
        Some(std::mem::take(skipped))
    }
}
