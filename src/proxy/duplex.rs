//! Phase 2 of an exchange, when the client still sends while the node responds: both directions
//! at once under one idle timer, which tells a client that stopped reading from a silent node.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{sleep_until, Instant};

use super::connect::NodeStream;
use super::failure::{ForwardError, BUF_SIZE};
use crate::clock;

/// Phase 2: both directions at once, so a node streaming its response while still reading the
/// body never deadlocks against us.
pub(super) async fn stream_rest<C>(
    client: &mut C,
    node: &mut NodeStream,
    idle: Duration,
) -> Result<(), ForwardError>
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let act = Activity::default();
    let result = {
        let mut c = Tracked {
            io: client,
            act: &act,
            side: Side::Client,
        };
        let mut n = Tracked {
            io: node,
            act: &act,
            side: Side::Node,
        };
        tokio::select! {
            r = tokio::io::copy_bidirectional_with_sizes(&mut c, &mut n, BUF_SIZE, BUF_SIZE) => r.map(drop),
            () = act.stalled(idle) => return Err(if act.client_blocked.load(Relaxed) {
                ForwardError::ClientStalled(idle)
            } else {
                ForwardError::IdleTimeout(idle)
            }),
        }
    };
    match result {
        Ok(()) => Ok(()),
        // The node finished its response; an error after that (say, the client kept sending a
        // body the node no longer reads) does not spoil the exchange.
        Err(_) if act.node_eof.load(Relaxed) => Ok(()),
        Err(e) if act.client_failed.load(Relaxed) => Err(ForwardError::ClientAbort(e)),
        Err(e) => Err(ForwardError::NodeError(e)),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Node,
}

/// What the two directions of phase 2 observed, for the idle timer and the outcome.
#[derive(Debug)]
struct Activity {
    last_ms: AtomicU64,
    node_eof: AtomicBool,
    client_failed: AtomicBool,
    /// A write to the client is waiting for it to read.
    client_blocked: AtomicBool,
}

impl Default for Activity {
    fn default() -> Self {
        Self {
            last_ms: AtomicU64::new(clock::now_ms()),
            node_eof: AtomicBool::new(false),
            client_failed: AtomicBool::new(false),
            client_blocked: AtomicBool::new(false),
        }
    }
}

impl Activity {
    fn touch(&self) {
        self.last_ms.store(clock::now_ms(), Relaxed);
    }

    /// Resolves once nothing has moved for `idle`. Sleeps until the earliest possible stall and
    /// re-arms only when activity moved it, so a busy transfer costs no timer churn.
    async fn stalled(&self, idle: Duration) {
        loop {
            let last = self.last_ms.load(Relaxed);
            let deadline = clock::later(clock::epoch() + Duration::from_millis(last), idle);
            if Instant::now() >= deadline {
                return;
            }
            sleep_until(deadline).await;
        }
    }
}

/// A stream that reports its reads and writes to an [`Activity`].
struct Tracked<'a, S> {
    io: &'a mut S,
    act: &'a Activity,
    side: Side,
}

impl<S> Tracked<'_, S> {
    fn note<T>(&self, r: &io::Result<T>, moved: bool, eof: bool) {
        match r {
            Ok(_) if moved => self.act.touch(),
            Ok(_) if eof && self.side == Side::Node => self.act.node_eof.store(true, Relaxed),
            Ok(_) => {}
            Err(_) if self.side == Side::Client => self.act.client_failed.store(true, Relaxed),
            Err(_) => {}
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<'_, S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = std::task::ready!(Pin::new(&mut *this.io).poll_read(cx, buf));
        let got = buf.filled().len() - before;
        this.note(&r, got > 0, got == 0);
        Poll::Ready(r)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<'_, S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut *this.io).poll_write(cx, buf);
        if this.side == Side::Client {
            this.act.client_blocked.store(poll.is_pending(), Relaxed);
        }
        let r = std::task::ready!(poll);
        this.note(&r, matches!(r, Ok(n) if n > 0), false);
        Poll::Ready(r)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = std::task::ready!(Pin::new(&mut *this.io).poll_shutdown(cx));
        // Shutting down a socket the peer already closed is not a failure of the exchange.
        Poll::Ready(r.or_else(|e| {
            if e.kind() == io::ErrorKind::NotConnected {
                Ok(())
            } else {
                Err(e)
            }
        }))
    }
}
