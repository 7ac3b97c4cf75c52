//! `[pools.NAME.retry]`: which failed requests are resent to another node, as nginx's
//! `uwsgi_next_upstream` and Envoy's retry policy and retry budget define them.

use serde::Deserialize;

use super::Problems;

/// Why a request may be resent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RetryOn {
    /// The connect to the node failed: no byte of the request reached it.
    ConnectFailure,
    /// The node closed or reset the connection before sending any response byte.
    ResetBeforeResponse,
    /// The node answered 502, 503 or 504. The router then holds each response until its status
    /// line is read (12 bytes, nearly always in the first read), and resends the request instead
    /// of relaying such an answer.
    GatewayError,
}

impl RetryOn {
    /// Label value of `uwsgi_router_retries_total`.
    pub fn label(self) -> &'static str {
        match self {
            Self::ConnectFailure => "connect_failure",
            Self::ResetBeforeResponse => "reset_before_response",
            Self::GatewayError => "gateway_error",
        }
    }

    /// Every reason, so that their series can start at 0.
    pub const ALL: [Self; 3] = [
        Self::ConnectFailure,
        Self::ResetBeforeResponse,
        Self::GatewayError,
    ];
}

/// `[pools.NAME.retry]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// What is retried. A connect failure is always safe; the others only for a request whose
    /// method is idempotent (not POST, PATCH or LOCK, unless `non_idempotent`) and whose body was
    /// kept whole.
    pub on: Vec<RetryOn>,
    /// Also resend POST, PATCH and LOCK requests (nginx's `non_idempotent`).
    pub non_idempotent: bool,
    /// Largest request body, in bytes, read and kept in memory before the request is sent so
    /// that it can be resent; a request with a larger body is streamed and not retried.
    pub buffer: usize,
    /// Retries in flight at once, at most this percentage of the pool's requests in flight
    /// (Envoy's retry budget): a sick pool gets no retry storm.
    pub budget_percent: u32,
    /// ... but always at least this many retries in flight.
    pub min_concurrency: u32,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            on: vec![RetryOn::ConnectFailure, RetryOn::ResetBeforeResponse],
            non_idempotent: false,
            buffer: 64 * 1024,
            budget_percent: 20,
            min_concurrency: 3,
        }
    }
}

/// Upper bound of `retry.buffer`.
const MAX_BUFFER: usize = 16 * 1024 * 1024;

impl RetryConfig {
    /// True when requests are retried for `why`.
    pub fn on(&self, why: RetryOn) -> bool {
        self.on.contains(&why)
    }

    pub(super) fn check(&self, key: &str, p: &mut Problems) {
        if self.buffer > MAX_BUFFER {
            p.add(
                format_args!("{key}.retry.buffer"),
                format_args!("use 0 to {MAX_BUFFER} bytes (0: only bodiless requests are retried)"),
            );
        }
        if self.budget_percent > 100 {
            p.add(
                format_args!("{key}.retry.budget_percent"),
                "is a percentage: 0 to 100",
            );
        }
        if self.min_concurrency > 10_000 {
            p.add(
                format_args!("{key}.retry.min_concurrency"),
                "use 0 to 10000",
            );
        }
    }
}
