//! Monotonic milliseconds since the process started, through tokio's clock so tests can pause time.

use std::sync::OnceLock;

use tokio::time::Instant;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// The process epoch: the first time anything asked for the time.
pub fn epoch() -> Instant {
    *EPOCH.get_or_init(Instant::now)
}

/// Milliseconds since the epoch; fits the `AtomicU64` timestamps kept on nodes.
pub fn now_ms() -> u64 {
    Instant::now()
        .saturating_duration_since(epoch())
        .as_millis() as u64
}
