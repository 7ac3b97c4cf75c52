//! What a node says about its own load (an agent's report, a subscription packet), kept as the one
//! rule both sources follow, and what the balancer takes from it.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

/// Reports older than this are ignored: the cost falls back to what the router sees itself.
pub const REPORT_STALE_MS: u64 = 3_000;

/// One load report, as the control plane or a subscription packet carries it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Workers (processes x threads); 0 = not said, the last known capacity stays.
    pub capacity: u32,
    /// Workers busy now.
    pub busy: u32,
    /// Connections waiting in the node's listen queue.
    pub queue: u32,
    /// A new weight for the node (uWSGI subscriptions carry one in every packet).
    pub weight: Option<u32>,
}

/// The last report as read back, with when it came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportedLoad {
    /// Workers; 0 = unknown.
    pub capacity: u32,
    /// Busy workers.
    pub busy: u32,
    /// Listen queue.
    pub queue: u32,
    /// [`crate::clock::now_ms`] it was recorded at.
    pub at_ms: u64,
}

/// The node's last report (all zero until it reports).
#[derive(Debug, Default)]
pub(super) struct LoadCell {
    capacity: AtomicU32,
    busy: AtomicU32,
    queue: AtomicU32,
    /// `now_ms` of the last report; 0 = never.
    at_ms: AtomicU64,
}

impl LoadCell {
    pub(super) fn record(&self, r: &LoadReport, now_ms: u64) {
        if r.capacity > 0 {
            self.capacity.store(r.capacity, Relaxed);
        }
        self.busy.store(r.busy, Relaxed);
        self.queue.store(r.queue, Relaxed);
        self.at_ms.store(now_ms.max(1), Relaxed);
    }

    pub(super) fn announce_capacity(&self, capacity: u32) {
        self.capacity.store(capacity, Relaxed);
    }

    /// The announced capacity, whether or not a report came since.
    pub(super) fn capacity(&self) -> u32 {
        self.capacity.load(Relaxed)
    }

    pub(super) fn get(&self) -> Option<ReportedLoad> {
        match self.at_ms.load(Relaxed) {
            0 => None,
            at_ms => Some(ReportedLoad {
                capacity: self.capacity.load(Relaxed),
                busy: self.busy.load(Relaxed),
                queue: self.queue.load(Relaxed),
                at_ms,
            }),
        }
    }

    /// Load the node reported (busy workers plus listen queue) beyond the router's own
    /// `in_flight` requests, or 0 when there is no fresh report.
    pub(super) fn extra_load(&self, now_ms: u64, in_flight: u32) -> f64 {
        let at = self.at_ms.load(Relaxed);
        if at == 0 || now_ms.saturating_sub(at) > REPORT_STALE_MS {
            return 0.0;
        }
        // The router's own requests are in the node's busy workers and listen queue too, and
        // already counted through `in_flight`: only what is beyond them is someone else's.
        let reported = self.busy.load(Relaxed) + self.queue.load(Relaxed);
        f64::from(reported.saturating_sub(in_flight))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_without_capacity_keeps_the_last_one_and_stale_reports_count_nothing() {
        let cell = LoadCell::default();
        assert_eq!(cell.get(), None);
        assert_eq!(cell.extra_load(1_000, 0), 0.0);
        let report = LoadReport {
            capacity: 4,
            busy: 4,
            queue: 6,
            weight: None,
        };
        cell.record(&report, 1_000);
        cell.record(
            &LoadReport {
                capacity: 0,
                ..report
            },
            1_000,
        );
        assert_eq!(cell.get().map(|l| l.capacity), Some(4));
        assert_eq!(cell.extra_load(1_500, 3), 7.0, "beyond the router's own 3");
        assert_eq!(cell.extra_load(1_000 + REPORT_STALE_MS + 1, 3), 0.0);
    }
}
