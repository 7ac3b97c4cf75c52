//! Log lines an attacker can trigger once per packet or connection (a malformed packet, a failed
//! request, a refused datagram) are throttled per event kind: at most one line per
//! [`EVERY`], which says how many similar events it stands for; the rest are counted in
//! `uwsgi_router_log_lines_suppressed_total` and logged at `debug`. Lock-free after a kind's
//! first event, so many sessions share it.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::Duration;

use dashmap::DashMap;

use crate::clock;

/// At most one line of a kind this often.
pub const EVERY: Duration = Duration::from_secs(10);

/// The state of one kind: when its last line went out, and what was held back since.
#[derive(Debug, Default)]
struct Gate {
    /// `clock::now_ms() + 1` of the last line out; 0 = never.
    last_ms: AtomicU64,
    suppressed: AtomicU64,
}

fn gates() -> &'static DashMap<&'static str, &'static Gate> {
    static GATES: OnceLock<DashMap<&'static str, &'static Gate>> = OnceLock::new();
    GATES.get_or_init(DashMap::new)
}

/// `Some(n)`: a line of `kind` may be logged now, standing for itself and `n` events held back
/// since the last one. `None`: hold it back (it is counted).
pub fn admit(kind: &'static str) -> Option<u64> {
    // One gate per kind for the life of the process: the kinds are a fixed set of names.
    let gate: &'static Gate = *gates()
        .entry(kind)
        .or_insert_with(|| Box::leak(Box::default()));
    admit_at(gate, kind, clock::now_ms())
}

fn admit_at(gate: &Gate, kind: &'static str, now_ms: u64) -> Option<u64> {
    let last = gate.last_ms.load(Relaxed);
    let due = last == 0 || now_ms + 1 >= last.saturating_add(clock::ms(EVERY));
    if due
        && gate
            .last_ms
            .compare_exchange(last, now_ms + 1, Relaxed, Relaxed)
            .is_ok()
    {
        return Some(gate.suppressed.swap(0, Relaxed));
    }
    gate.suppressed.fetch_add(1, Relaxed);
    crate::metrics::log_suppressed(kind);
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_period_standing_for_the_rest() {
        let g = Gate::default();
        assert_eq!(admit_at(&g, "test", 0), Some(0));
        for t in [1, 500, 9_998] {
            assert_eq!(admit_at(&g, "test", t), None);
        }
        assert_eq!(admit_at(&g, "test", 10_000), Some(3));
        assert_eq!(admit_at(&g, "test", 10_001), None);
        assert_eq!(admit_at(&g, "test", 20_000), Some(1));
    }
}
