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
use crate::cluster::{Pool, PoolSnapshot};
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
    /// Every attempt failed: the last error, and the node it was on.
    Failed(ConnectError, Arc<Node>),
}

/// The nodes a request has been sent to (indices into its pool snapshot) and how many more
/// attempts it may make, connect retries and resends together.
#[derive(Debug)]
pub(super) struct Attempts {
    pub(super) tried: Vec<usize>,
    left: u32,
}

impl Attempts {
    /// Attempts made so far.
    pub(super) fn made(&self) -> u32 {
        self.tried.len() as u32
    }
}

impl Attempts {
    pub(super) fn new(max: u32) -> Self {
        Self {
            tried: Vec::new(),
            left: max.max(1),
        }
    }

    /// True while another attempt is allowed.
    pub(super) fn any_left(&self) -> bool {
        self.left > 0
    }
}

/// Picks nodes of `snap` and connects, trying other nodes on connect failure while `attempts`
/// allow and the pool retries connect failures. Failures feed passive health checks.
pub(super) async fn connect_any(
    pool: &Pool,
    snap: &PoolSnapshot,
    hash_key: Option<&[u8]>,
    timeout: Duration,
    attempts: &mut Attempts,
) -> Result<Connected, NoConnection> {
    let first = Instant::now();
    let mut last = None;
    while attempts.any_left() {
        let Some(i) = snap.pick(hash_key, &attempts.tried) else {
            break;
        };
        attempts.left -= 1;
        let request = snap.nodes[i].start_request();
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
