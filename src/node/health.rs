//! Passive health: consecutive failures, or consecutive gateway errors and 5xx answers of the node,
//! eject a node for a backoff that doubles (with jitter) while it keeps failing; when the ejection
//! ends one probe request is let through before the others.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use rand::Rng;

use crate::config::EjectionConfig;

/// Failure counters and ejection deadline of one node.
#[derive(Debug, Default)]
pub struct Health {
    consecutive: AtomicU32,
    /// 502, 503 and 504 answers in a row.
    gateway_errors: AtomicU32,
    /// 5xx answers in a row.
    server_errors: AtomicU32,
    /// Ejections in a row without a success in between: the backoff exponent.
    streak: AtomicU32,
    /// `now_ms` until which the node is ejected; 0 = not ejected.
    ejected_until: AtomicU64,
    /// `now_ms` at which the probe after an ejection went out; 0 = none out. A probe whose
    /// outcome never comes (its session was dropped) stops counting after [`PROBE_TIMEOUT_MS`].
    probe_at: AtomicU64,
}

/// How long a probe may be out before another request may probe instead.
pub(super) const PROBE_TIMEOUT_MS: u64 = 10_000;

/// What recording a failure decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureVerdict {
    /// Below the threshold: the node stays in.
    Counted,
    /// Over the threshold: eject for this long (if the pool's cap allows).
    Eject(Duration),
}

/// Which rule an error answer tripped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFault {
    /// `consecutive_gateway_errors`.
    GatewayErrors,
    /// `consecutive_5xx`.
    ServerErrors,
}

impl Health {
    /// True while ejected, and after the ejection while its probe request is out.
    pub fn is_ejected(&self, now_ms: u64) -> bool {
        let until = self.ejected_until.load(Relaxed);
        until != 0 && (now_ms < until || self.probe_out(now_ms))
    }

    fn probe_out(&self, now_ms: u64) -> bool {
        let at = self.probe_at.load(Relaxed);
        at != 0 && now_ms < at + PROBE_TIMEOUT_MS
    }

    /// True if the node was ejected and the backoff is over: the caller may send the probe.
    /// Only one caller wins until the probe's outcome is recorded.
    pub fn try_claim_probe(&self, now_ms: u64) -> bool {
        let until = self.ejected_until.load(Relaxed);
        let at = self.probe_at.load(Relaxed);
        until != 0
            && now_ms >= until
            && !self.probe_out(now_ms)
            && self
                .probe_at
                .compare_exchange(at, now_ms.max(1), Relaxed, Relaxed)
                .is_ok()
    }

    /// A request reached the node and got an answer: the node is healthy again.
    pub fn record_success(&self) {
        self.consecutive.store(0, Relaxed);
        self.gateway_errors.store(0, Relaxed);
        self.server_errors.store(0, Relaxed);
        if self.ejected_until.load(Relaxed) != 0 {
            self.ejected_until.store(0, Relaxed);
            self.streak.store(0, Relaxed);
            self.probe_at.store(0, Relaxed);
        }
    }

    /// The probe request's outcome says nothing about the node (the request was at fault):
    /// let the next request probe instead of waiting for the probe to time out.
    pub fn release_probe(&self) {
        self.probe_at.store(0, Relaxed);
    }

    /// Counts a failure and says whether the node should be ejected.
    pub fn record_failure(&self, cfg: &EjectionConfig) -> FailureVerdict {
        let probe_failed = self.probe_at.swap(0, Relaxed) != 0;
        let n = self.consecutive.fetch_add(1, Relaxed) + 1;
        if probe_failed || n >= cfg.consecutive_failures {
            let streak = self.streak.load(Relaxed);
            FailureVerdict::Eject(backoff(cfg, streak))
        } else {
            FailureVerdict::Counted
        }
    }

    /// The node answered with `status` (a 5xx: anything else is a success). It is reachable, so
    /// its run of connection failures ends; its run of error answers grows, and ejects it when a
    /// rule of `cfg` that is on is reached, or when it was the probe after an ejection.
    pub fn record_error_status(
        &self,
        status: u16,
        cfg: &EjectionConfig,
    ) -> Option<(Duration, StatusFault)> {
        self.consecutive.store(0, Relaxed);
        let gateway = matches!(status, 502..=504);
        let g = if gateway {
            self.gateway_errors.fetch_add(1, Relaxed) + 1
        } else {
            self.gateway_errors.store(0, Relaxed);
            0
        };
        let s = self.server_errors.fetch_add(1, Relaxed) + 1;
        let probe_failed = self.probe_at.swap(0, Relaxed) != 0;
        let reached = |rule: u32, run: u32| rule > 0 && (run >= rule || probe_failed);
        let fault = if gateway && reached(cfg.consecutive_gateway_errors, g) {
            StatusFault::GatewayErrors
        } else if reached(cfg.consecutive_5xx, s) {
            StatusFault::ServerErrors
        } else {
            if probe_failed {
                // Ejected for failing to answer, and it answers: no rule holds it out.
                self.end_ejection();
            }
            return None;
        };
        Some((backoff(cfg, self.streak.load(Relaxed)), fault))
    }

