//! The control listener's accept side: every connection takes a slot of `control.max_connections`
//! before it is accepted, and must pass the credentials of a call within
//! `control.handshake_timeout` (TLS, the HTTP/2 preface and the first call's headers all count
//! against it); until then it may be closed to make room for a newer one. See
//! [`crate::conn_limit`].

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Sleep;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::WaitForCancellationFutureOwned;
use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::conn_limit::{Limiter, Ticket};

/// A connection of the control listener: its slot, and the deadline for its first call.
pub(super) struct Guarded {
    inner: TcpStream,
    ticket: Ticket,
    deadline: Pin<Box<Sleep>>,
    evicted: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl std::fmt::Debug for Guarded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guarded")
            .field("inner", &self.inner)
            .field("ticket", &self.ticket)
            .finish_non_exhaustive()
    }
}

impl Guarded {
    fn new(inner: TcpStream, ticket: Ticket, handshake_timeout: Duration) -> Self {
        let evicted = Box::pin(ticket.evicted().clone().cancelled_owned());
        Self {
            inner,
            ticket,
            deadline: Box::pin(tokio::time::sleep(handshake_timeout)),
            evicted,
        }
    }

    /// An error once the connection is to be closed: evicted, or unproven past its deadline.
    /// Registers the waker with both, so an idle connection is closed without sending anything.
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if self.evicted.as_mut().poll(cx).is_ready() {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "closed to make room: control.max_connections reached",
            ));
        }
        if !self.ticket.is_proven() && self.deadline.as_mut().poll(cx).is_ready() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no authenticated call within control.handshake_timeout",
            ));
        }
        Ok(())
    }
}

use std::future::Future;

impl AsyncRead for Guarded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.ticket.is_proven() {
            self.check(cx)?;
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if !self.ticket.is_proven() {
            self.check(cx)?;
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if !self.ticket.is_proven() {
            self.check(cx)?;
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl Connected for Guarded {
    // The TCP stream's own: tonic's `remote_addr()` and `peer_certs()` keep working.
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

/// Accepts on `listener` within `limiter`, yielding guarded connections to the tonic server. The
/// accept task ends when the server drops the stream (on shutdown).
pub(super) fn incoming(
    listener: TcpListener,
    limiter: Limiter,
    handshake_timeout: Duration,
) -> ReceiverStream<io::Result<Guarded>> {
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = limiter.make_room() => {}
                () = tx.closed() => return,
            }
            let accepted = tokio::select! {
                a = listener.accept() => a,
                () = tx.closed() => return,
            };
            match accepted {
                Ok((stream, remote)) => {
                    let peer = stream.local_addr().ok().map(|local| (local, remote));
                    let ticket = limiter.admit(peer);
                    if tx
                        .send(Ok(Guarded::new(stream, ticket, handshake_timeout)))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Err(e) => {
                    // EMFILE and the like: wait a little instead of spinning.
                    tracing::warn!(error = %e, "cannot accept on the control listener");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    ReceiverStream::new(rx)
}
