//! How a session ended: the label used in metrics and logs, and the reply the client gets, if any.

use crate::protocol::ReplyStatus;

/// The end of a session that carried a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// The node's response was delivered.
    Ok,
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

impl Outcome {
    /// Metric label value.
    pub(super) fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::ClientAbort => "client_abort",
            Self::ClientTimeout => "client_timeout",
            Self::NoPool | Self::NoNode => "503",
            Self::ConnectFailed | Self::NoResponse => "502",
            Self::Timeout => "504",
            Self::NodeError => "node_error",
            Self::IdleTimeout => "idle_timeout",
        }
    }

    /// The event name its log line is throttled under (see [`crate::throttle`]).
    pub(super) fn event(self) -> &'static str {
        match self {
            Self::Ok => "request_ok",
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
    pub(super) fn reply(self) -> Option<ReplyStatus> {
        match self {
            Self::NoPool | Self::NoNode => Some(ReplyStatus::ServiceUnavailable),
            Self::ConnectFailed | Self::NoResponse => Some(ReplyStatus::BadGateway),
            Self::Timeout => Some(ReplyStatus::GatewayTimeout),
            Self::Ok
            | Self::ClientAbort
            | Self::ClientTimeout
            | Self::NodeError
            | Self::IdleTimeout => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Outcome::*;

    #[test]
    fn every_label_is_an_outcome_the_metrics_know() {
        let all = [
            Ok,
            ClientAbort,
            ClientTimeout,
            NoPool,
            NoNode,
            ConnectFailed,
            NoResponse,
            Timeout,
            NodeError,
            IdleTimeout,
        ];
        for o in all {
            assert!(crate::metrics::OUTCOMES.contains(&o.label()), "{o:?}");
        }
    }
}
