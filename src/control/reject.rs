//! Why the registry refuses a node or ends its session: one cause, with its wire code, its log
//! line and its metric, emitted together.

use crate::api::RejectCode;
use crate::cluster::JoinError;
use crate::metrics;

/// A refusal of the registry.
#[derive(Debug)]
pub(super) enum RejectReason {
    /// No valid credentials (counted by the interceptor, which answers with a status).
    Unauthenticated,
    /// `control.max_sessions` sessions are open.
    TooManySessions,
    /// A message over `control.max_message_bytes`.
    MessageTooLarge,
    /// A malformed Announce, or messages out of order.
    Invalid(String),
    /// The cluster refused the node.
    Join(JoinError),
    /// The node id is held by another live session or lease.
    Held(String),
    /// Load reports kept coming faster than `control.min_report_interval`.
    RateLimited,
    /// A new session of the same node took over: not a refusal of a registration.
    Replaced(String),
}

impl RejectReason {
    /// Label of `uwsgi_router_registration_rejections_total`, or `None` when it is not counted.
    fn label(&self) -> Option<&'static str> {
        Some(match self {
            Self::Unauthenticated => "unauthenticated",
            Self::TooManySessions => "too_many_sessions",
            Self::MessageTooLarge => "message_too_large",
            Self::Invalid(_) => "invalid",
            Self::Join(e) => e.kind(),
            Self::Held(_) => "id_taken",
            Self::RateLimited => "rate_limited",
            Self::Replaced(_) => return None,
        })
    }

    /// The code a `Rejected` message carries.
    pub(super) fn code(&self) -> RejectCode {
        match self {
            Self::Join(JoinError::UnknownPool(_)) => RejectCode::UnknownPool,
            Self::Join(JoinError::PoolFull { .. }) => RejectCode::PoolFull,
            Self::Join(JoinError::AddressNotAllowed { .. }) => RejectCode::AddressNotAllowed,
            Self::Join(JoinError::IdTaken { .. }) | Self::Held(_) | Self::Replaced(_) => {
                RejectCode::IdTaken
            }
            Self::RateLimited => RejectCode::RateLimited,
            Self::Unauthenticated
            | Self::TooManySessions
            | Self::MessageTooLarge
            | Self::Invalid(_) => RejectCode::Invalid,
        }
    }

    /// What the node is told.
    pub(super) fn message(&self) -> String {
        match self {
            Self::Unauthenticated => "missing or invalid credentials".to_owned(),
            Self::TooManySessions => {
                "too many registry sessions open; raise control.max_sessions".to_owned()
            }
            Self::MessageTooLarge => "message over control.max_message_bytes".to_owned(),
            Self::Invalid(why) | Self::Held(why) | Self::Replaced(why) => why.clone(),
            Self::Join(e) => e.to_string(),
            Self::RateLimited => {
                "load reports come faster than control.min_report_interval".to_owned()
            }
        }
    }

    /// Counts the refusal (where it is one).
    pub(super) fn count(&self) {
        if let Some(label) = self.label() {
            metrics::registration_rejected(label);
        }
    }

    /// Logs and counts the refusal of `who`.
    pub(super) fn emit(&self, who: &str) {
        let reason = self.message();
        match self.label() {
            Some(label) => tracing::warn!(who, reason, kind = label, "registration refused"),
            None => tracing::info!(who, reason, "agent session taken over"),
        }
        self.count();
    }
}
