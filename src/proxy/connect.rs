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
use crate::cluster::Pool;
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
    /// Attempts made, this one included.
    pub(super) attempts: u32,
    /// From the first pick to this connection, failed attempts included.
    pub(super) took: Duration,
}

/// How the connect phase of a session ended without a connection.
#[derive(Debug)]
pub(super) enum NoConnection {
    /// The pool had no usable node to try at all.
    NoNode,
    /// Every attempt failed: the last error, the node it was on, and how many were made.
    Failed(ConnectError, Arc<Node>, u32),
}

/// Picks nodes and connects, retrying on other nodes up to the pool's `connect_attempts`.
/// Failures feed passive health checks; only a connect failure is retried, since no byte of the
/// request has reached any node yet.
pub(super) async fn connect_any(
    pool: &Pool,
    hash_key: Option<&[u8]>,
    timeout: Duration,
) -> Result<Connected, NoConnection> {
    let first = Instant::now();
    let snap = pool.snapshot_arc();
    let mut tried: Vec<usize> = Vec::new();
    let mut last = None;
    for attempt in 0..snap.settings.connect_attempts {
        let Some(i) = snap.pick(hash_key, &tried) else {
            break;
        };
        let request = snap.nodes[i].start_request();
        if attempt > 0 {
            pool.metrics.retry();
        }
        let started = Instant::now();
        match connect(request.node().addr(), timeout).await {
            Ok(stream) => {
                pool.metrics.connected(started.elapsed());
                return Ok(Connected {
                    request,
                    stream,
                    attempts: attempt + 1,
                    took: first.elapsed(),
                });
            }
            Err(e) => {
                let node = request.node().clone();
                tracing::debug!(pool = %snap.pool, node = %node.id(), error = %e, attempt, "connect failed");
                pool.attempt_failed(request);
                tried.push(i);
                last = Some((e, node, attempt + 1));
            }
        }
    }
    Err(match last {
        Some((e, node, attempts)) => NoConnection::Failed(e, node, attempts),
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
