//! One client connection carrying one request: read the head, route, connect, forward, record.
//! Every session ends in exactly one log line and one `requests_total` increment.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use super::connect::{connect, connect_any, Attempts, Connected, NoConnection};
use super::counted::Counted;
use super::end::{finish, End, Trace};
use super::failure::{Blame, ForwardError};
use super::forward::forward;
use super::head::{read_head, Head, HeadError, RequestTag};
use super::replay;
use super::{Dispatch, SharedDispatch};
use crate::access_log::Status;
use crate::cluster::{Pool, QueueRefusal};
use crate::config::RetryOn;
use crate::metrics;
use crate::node::{Evidence, Node, Outcome};
use crate::routing::RequestKey;
use crate::throttle;

/// A client connection: TCP or UNIX.
pub(super) trait ClientStream: AsyncRead + AsyncWrite + Unpin + Send {
    /// Resolves once the client has sent something (or closed).
    fn readable(&self) -> impl std::future::Future<Output = std::io::Result<()>> + Send;
}

impl ClientStream for tokio::net::TcpStream {
    fn readable(&self) -> impl std::future::Future<Output = std::io::Result<()>> + Send {
        tokio::net::TcpStream::readable(self)
    }
}

impl ClientStream for tokio::net::UnixStream {
    fn readable(&self) -> impl std::future::Future<Output = std::io::Result<()>> + Send {
        tokio::net::UnixStream::readable(self)
    }
}

/// Who is on the other end of a client connection.
#[derive(Debug, Clone, Copy)]
pub(super) enum Peer {
    Tcp(SocketAddr),
    Unix,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(a) => write!(f, "{a}"),
            Self::Unix => f.write_str("unix"),
        }
    }
}

/// Serves one client connection.
pub(super) async fn run<S>(
    client: S,
    peer: Peer,
    dispatch: SharedDispatch,
    shutdown: CancellationToken,
    _permit: OwnedSemaphorePermit,
) where
    S: ClientStream,
{
    let _open = OpenConnection::new(super::Front::Uwsgi.name());
    let d = dispatch.load_full();
    let mut client = Counted::new(client);
    // Wait for the first byte before allocating the head buffer: idle clients cost no buffer.
    let read = async {
        client.get_ref().readable().await?;
        read_head(&mut client, d.max_vars_size).await
    };
    let head = tokio::select! {
        r = timeout(d.timeouts.header, read) => r,
        // No request yet: nothing in flight to protect, close at once.
        () = shutdown.cancelled() => return,
    };
    let head = match head {
        Ok(Ok(head)) => head,
        Ok(Err(HeadError::Malformed(e))) => {
            metrics::malformed(e.kind());
            match throttle::admit(e.kind()) {
                Some(similar) => {
                    tracing::warn!(%peer, error = %e, similar_since_last = similar, "malformed request packet; connection closed")
                }
                None => {
                    tracing::debug!(%peer, error = %e, "malformed request packet; connection closed")
                }
            }
            return;
        }
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "no request");
            return;
        }
        Err(_) => {
            metrics::malformed("header_timeout");
            match throttle::admit("header_timeout") {
                Some(similar) => {
                    tracing::info!(%peer, timeout = ?d.timeouts.header, similar_since_last = similar, "client sent no complete request in time; connection closed")
                }
                None => {
                    tracing::debug!(%peer, timeout = ?d.timeouts.header, "client sent no complete request in time; connection closed")
                }
            }
            return;
        }
    };
    // Boxed: the forwarding state is allocated once a request has arrived, so the many clients
    // that hold a connection open without sending cost only the small waiting state.
    Box::pin(serve(&mut client, &head, peer, &d)).await;
}

