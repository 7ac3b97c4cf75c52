//! Why a node left or was ejected: typed causes, each with its metric label and its log wording,
//! so that a cause is never compared or counted as free text.

use std::fmt;

/// Why a node left its pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaveReason {
    /// A dynamic node stopped renewing its lease (missed reports, lost session, dead host).
    LeaseExpired,
    /// A dynamic node finished draining.
    Drained,
    /// Its agent said it leaves, and why.
    AgentLeft(String),
    /// uWSGI unsubscribed it.
    Unsubscribed,
    /// A static node no longer in the config.
    RemovedFromConfig,
    /// `routerctl remove`.
    RemovedByOperator,
}

impl LeaveReason {
    /// Metric label value.
    pub fn label(&self) -> &'static str {
        match self {
            Self::LeaseExpired => "lease_expired",
            Self::Drained => "drained",
            Self::AgentLeft(_) => "agent_left",
            Self::Unsubscribed => "unsubscribed",
            Self::RemovedFromConfig => "removed_from_config",
            Self::RemovedByOperator => "removed_by_operator",
        }
    }

    /// Every label, so that their series can start at 0.
    pub const LABELS: [&'static str; 6] = [
        "lease_expired",
        "drained",
        "agent_left",
        "unsubscribed",
        "removed_from_config",
        "removed_by_operator",
    ];
}

impl fmt::Display for LeaveReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LeaseExpired => f.write_str("lease expired"),
            Self::Drained => f.write_str("drained"),
            Self::AgentLeft(why) if why.is_empty() => f.write_str("agent left"),
            Self::AgentLeft(why) => write!(f, "agent left: {why}"),
            Self::Unsubscribed => f.write_str("unsubscribed"),
            Self::RemovedFromConfig => f.write_str("removed from config"),
            Self::RemovedByOperator => f.write_str("removed by an operator"),
        }
    }
}

/// Why a node was ejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EjectCause {
    /// Passive health checks: failures in a row, or a failed probe after an ejection.
    ConsecutiveFailures,
    /// The node answered 502, 503 or 504 too many times in a row.
    ConsecutiveGatewayErrors,
    /// The node answered 5xx too many times in a row.
    Consecutive5xx,
    /// `routerctl eject`.
    Operator,
}

impl EjectCause {
    /// Metric label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::ConsecutiveFailures => "consecutive_failures",
            Self::ConsecutiveGatewayErrors => "consecutive_gateway_errors",
            Self::Consecutive5xx => "consecutive_5xx",
            Self::Operator => "operator",
        }
    }

    /// Every label, so that their series can start at 0.
    pub const LABELS: [&'static str; 4] = [
        "consecutive_failures",
        "consecutive_gateway_errors",
        "consecutive_5xx",
        "operator",
    ];
}

impl fmt::Display for EjectCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ConsecutiveFailures => "after consecutive failures",
            Self::ConsecutiveGatewayErrors => "after consecutive gateway errors (502, 503, 504)",
            Self::Consecutive5xx => "after consecutive 5xx answers",
            Self::Operator => "by an operator",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_lists_hold_every_cause() {
        let leaves = [
            LeaveReason::LeaseExpired,
            LeaveReason::Drained,
            LeaveReason::AgentLeft("x".into()),
            LeaveReason::Unsubscribed,
            LeaveReason::RemovedFromConfig,
            LeaveReason::RemovedByOperator,
        ];
        assert_eq!(leaves.map(|r| r.label()), LeaveReason::LABELS);
        let ejects = [
            EjectCause::ConsecutiveFailures,
            EjectCause::ConsecutiveGatewayErrors,
            EjectCause::Consecutive5xx,
            EjectCause::Operator,
        ];
        assert_eq!(ejects.map(EjectCause::label), EjectCause::LABELS);
    }
}
