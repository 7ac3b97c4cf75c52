//! Monotonic milliseconds since the process started, through tokio's clock so tests can pause time.

use std::sync::OnceLock;

use std::time::Duration;

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

/// About 30 years: what a deadline past anything representable becomes (as tokio does).
const FAR: Duration = Duration::from_secs(86_400 * 365 * 30);

/// `from + after`, saturating: a deadline never overflows, however long `after` is.
pub fn later(from: Instant, after: Duration) -> Instant {
    from.checked_add(after)
        .or_else(|| from.checked_add(FAR))
        .unwrap_or(from)
}

/// The instant `after` from now, saturating.
pub fn deadline(after: Duration) -> Instant {
    later(Instant::now(), after)
}

/// A duration as whole milliseconds for the `AtomicU64` timestamps, saturating at `u64::MAX`.
pub fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_saturate_instead_of_overflowing() {
        let now = Instant::now();
        assert!(later(now, Duration::MAX) > now);
        assert_eq!(
            later(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
        assert_eq!(ms(Duration::MAX), u64::MAX);
        assert_eq!(ms(Duration::from_millis(1500)), 1500);
    }
}
