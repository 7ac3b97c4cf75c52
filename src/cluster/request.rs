//! The end of a request, recorded in one place: the node's counters, latency and health (through
//! its [`InFlight`] guard), the pool's failure accounting and ejection, and the pool's and the
//! cluster's metrics.

use std::time::Duration;

use super::{Cluster, EjectCause, Pool};
use crate::node::{Evidence, Fault, InFlight, Node, Outcome, StatusFault};

impl Pool {
    /// A connect attempt on the node of `attempt` failed: a failure of the node (which may eject
    /// it, and which its latency estimate counts); the request goes on to another node.
    pub fn attempt_failed(&self, attempt: InFlight) {
        self.attempt_resent(attempt, Evidence::Failed);
    }

    /// The request is sent to another node after `evidence` on the node of `attempt`.
    pub fn attempt_resent(&self, attempt: InFlight, evidence: Evidence) {
        let node = attempt.node().clone();
        let fault = attempt.abandon(evidence, &self.settings().ejection);
        self.count_fault(&node, fault);
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
        let fault = request.finish(outcome, evidence, &self.settings().ejection);
        self.count_fault(&node, fault);
        if evidence == Evidence::RequestRefused {
            self.metrics.request_dropped();
        }
        self.metrics.request_finished(took);
    }

    fn count_fault(&self, node: &Node, fault: Option<Fault>) {
        match fault {
            Some(Fault::Failed) => drop(self.record_failure(node)),
            Some(Fault::ErrorAnswers(time, why)) => {
                let cause = match why {
                    StatusFault::GatewayErrors => EjectCause::ConsecutiveGatewayErrors,
                    StatusFault::ServerErrors => EjectCause::Consecutive5xx,
                };
                self.eject_capped(node, time, cause);
            }
            None => {}
        }
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
