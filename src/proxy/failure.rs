//! How an exchange can fail, shared by both phases of forwarding, and what each failure says
//! about the node.

use std::io;
use std::time::Duration;

/// Read buffer per direction.
pub(super) const BUF_SIZE: usize = 16 * 1024;

/// Why an exchange ended badly. Until `Responded`, no byte has gone to the client.
#[derive(Debug, thiserror::Error)]
pub(super) enum ForwardError {
    /// The node closed or reset the connection before any response byte.
    #[error("node sent no response: {0}")]
    NoResponse(String),
    /// No response byte within `timeouts.first_byte`.
    #[error("node sent no response within {0:?}")]
    Timeout(Duration),
    /// The client went away (reset, or closed) before the response was delivered.
    #[error("client went away: {0}")]
    ClientAbort(io::Error),
    /// The client read nothing of the response, or sent nothing of its announced body, for
    /// `timeouts.idle`.
    #[error("client stalled: it moved no byte for {0:?}")]
    ClientStalled(Duration),
    /// The node failed after the response started: the client gets a truncated response.
    #[error("node failed mid-response: {0}")]
    NodeError(io::Error),
    /// Nothing moved either way for `timeouts.idle` after the response started.
    #[error("no byte moved for {0:?}")]
    IdleTimeout(Duration),
    /// The node answered 502, 503 or 504, held back to resend the request elsewhere.
    #[error("node answered {status}")]
    GatewayAnswer {
        /// 502, 503 or 504.
        status: u16,
        /// When its first byte came.
        first_byte: Duration,
    },
}

/// What a failed exchange says about the node's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Blame {
    /// The node is slow or stuck whatever the request: a failure of the node.
    Node,
    /// The node dropped the connection. A dying node does that, but so does a healthy uWSGI
    /// given a request it refuses (a vars block over its `buffer-size`, say), so the failure is
    /// the node's only if the node also refuses a fresh connection.
    Dropped,
    /// The client's doing: nothing about the node.
    None,
}

impl ForwardError {
    /// What the failure says about the node.
    pub(super) fn blame(&self) -> Blame {
        match self {
            Self::Timeout(_) => Blame::Node,
            Self::NoResponse(_) | Self::NodeError(_) => Blame::Dropped,
            Self::ClientAbort(_) | Self::ClientStalled(_) | Self::IdleTimeout(_) => Blame::None,
            // Counted through its status, as an answer.
            Self::GatewayAnswer { .. } => Blame::None,
        }
    }
}
