//! Bounded waits on the real signal: a probe (a port that accepts, a log line, a response, a
//! counter) is polled until it answers or the limit passes, and a wait that runs out fails the
//! test naming what never happened. Async waits run on tokio's clock, so paused time advances
//! them; the blocking ones, for tests that drive threads and child processes, on std's.

use std::fmt::{self, Display};
use std::time::Duration;

/// Upper bound of any single step of a test: a hang fails the test instead of stalling CI.
pub const STEP: Duration = Duration::from_secs(20);

/// Pause between two probes: short, because the probe itself is the signal.
pub const POLL: Duration = Duration::from_millis(10);

/// A wait that ran out, with the limit it had.
#[derive(Debug, Clone, Copy)]
pub struct TimedOut(pub Duration);

impl Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not within {:?}", self.0)
    }
}

/// Polls `probe` every [`POLL`] until it returns `Some`, for at most `limit`.
pub async fn within<T>(
    limit: Duration,
    probe: impl AsyncFnMut() -> Option<T>,
) -> Result<T, TimedOut> {
    within_every(POLL, limit, probe).await
}

/// Polls `probe` every `every` (for probes that cost the other side) until it returns `Some`,
/// for at most `limit`.
pub async fn within_every<T>(
    every: Duration,
    limit: Duration,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> Result<T, TimedOut> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = probe().await {
            return Ok(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(TimedOut(limit));
        }
        tokio::time::sleep(every).await;
    }
}

/// Like [`within`], failing the test with `what` when the limit passes.
pub async fn wait_for<T>(
    what: impl Display,
    limit: Duration,
    probe: impl AsyncFnMut() -> Option<T>,
) -> T {
    within(limit, probe)
        .await
        .unwrap_or_else(|e| panic!("waiting for {what}: {e}"))
}

/// Waits until `cond` holds, for at most [`STEP`].
pub async fn wait_until(what: impl Display, mut cond: impl FnMut() -> bool) {
    wait_for(what, STEP, async || cond().then_some(())).await;
}

/// Blocking: polls `probe` every `every` until it returns `Some`, for at most `limit`.
pub fn poll_every<T>(
    every: Duration,
    limit: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> Result<T, TimedOut> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(value) = probe() {
            return Ok(value);
        }
        if std::time::Instant::now() >= deadline {
            return Err(TimedOut(limit));
        }
        std::thread::sleep(every);
    }
}

/// Blocking: polls `probe` every [`POLL`] until it returns `Some`, for at most `limit`.
pub fn poll_within<T>(limit: Duration, probe: impl FnMut() -> Option<T>) -> Result<T, TimedOut> {
    poll_every(POLL, limit, probe)
}

/// Like [`poll_within`], failing the test with `what` when the limit passes.
pub fn poll_for<T>(what: impl Display, limit: Duration, probe: impl FnMut() -> Option<T>) -> T {
    poll_within(limit, probe).unwrap_or_else(|e| panic!("waiting for {what}: {e}"))
}