/// Serves one request whose `head` has been read from `client` (the uwsgi listener's, or the
/// HTTP front end's translation): routes it, sends it to a node, relays the answer and records
/// how it ended. The one session core both front ends share.
pub(super) async fn serve<S>(client: &mut Counted<S>, head: &Head, peer: Peer, d: &Dispatch)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let vars = head.vars();
    let tag = d.config.request_id.enabled.then(|| RequestTag::of(&vars));
    let mut trace = Trace::new(peer, head, tag);
    let key = RequestKey::from_vars(&vars);
    let Some(pool) = d.routes.route(&key).cloned() else {
        let host = String::from_utf8_lossy(key.routing_host()).into_owned();
        let reason = format!("no pool for host {host:?}");
        let end = End::Unrouted(&d.cluster);
        return finish(client, d, &trace, end, Outcome::NoPool, &reason).await;
    };
    let settings = pool.settings();
    let hash_key = settings.hash_var.as_deref().and_then(|v| vars.get(v));
    proxy(client, &pool, hash_key, d, &mut trace).await;
}

/// Connects to a node of `pool` and forwards the request, resending it to another node where that
/// is safe (see `replay`), then finishes the session.
async fn proxy<S>(
    client: &mut Counted<S>,
    pool: &Arc<Pool>,
    hash_key: Option<&[u8]>,
    d: &Dispatch,
    trace: &mut Trace<'_>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let head = trace.head;
    let snap = pool.snapshot_arc();
    let retry = &snap.settings.retry;
    let replayable = replay::replayable(head, retry);
    // A request that may be resent is read whole first; any other streams its body.
    let (rest, body_left) = if replayable {
        match replay::read_body(client, head.body_left(), snap.settings.timeouts.idle).await {
            Ok(rest) => (rest, 0),
            Err(e) => {
                let outcome = match e {
                    ForwardError::ClientStalled(_) => Outcome::ClientTimeout,
                    _ => Outcome::ClientAbort,
                };
                let reason = format!("reading the request body: {e}");
                let end = End::Unreached(pool, None);
                return finish(client, d, trace, end, outcome, &reason).await;
            }
        }
    } else {
        (bytes::Bytes::new(), head.body_left())
    };
    let mut attempts = Attempts::new(snap.settings.connect_attempts);
    // Held while a resend is in flight, against the pool's retry budget.
    let mut _permit = None;
    loop {
        let connected = connect_any(pool, &snap, hash_key, &mut attempts).await;
        let Connected {
            request,
            mut stream,
            took,
        } = match connected {
            Ok(c) => c,
            Err(NoConnection::NoNode) => {
                let reason = format!("no usable node in pool {:?}", pool.name);
                let end = End::Unreached(pool, None);
                return finish(client, d, trace, end, Outcome::NoNode, &reason).await;
            }
            Err(NoConnection::Queue(why, waited)) => {
                let q = &snap.settings.queue;
                let reason = match why {
                    QueueRefusal::Full => format!(
                        "every usable node of pool {:?} is at max_connections ({}) and its queue is full ({} waiting)",
                        pool.name, snap.settings.max_connections, q.size
                    ),
                    QueueRefusal::Timeout => format!(
                        "every usable node of pool {:?} stayed at max_connections ({}) for the queue timeout ({waited:?})",
                        pool.name, snap.settings.max_connections
                    ),
                };
                let end = End::Unreached(pool, None);
                return finish(client, d, trace, end, Outcome::NoNode, &reason).await;
            }
            Err(NoConnection::Failed(e, last)) => {
                trace.attempts = attempts.made();
                let reason = format!(
                    "could not connect to any node of pool {:?} (last: {}: {e})",
                    pool.name,
                    last.addr()
                );
                let end = End::Unreached(pool, Some(&last));
                return finish(client, d, trace, end, Outcome::ConnectFailed, &reason).await;
            }
        };
        trace.attempts = attempts.made();
        trace.connect = Some(trace.connect.unwrap_or_default() + took);
        let node = request.node().clone();
        // Another node must be there to take a resend, or the answer is relayed as it is.
        let may_resend = replayable && attempts.any_left() && snap.pick_available(&attempts.tried);
        let hold = may_resend && retry.on(RetryOn::GatewayError);
        let bytes = replay::request_bytes(head, node.modifiers(), trace.tag.as_ref(), &rest);
        let timeouts = &snap.settings.timeouts;
        let result = forward(client, &mut stream, &bytes, body_left, timeouts, hold).await;
        drop(stream);
        let (outcome, evidence, reason) = match result {
            Ok(x) => {
                trace.first_byte = Some(x.first_byte);
                if let Some(code) = x.status {
                    trace.status = Status::code(code);
                }
                let answered = Evidence::Answered(x.first_byte, x.status);
                (Outcome::Responded(x.status), answered, String::new())
            }
            Err(e) => judge(e, pool, &node, timeouts.connect).await,
        };
        let why = match outcome {
            Outcome::NoResponse => Some(RetryOn::ResetBeforeResponse),
            Outcome::Responded(Some(502..=504)) if hold => Some(RetryOn::GatewayError),
            _ => None,
        };
        if let Some(why) = why.filter(|w| may_resend && retry.on(*w)) {
            // A node that dropped the request and now refuses connections is down (killed,
            // crashed): resending what it held adds no load that the pool would not have had,
            // and is bounded by what was in flight on it, so the retry budget, which guards a
            // sick pool against a storm, does not apply.
            let node_down = why == RetryOn::ResetBeforeResponse && evidence == Evidence::Failed;
            let permit = if node_down {
                Some(None)
            } else {
                pool.try_retry().map(Some)
            };
            if let Some(permit) = permit {
                tracing::debug!(pool = %pool.name, node = %node.id(), reason, why = why.label(), node_down, "sending the request to another node");
                pool.attempt_resent(request, evidence);
                pool.metrics.retry(why);
                if permit.is_some() {
                    _permit = permit;
                }
                continue;
            }
        }
        let end = End::Reached(pool, request, evidence);
        return finish(client, d, trace, end, outcome, &reason).await;
    }
}

