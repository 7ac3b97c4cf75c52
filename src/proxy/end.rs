//! Where a session ends, in one place: the router's own reply where the outcome calls for one,
//! the outcome recorded on the node and pool, and the session's log line.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::time::{timeout, Instant};

use super::forward::{linger, LINGER};
use super::head::RequestTag;
use super::session::Peer;
use crate::cluster::{Cluster, Pool};
use crate::node::{Evidence, InFlight, Node, Outcome};
use crate::protocol::reply;
use crate::throttle;

/// What a session learns about its request on the way, for its end.
#[derive(Debug)]
pub(super) struct Trace {
    /// Who sent it.
    pub(super) peer: Peer,
    /// Its id, unless `[request_id]` is off.
    pub(super) tag: Option<RequestTag>,
    /// When its head was in.
    pub(super) started: Instant,
}

impl Trace {
    /// A request from `peer` whose head has just been read.
    pub(super) fn new(peer: Peer, tag: Option<RequestTag>) -> Self {
        Self {
            peer,
            tag,
            started: Instant::now(),
        }
    }
}

/// Where a request ended, for recording it.
pub(super) enum End<'a> {
    /// No pool matched.
    Unrouted(&'a Cluster),
    /// The pool had no node, or none could be connected to (the last one tried, if any).
    Unreached(&'a Arc<Pool>, Option<&'a Node>),
    /// A node took the request.
    Reached(&'a Arc<Pool>, InFlight, Evidence),
}

/// Answers the client itself where the outcome calls for it, then records and logs the session.
pub(super) async fn finish<S>(
    client: &mut S,
    trace: &Trace,
    end: End<'_>,
    outcome: Outcome,
    reason: &str,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if let Some(status) = outcome.reply() {
        let id = trace.tag.as_ref().map(|t| &t.id);
        answer(client, reply(status, reason, id)).await;
    }
    let took = trace.started.elapsed();
    let (pool, node) = match &end {
        End::Unrouted(_) => (None, None),
        End::Unreached(pool, last) => (Some(pool.name.clone()), last.map(|n| n.id().clone())),
        End::Reached(pool, request, _) => {
            (Some(pool.name.clone()), Some(request.node().id().clone()))
        }
    };
    match end {
        End::Unrouted(cluster) => cluster.finish_unrouted(outcome),
        End::Unreached(pool, last) => pool.finish_unreached(last, outcome, took),
        End::Reached(pool, request, evidence) => {
            pool.finish_request(request, outcome, evidence, took)
        }
    }
    let pool_name: &str = pool.as_deref().unwrap_or("");
    let node_id: &str = node.as_deref().unwrap_or("");
    log_end(trace.peer, pool_name, node_id, outcome, reason, took);
}

/// The session's one log line: debug for a success or a client gone, throttled warnings for the
/// rest (a client that stalled is the client's doing: info).
fn log_end(peer: Peer, pool: &str, node: &str, outcome: Outcome, reason: &str, took: Duration) {
    match outcome {
        Outcome::Ok => {
            tracing::debug!(%peer, pool, node, took = ?took, "request done")
        }
        Outcome::ClientAbort => {
            tracing::debug!(%peer, pool, node, reason, "client went away")
        }
        _ => match throttle::admit(outcome.event()) {
            Some(similar) if outcome == Outcome::ClientTimeout => {
                tracing::info!(%peer, pool, node, reason, similar_since_last = similar, "client stalled; connection cut")
            }
            Some(similar) => {
                tracing::warn!(%peer, pool, node, outcome = outcome.label(), reason, similar_since_last = similar, "request failed")
            }
            None => {
                tracing::debug!(%peer, pool, node, outcome = outcome.label(), reason, "request failed")
            }
        },
    }
}

/// Writes a reply, then reads what the client still sends for a short while before closing. A
/// client that does not take the reply within the linger time is left.
async fn answer<S>(client: &mut S, reply: bytes::Bytes)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let write = async {
        client.write_all(&reply).await?;
        client.shutdown().await
    };
    if !matches!(timeout(LINGER, write).await, Ok(Ok(()))) {
        return;
    }
    linger(client).await;
}