    fn end_ejection(&self) {
        self.ejected_until.store(0, Relaxed);
        self.streak.store(0, Relaxed);
        self.probe_at.store(0, Relaxed);
    }

    /// Ejects until `now_ms + time`.
    pub fn eject(&self, now_ms: u64, time: Duration) {
        self.consecutive.store(0, Relaxed);
        self.gateway_errors.store(0, Relaxed);
        self.server_errors.store(0, Relaxed);
        self.streak.fetch_add(1, Relaxed);
        self.probe_at.store(0, Relaxed);
        self.ejected_until
            .store(now_ms.saturating_add(crate::clock::ms(time)), Relaxed);
    }

    /// Ends an ejection at once (operator `resume`, or a re-join).
    pub fn clear(&self) {
        self.consecutive.store(0, Relaxed);
        self.gateway_errors.store(0, Relaxed);
        self.server_errors.store(0, Relaxed);
        self.streak.store(0, Relaxed);
        self.ejected_until.store(0, Relaxed);
        self.probe_at.store(0, Relaxed);
    }

    /// `now_ms` the current ejection ends at, if any.
    pub fn ejected_until(&self) -> Option<u64> {
        match self.ejected_until.load(Relaxed) {
            0 => None,
            t => Some(t),
        }
    }
}

/// base * 2^streak, capped at max, minus up to 10% jitter so ejected nodes do not return together.
fn backoff(cfg: &EjectionConfig, streak: u32) -> Duration {
    let full = cfg
        .base_time
        .saturating_mul(1u32 << streak.min(16))
        .min(cfg.max_time);
    full.mul_f64(1.0 - rand::thread_rng().gen_range(0.0..0.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> EjectionConfig {
        EjectionConfig {
            consecutive_failures: 3,
            consecutive_gateway_errors: 2,
            consecutive_5xx: 0,
            base_time: Duration::from_secs(2),
            max_time: Duration::from_secs(10),
            max_percent: 50,
        }
    }

    #[test]
    fn ejects_after_consecutive_failures_with_growing_backoff() {
        let h = Health::default();
        assert_eq!(h.record_failure(&cfg()), FailureVerdict::Counted);
        h.record_success();
        assert_eq!(h.record_failure(&cfg()), FailureVerdict::Counted);
        assert_eq!(h.record_failure(&cfg()), FailureVerdict::Counted);
        let FailureVerdict::Eject(first) = h.record_failure(&cfg()) else {
            panic!("third failure in a row must eject")
        };
        assert!(first <= Duration::from_secs(2) && first >= Duration::from_millis(1800));
        h.eject(1_000, first);
        assert!(h.is_ejected(1_500));
        // Backoff over: exactly one probe is let through.
        let after = 1_000 + first.as_millis() as u64;
        assert!(h.try_claim_probe(after));
        assert!(!h.try_claim_probe(after));
        assert!(h.is_ejected(after), "others wait while the probe is out");
        // A probe whose outcome never came stops blocking the node.
        assert!(!h.is_ejected(after + PROBE_TIMEOUT_MS));
        // The probe fails: ejected again, twice as long.
        let FailureVerdict::Eject(second) = h.record_failure(&cfg()) else {
            panic!("a failed probe must eject again")
        };
        assert!(second >= Duration::from_millis(3600), "{second:?}");
        h.eject(after, second);
        // Backoff is capped.
        for _ in 0..10 {
            h.eject(after, backoff(&cfg(), 10));
        }
        assert!(backoff(&cfg(), 10) <= Duration::from_secs(10));
        // A successful probe ends it all.
        h.record_success();
        assert!(!h.is_ejected(after));
        assert_eq!(h.ejected_until(), None);
    }

    #[test]
    fn gateway_errors_in_a_row_eject_and_other_answers_end_the_run() {
        let h = Health::default();
        assert_eq!(h.record_error_status(503, &cfg()), None);
        h.record_success();
        assert_eq!(h.record_error_status(502, &cfg()), None);
        assert_eq!(
            h.record_error_status(500, &cfg()),
            None,
            "a 500 ends the run"
        );
        assert_eq!(h.record_error_status(504, &cfg()), None);
        let Some((_, fault)) = h.record_error_status(503, &cfg()) else {
            panic!("two gateway errors in a row must eject")
        };
        assert_eq!(fault, StatusFault::GatewayErrors);
        // 5xx is off by default: any number of 500s keeps the node in.
        for _ in 0..20 {
            assert_eq!(h.record_error_status(500, &cfg()), None);
        }
        let strict = EjectionConfig {
            consecutive_5xx: 3,
            ..cfg()
        };
        assert_eq!(
            h.record_error_status(500, &strict).map(|(_, f)| f),
            Some(StatusFault::ServerErrors)
        );
    }
}