/// What a failed exchange was, for the outcome, for the node's health, and for the log.
async fn judge(
    e: ForwardError,
    pool: &Pool,
    node: &Node,
    connect_timeout: Duration,
) -> (Outcome, Evidence, String) {
    let evidence = match e.blame() {
        Blame::Node => match e {
            ForwardError::Timeout(t) => Evidence::TimedOut(t),
            _ => Evidence::Failed,
        },
        Blame::Dropped => judge_drop(pool, node, connect_timeout).await,
        Blame::None => Evidence::Unrelated,
    };
    let outcome = match e {
        ForwardError::NoResponse(_) => Outcome::NoResponse,
        ForwardError::Timeout(_) => Outcome::Timeout,
        ForwardError::ClientAbort(_) => Outcome::ClientAbort,
        ForwardError::ClientStalled(_) => Outcome::ClientTimeout,
        ForwardError::NodeError(_) => Outcome::NodeError,
        ForwardError::IdleTimeout(_) => Outcome::IdleTimeout,
        ForwardError::GatewayAnswer { status, .. } => Outcome::Responded(Some(status)),
    };
    let evidence = match e {
        // Held back to be resent: an answer, whose status counts against the node.
        ForwardError::GatewayAnswer { status, first_byte } => {
            Evidence::Answered(first_byte, Some(status))
        }
        _ => evidence,
    };
    let reason = format!("node {} ({}): {e}", node.id(), node.addr());
    (outcome, evidence, reason)
}

/// The node dropped the connection of a request. A healthy uWSGI does that to a request it
/// refuses (over its `buffer-size`, say), a dying one to every request: a fresh connection tells
/// them apart. Refused, it is a failure of the node (a killed node is ejected at once, as by a
/// refused connect); accepted, the request was at fault, and a stream of such requests cannot
/// eject a healthy node.
async fn judge_drop(pool: &Pool, node: &Node, connect_timeout: Duration) -> Evidence {
    match connect(node.addr(), connect_timeout).await {
        Err(e) => {
            tracing::debug!(pool = %pool.name, node = %node.id(), error = %e, "node dropped a request and refuses new connections");
            Evidence::Failed
        }
        Ok(_) => {
            tracing::debug!(pool = %pool.name, node = %node.id(), "node dropped a request but accepts connections: the request's fault, not the node's");
            Evidence::RequestRefused
        }
    }
}

/// Counts open client connections.
pub(super) struct OpenConnection(&'static str);

impl OpenConnection {
    /// A connection of the listener kind named `listener`.
    pub(super) fn new(listener: &'static str) -> Self {
        metrics::client_connections(listener, 1.0);
        Self(listener)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        metrics::client_connections(self.0, -1.0);
    }
}
