//! Connecting to a node: one attempt under the connect timeout, and the retry loop that tries other
//! nodes of the pool while no byte of the request has been sent anywhere.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio::time::Instant;

use crate::addr::NodeAddr;
use crate::cluster::{NoPick, Place, Pool, PoolSnapshot, QueueRefusal};
use crate::config::RetryOn;
use crate::node::{InFlight, Node};

/// A connection to a node.
#[derive(Debug)]
pub(super) enum NodeStream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// Why connecting to a node failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum ConnectError {
    #[error("connect timed out after {0:?}")]
    Timeout(Duration),
    #[error("connect failed: {0}")]
    Io(#[from] io::Error),
}

/// One connect attempt.
pub(super) async fn connect(
    addr: &NodeAddr,
    timeout: Duration,
) -> Result<NodeStream, ConnectError> {
    let attempt = async {
        Ok::<_, io::Error>(match addr {
            NodeAddr::Ip(a) => NodeStream::Tcp(TcpStream::connect(a).await?),
            NodeAddr::Dns(host, port) => {
                NodeStream::Tcp(TcpStream::connect((host.as_str(), *port)).await?)
            }
            NodeAddr::Unix(p) => NodeStream::Unix(UnixStream::connect(p).await?),
        })
    };
    let stream = tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| ConnectError::Timeout(timeout))??;
    if let NodeStream::Tcp(s) = &stream {
        let _ = s.set_nodelay(true);
    }
    Ok(stream)
}

/// A node's connection, for a request it now has in flight.
#[derive(Debug)]
pub(super) struct Connected {
    /// The request, in flight on the node.
    pub(super) request: InFlight,
    /// The connection.
    pub(super) stream: NodeStream,
    /// From the pick to this connection, failed connects of this round included.
    pub(super) took: Duration,
}

/// How the connect phase of a session ended without a connection.
#[derive(Debug)]
pub(super) enum NoConnection {
    /// The pool had no usable node to try at all.
    NoNode,
    /// Every usable node was busy, and the queue refused to wait longer (or at all).
    Queue(QueueRefusal, Duration),
    /// Every attempt failed: the last error, and the node it was on.
    Failed(ConnectError, Arc<Node>),
}

/// The nodes a request has been sent to (indices into its pool snapshot) and how many more
/// attempts it may make, connect retries and resends together.
#[derive(Debug)]
pub(super) struct Attempts {
    pub(super) tried: Vec<usize>,
    left: u32,
    /// Its place in the pool's queue, once it had to wait: kept across attempts, so that the
    /// request waits `queue.timeout` in all and is not put behind newer ones again.
    place: Option<Place>,
}

impl Attempts {
    pub(super) fn new(max: u32) -> Self {
        Self {
            tried: Vec::new(),
            left: max.max(1),
            place: None,
        }
    }

    /// Attempts made so far.
    pub(super) fn made(&self) -> u32 {
        self.tried.len() as u32
    }

    /// True while another attempt is allowed.
    pub(super) fn any_left(&self) -> bool {
        self.left > 0
    }
}

/// Picks nodes of `snap` and connects, trying other nodes on connect failure while `attempts`
/// allow and the pool retries connect failures. Failures feed passive health checks.
pub(super) async fn connect_any(
    pool: &Arc<Pool>,
    snap: &PoolSnapshot,
    hash_key: Option<&[u8]>,
    attempts: &mut Attempts,
) -> Result<Connected, NoConnection> {
    let first = Instant::now();
    let timeout = snap.settings.timeouts.connect;
    let mut last = None;
    while attempts.any_left() {
        let (i, request) = match take_node(pool, snap, hash_key, attempts).await {
            Ok(taken) => taken,
            Err(None) => break,
            Err(Some(refused)) => return Err(refused),
        };
        attempts.left -= 1;
        attempts.tried.push(i);
        let started = Instant::now();
        match connect(request.node().addr(), timeout).await {
            Ok(stream) => {
                pool.metrics.connected(started.elapsed());
                return Ok(Connected {
                    request,
                    stream,
                    took: first.elapsed(),
                });
            }
            Err(e) => {
                let node = request.node().clone();
                tracing::debug!(pool = %snap.pool, node = %node.id(), error = %e, "connect failed");
                pool.attempt_failed(request);
                last = Some((e, node));
                if !snap.settings.retry.on(RetryOn::ConnectFailure) {
                    break;
                }
                if attempts.any_left() {
                    pool.metrics.retry(RetryOn::ConnectFailure);
                }
            }
        }
    }
    Err(match last {
        Some((e, node)) => NoConnection::Failed(e, node),
        None => NoConnection::NoNode,
    })
}

/// A node of `snap` not yet tried, with the request counted in flight on it; while every usable
/// node is at `max_connections`, waits in the pool's queue (behind the requests already waiting)
/// for a request on one to end. Returns the node's index and the request; `Err(None)`: no node
/// to try.
async fn take_node(
    pool: &Arc<Pool>,
    snap: &PoolSnapshot,
    hash_key: Option<&[u8]>,
    attempts: &mut Attempts,
) -> Result<(usize, InFlight), Option<NoConnection>> {
    let settings = &snap.settings;
    let limit = settings.max_connections;
    if limit == 0 {
        let i = snap.pick(hash_key, &attempts.tried).map_err(|_| None)?;
        return Ok((i, snap.nodes[i].start_request()));
    }
    let freed = pool.queue.freed();
    loop {
        // Listening before looking: a place freed between the look and the wait still wakes.
        let wake = freed.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        // A newcomer queues behind requests already waiting; a waiter looks when woken.
        if attempts.place.is_some() || !pool.queue.is_waiting() {
            match snap.pick(hash_key, &attempts.tried) {
                Ok(i) => match snap.nodes[i].try_start_request(limit, freed) {
                    Some(request) => {
                        attempts.place = None;
                        return Ok((i, request));
                    }
                    // Another request took its last place since the pick: look again.
                    None => continue,
                },
                Err(NoPick::NoNode) => return Err(None),
                Err(NoPick::AllBusy) => {}
            }
        }
        let place = match &attempts.place {
            Some(place) => place,
            None => {
                let place = pool
                    .enter_queue(&settings.queue)
                    .map_err(|why| Some(NoConnection::Queue(why, Duration::ZERO)))?;
                attempts.place.insert(place)
            }
        };
        if tokio::time::timeout_at(place.deadline, wake).await.is_err() {
            let waited = place.since.elapsed();
            pool.metrics.queue_refused(QueueRefusal::Timeout.label());
            attempts.place = None;
            return Err(Some(NoConnection::Queue(QueueRefusal::Timeout, waited)));
        }
    }
}

impl AsyncRead for NodeStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Self::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for NodeStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Self::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_flush(cx),
            Self::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Self::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
