//! A request on a node, from the pick to the end of the exchange: counted in the node's in-flight
//! requests while it lasts, and recorded when it ends (outcome, latency, health) in one place.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::{Node, Outcome, StatusFault};
use crate::clock::now_ms;
use crate::config::EjectionConfig;

/// What an exchange says about its node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    /// The node answered: its time to first byte, and the status its response began with.
    Answered(Duration, Option<u16>),
    /// The node failed the request: closed or reset it, or broke off its response.
    Failed,
    /// The node gave no first byte within this time: a failure, and a latency sample.
    TimedOut(Duration),
    /// The node dropped the request but accepts new connections: the request's fault.
    RequestRefused,
    /// Nothing about the node (the client went away or stalled).
    Unrelated,
}

impl Evidence {
    /// True when the request failed because of the node.
    pub fn is_failure(self) -> bool {
        matches!(self, Self::Failed | Self::TimedOut(_))
    }
}

/// What a request's end holds against its node, for the pool to count towards an ejection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A failure: connect, reset, timeout.
    Failed,
    /// Error answers in a row reached a rule: eject for this long.
    ErrorAnswers(Duration, StatusFault),
}

/// A request in flight on a node. Dropping it without [`InFlight::finish`] (a failed connect)
/// still takes it out of the node's in-flight count.
#[derive(Debug)]
pub struct InFlight {
    node: Arc<Node>,
    /// The node's in-flight requests when this one was added, itself included: how many were
    /// ahead of or beside it.
    depth: u32,
    /// Woken when this request ends: its node has a free place under the pool's limit.
    freed: Option<Arc<Notify>>,
}

impl Node {
    /// Counts a new request on the node until the returned guard is dropped.
    pub fn start_request(self: &Arc<Self>) -> InFlight {
        let depth = self.in_flight.fetch_add(1, Relaxed) + 1;
        self.requests.fetch_add(1, Relaxed);
        InFlight {
            node: self.clone(),
            depth,
            freed: None,
        }
    }

    /// Counts a new request on the node unless it already has `limit` in flight (0: no limit).
    /// The returned guard wakes one waiter of `freed` when it ends, so a request queued for a
    /// free node can take its place.
    pub fn try_start_request(
        self: &Arc<Self>,
        limit: u32,
        freed: &Arc<Notify>,
    ) -> Option<InFlight> {
        if limit == 0 {
            return Some(self.start_request());
        }
        let before = self
            .in_flight
            .fetch_update(Relaxed, Relaxed, |n| (n < limit).then_some(n + 1))
            .ok()?;
        self.requests.fetch_add(1, Relaxed);
        Some(InFlight {
            node: self.clone(),
            depth: before + 1,
            freed: Some(freed.clone()),
        })
    }
}

impl InFlight {
    /// The node.
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// Records how the request ended on the node: its outcome, a latency sample, and what it
    /// says about the node's health. What counts towards an ejection is returned, for the pool
    /// to decide (ejection is capped per pool).
    pub fn finish(
        self,
        outcome: Outcome,
        evidence: Evidence,
        cfg: &EjectionConfig,
    ) -> Option<Fault> {
        self.node.outcomes.add(outcome);
        self.judge(evidence, cfg)
    }

    /// Records what an attempt that is given up for another node says about this one (no
    /// outcome: the request's outcome is counted where it ends).
    pub fn abandon(self, evidence: Evidence, cfg: &EjectionConfig) -> Option<Fault> {
        self.judge(evidence, cfg)
    }

    fn judge(&self, evidence: Evidence, cfg: &EjectionConfig) -> Option<Fault> {
        let node = &self.node;
        let mut fault = evidence.is_failure().then_some(Fault::Failed);
        match evidence {
            Evidence::Answered(first_byte, status) => {
                match status {
                    Some(code @ 500..=599) => {
                        fault = node
                            .health
                            .record_error_status(code, cfg)
                            .map(|(time, why)| Fault::ErrorAnswers(time, why));
                    }
                    _ => node.health.record_success(),
                }
                // Requests queued beside this one on the node made it wait: what the balancer
                // needs is the node's time per request, so that a node is not charged for its
                // queue twice (once through this latency, once through its in-flight count).
                let per_request = first_byte.as_secs_f64() * 1e3 / f64::from(self.depth.max(1));
                node.latency.observe(per_request, now_ms());
            }
            Evidence::TimedOut(after) => node.latency.observe(after.as_secs_f64() * 1e3, now_ms()),
            // A probe whose outcome says nothing about the node: let the next request probe
            // instead of waiting for the probe to time out.
            Evidence::RequestRefused => node.health.release_probe(),
            // A failed attempt counts as a slow answer: a node that refuses or resets must not
            // look like one not tried yet (those are preferred until they answer).
            Evidence::Failed => node.latency.observe(super::ewma::DEFAULT_RTT_MS, now_ms()),
            Evidence::Unrelated => {}
        }
        fault
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.node.in_flight.fetch_sub(1, Relaxed);
        if let Some(freed) = &self.freed {
            freed.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::Source;

    fn node() -> Arc<Node> {
        Arc::new(Node::new(
            "n",
            "127.0.0.1:1".parse().unwrap(),
            Source::Static,
            1,
        ))
    }

    #[test]
    fn a_request_counts_in_flight_until_it_ends_and_records_its_outcome() {
        let n = node();
        let a = n.start_request();
        let b = n.start_request();
        assert_eq!((n.in_flight(), n.requests_total()), (2, 2));
        drop(a);
        assert_eq!(n.in_flight(), 1, "a failed connect still leaves the count");
        // Two requests were on the node: 40 ms to the first byte is 20 ms of the node's time.
        let cfg = EjectionConfig::default();
        let answered = Evidence::Answered(Duration::from_millis(40), Some(200));
        assert_eq!(
            b.finish(Outcome::Responded(Some(200)), answered, &cfg),
            None
        );
        assert_eq!(n.in_flight(), 0);
        let latency = n.latency_ms(now_ms());
        assert!((19.0..=20.0).contains(&latency), "{latency}");
        let ok = n.outcomes().iter().find(|(l, _)| *l == "2xx").unwrap().1;
        assert_eq!(ok, 1);
        let failed = n
            .start_request()
            .finish(Outcome::NoResponse, Evidence::Failed, &cfg);
        assert_eq!(failed, Some(Fault::Failed));
    }
}
