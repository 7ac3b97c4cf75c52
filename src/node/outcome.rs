//! How a request ended: its metric label (written here once), the reply the router gives itself
//! where no node byte reached the client, and the per-outcome counters kept on nodes and pools.
//! A response the node gave is labelled by its status class (`2xx` ... `5xx`), the router's own
//! answers by their status (`502`, `503`, `504`).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::protocol::ReplyStatus;

/// The end of a session that carried a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The node's response was delivered; its status code (`None`: not an HTTP status line).
    Responded(Option<u16>),
    /// The client went away first.
    ClientAbort,
    /// The client stopped reading the response (or sending its body) and was cut.
    ClientTimeout,
    /// No pool for the routing key.
    NoPool,
    /// The pool has no usable node.
    NoNode,
    /// Every connect attempt failed.
    ConnectFailed,
    /// The node closed or reset the connection without answering.
    NoResponse,
    /// The node gave no first byte in time.
    Timeout,
    /// The node failed after its response started.
    NodeError,
    /// The exchange stalled after the response started.
    IdleTimeout,
}

/// The `outcome` label values, in counter order. Several outcomes share a label (`502` is a
/// failed connect or a node that closed without answering).
pub const LABELS: [&str; 13] = [
    "1xx",
    "2xx",
    "3xx",
    "4xx",
    "5xx",
    "other_status",
    "client_abort",
    "client_timeout",
    "502",
    "503",
    "504",
    "node_error",
    "idle_timeout",
];

impl Outcome {
    /// Index of its label in [`LABELS`].
    const fn index(self) -> usize {
        match self {
            Self::Responded(Some(status @ 100..=599)) => (status / 100) as usize - 1,
            Self::Responded(_) => 5,
            Self::ClientAbort => 6,
            Self::ClientTimeout => 7,
            Self::ConnectFailed | Self::NoResponse => 8,
            Self::NoPool | Self::NoNode => 9,
            Self::Timeout => 10,
            Self::NodeError => 11,
            Self::IdleTimeout => 12,
        }
    }

    /// True for a response the node gave with a 5xx status.
    pub fn is_server_error(self) -> bool {
        matches!(self, Self::Responded(Some(500..=599)))
    }

    /// The status the client saw, if it saw one: the node's, or the router's own reply.
    pub fn status(self) -> Option<u16> {
        match self {
            Self::Responded(status) => status,
            _ => self.reply().map(|r| r.code()),
        }
    }

    /// Metric label value.
    pub const fn label(self) -> &'static str {
        LABELS[self.index()]
    }

    /// Its name in the access log: finer than its label (`connect_failed` and `no_response`
    /// share `502`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Responded(_) => "responded",
            Self::ClientAbort => "client_abort",
            Self::ClientTimeout => "client_timeout",
            Self::NoPool => "no_pool",
            Self::NoNode => "no_node",
            Self::ConnectFailed => "connect_failed",
            Self::NoResponse => "no_response",
            Self::Timeout => "timeout",
            Self::NodeError => "node_error",
            Self::IdleTimeout => "idle_timeout",
        }
    }

    /// The event name its log line is throttled under (see [`crate::throttle`]).
    pub fn event(self) -> &'static str {
        match self {
            Self::Responded(_) => "request_responded",
            Self::ClientAbort => "request_client_abort",
            Self::ClientTimeout => "request_client_timeout",
            Self::NoPool => "request_no_pool",
            Self::NoNode => "request_no_node",
            Self::ConnectFailed => "request_connect_failed",
            Self::NoResponse => "request_no_response",
            Self::Timeout => "request_timeout",
            Self::NodeError => "request_node_error",
            Self::IdleTimeout => "request_idle_timeout",
        }
    }

    /// The status the router answers with itself, for outcomes where no node byte reached the
    /// client.
    pub fn reply(self) -> Option<ReplyStatus> {
        match self {
            Self::NoPool | Self::NoNode => Some(ReplyStatus::ServiceUnavailable),
            Self::ConnectFailed | Self::NoResponse => Some(ReplyStatus::BadGateway),
            Self::Timeout => Some(ReplyStatus::GatewayTimeout),
            Self::Responded(_)
            | Self::ClientAbort
            | Self::ClientTimeout
            | Self::NodeError
            | Self::IdleTimeout => None,
        }
    }
}

/// Finished requests by outcome label: kept on each node, on each pool (no node reached) and on
/// the cluster (no pool matched), and read at scrape time.
#[derive(Debug)]
pub struct RequestCounts([AtomicU64; LABELS.len()]);

impl RequestCounts {
    /// All zero.
    pub const fn new() -> Self {
        Self([const { AtomicU64::new(0) }; LABELS.len()])
    }

    /// Counts one request that ended with `outcome`.
    pub(crate) fn add(&self, outcome: Outcome) {
        self.0[outcome.index()].fetch_add(1, Relaxed);
    }

    /// Requests counted under `outcome`'s label.
    pub fn count(&self, outcome: Outcome) -> u64 {
        self.0[outcome.index()].load(Relaxed)
    }

    /// Every label with its count, in [`LABELS`] order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        LABELS
            .iter()
            .zip(&self.0)
            .map(|(o, n)| (*o, n.load(Relaxed)))
    }
}

impl Default for RequestCounts {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_sharing_a_label_share_its_count() {
        let c = RequestCounts::new();
        c.add(Outcome::Responded(Some(200)));
        c.add(Outcome::Responded(Some(204)));
        c.add(Outcome::Responded(Some(503)));
        c.add(Outcome::Responded(Some(999)));
        c.add(Outcome::Responded(None));
        c.add(Outcome::ConnectFailed);
        c.add(Outcome::NoResponse);
        c.add(Outcome::NoPool);
        let counts: Vec<_> = c.iter().filter(|(_, n)| *n > 0).collect();
        assert_eq!(
            counts,
            [
                ("2xx", 2),
                ("5xx", 1),
                ("other_status", 2),
                ("502", 2),
                ("503", 1)
            ]
        );
    }
}
