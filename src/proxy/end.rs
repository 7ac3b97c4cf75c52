//! Where a session ends, in one place: the router's own reply where the outcome calls for one,
//! the outcome recorded on the node and pool, the session's log line and its access log line.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::time::{timeout, Instant};

use super::counted::Counted;
use super::forward::{linger, LINGER};
use super::head::{Head, RequestTag};
use super::session::Peer;
use super::Dispatch;
use crate::access_log::{Entry, RequestLine, Status};
use crate::cluster::{Cluster, Pool};
use crate::node::{Evidence, InFlight, Node, Outcome};
use crate::protocol::{reply, RequestId};
use crate::throttle;

/// What a session learns about its request on the way, for its end.
#[derive(Debug)]
pub(super) struct Trace<'a> {
    /// Who sent it.
    pub(super) peer: Peer,
    /// Its head.
    pub(super) head: &'a Head,
    /// Its id, unless `[request_id]` is off.
    pub(super) tag: Option<RequestTag>,
    /// When its head was in.
    pub(super) started: Instant,
    /// Connect attempts made.
    pub(super) attempts: u32,
    /// Time to a node's connection, failed attempts included.
    pub(super) connect: Option<Duration>,
    /// From the head sent to the node's first response byte.
    pub(super) first_byte: Option<Duration>,
    /// The response status as logged: unknown until the node's response head is read (set it
    /// here once forwarding parses it); the router's own replies set theirs in [`finish`].
    pub(super) status: Status,
}

impl<'a> Trace<'a> {
    /// The request `head` from `peer`, just read.
    pub(super) fn new(peer: Peer, head: &'a Head, tag: Option<RequestTag>) -> Self {
        Self {
            peer,
            head,
            tag,
            started: Instant::now(),
            attempts: 0,
            connect: None,
            first_byte: None,
            status: Status::UNKNOWN,
        }
    }

    fn id(&self) -> Option<&RequestId> {
        self.tag.as_ref().map(|t| &t.id)
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
    client: &mut Counted<S>,
    d: &Dispatch,
    trace: &Trace<'_>,
    end: End<'_>,
    outcome: Outcome,
    reason: &str,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut status = trace.status;
    if let Some(reply_status) = outcome.reply() {
        answer(client, reply(reply_status, reason, trace.id())).await;
        status = Status::code(reply_status.code());
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
    let id = trace.id().map_or("", RequestId::as_str);
    log_end(trace.peer, pool_name, node_id, id, outcome, reason, took);
    d.access_log.record(|| Entry {
        time: SystemTime::now(),
        request: RequestLine::from_vars(&trace.head.vars()),
        status,
        bytes_in: client.bytes_in(),
        bytes_out: client.bytes_out(),
        duration: took,
        connect: trace.connect,
        first_byte: trace.first_byte,
        pool,
        node,
        attempts: trace.attempts,
        outcome: outcome.name(),
        request_id: trace.id().cloned(),
    });
}

/// The session's one log line: debug for a success or a client gone, throttled warnings for the
/// rest (a client that stalled is the client's doing: info).
fn log_end(
    peer: Peer,
    pool: &str,
    node: &str,
    request_id: &str,
    outcome: Outcome,
    reason: &str,
    took: Duration,
) {
    match outcome {
        Outcome::Responded(status) => {
            tracing::debug!(%peer, pool, node, request_id, status, took = ?took, "request done")
        }
        Outcome::ClientAbort => {
            tracing::debug!(%peer, pool, node, request_id, reason, "client went away")
        }
        _ => match throttle::admit(outcome.event()) {
            Some(similar) if outcome == Outcome::ClientTimeout => {
                tracing::info!(%peer, pool, node, request_id, reason, similar_since_last = similar, "client stalled; connection cut")
            }
            Some(similar) => {
                tracing::warn!(%peer, pool, node, request_id, outcome = outcome.label(), reason, similar_since_last = similar, "request failed")
            }
            None => {
                tracing::debug!(%peer, pool, node, request_id, outcome = outcome.label(), reason, "request failed")
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
