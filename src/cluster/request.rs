//! The end of a request, recorded in one place: the node's counters, latency and health (through
//! its [`InFlight`] guard), the pool's failure accounting and ejection, and the pool's and the
//! cluster's metrics.

use std::time::Duration;

use super::{Cluster, Pool};
use crate::node::{Evidence, InFlight, Node, Outcome};

impl Pool {
    /// A connect attempt on the node of `attempt` failed: a failure of the node (which may eject
    /// it); the request goes on to another node.
    pub fn attempt_failed(&self, attempt: InFlight) {
        self.record_failure(attempt.node());
    }

    /// The request ended on the node of `request` with `outcome`, `took` after its head was read.
    pub fn finish_request(
        &self,
        request: InFlight,
        outcome: Outcome,
        evidence: Evidence,
        took: Duration,
    ) {
        let node = request.node().clone();
        if request.finish(outcome, evidence) {
            self.record_failure(&node);
        }
        if evidence == Evidence::RequestRefused {
            self.metrics.request_dropped();
        }
        self.metrics.request_finished(took);
    }

    /// The request reached no node: none was usable, or every connect failed (`last` is the node
    /// of the last failed attempt, which the outcome is counted on).
    pub fn finish_unreached(&self, last: Option<&Node>, outcome: Outcome, took: Duration) {
        match last {
            Some(node) => node.count_outcome(outcome),
            None => self.metrics.no_node.add(outcome),
        }
        self.metrics.request_finished(took);
    }
}

impl Cluster {
    /// The request matched no pool.
    pub fn finish_unrouted(&self, outcome: Outcome) {
        self.unrouted.add(outcome);
    }
}
