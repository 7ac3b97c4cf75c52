//! One HTTP request as the session core sees a client: it reads the request body (hyper's,
//! streamed, or one buffered to learn its length) and writes the response to a [`Relay`].
//! After the body it reads as a keep-alive client that waits for its response: nothing, and no
//! end either, until the response is complete (the session shut its write side). An end right
//! after the body would look like a client that half-closed, which the session passes on to the
//! node: a `shutdown` system call and a FIN per request that no uWSGI node needs.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use std::future::Future;

use bytes::{Buf, Bytes};
use http_body::Body;
use hyper::body::Incoming;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::relay::Relay;

/// The request body.
#[derive(Debug)]
pub(crate) enum RequestBody {
    /// Read from the connection as the node takes it (hyper answers `Expect: 100-continue`
    /// when it is first read).
    Streaming(Incoming, Bytes),
    /// Read whole already (a chunked body, to give the node its length).
    Buffered(Bytes),
}

/// The client connection after a protocol switch (WebSocket through uWSGI).
#[derive(Debug)]
pub(crate) enum Upgrade {
    /// The request asked for none.
    None,
    /// Asked for: hyper hands the connection over once it has sent the node's 101, or says no.
    Waiting(OnUpgrade),
    /// Switched.
    Open(TokioIo<Upgraded>),
    /// Not switched (the node answered otherwise).
    Refused,
}

/// A request's virtual client connection.
#[derive(Debug)]
pub(crate) struct HttpClient {
    body: RequestBody,
    relay: Relay,
    upgrade: Upgrade,
    /// The response is written whole (the session shut down its side): reads end now.
    answered: bool,
    /// A read waiting, after the body, for the response to be complete.
    reader: Option<Waker>,
}

impl HttpClient {
    pub(crate) fn new(body: RequestBody, relay: Relay, upgrade: Upgrade) -> Self {
        Self {
            body,
            relay,
            upgrade,
            answered: false,
            reader: None,
        }
    }

    /// The upgraded connection, once hyper has it; `None` if there is none to be.
    fn poll_upgraded(&mut self, cx: &mut Context<'_>) -> Poll<Option<&mut TokioIo<Upgraded>>> {
        if let Upgrade::Waiting(on) = &mut self.upgrade {
            self.upgrade = match Pin::new(on).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(io)) => Upgrade::Open(TokioIo::new(io)),
                Poll::Ready(Err(_)) => Upgrade::Refused,
            };
        }
        match &mut self.upgrade {
            Upgrade::Open(io) => Poll::Ready(Some(io)),
            _ => Poll::Ready(None),
        }
    }
}

impl AsyncRead for HttpClient {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            let held = match &mut this.body {
                RequestBody::Buffered(b) | RequestBody::Streaming(_, b) => b,
            };
            if !held.is_empty() {
                let n = held.len().min(buf.remaining());
                buf.put_slice(&held[..n]);
                held.advance(n);
                return Poll::Ready(Ok(()));
            }
            let RequestBody::Streaming(incoming, held) = &mut this.body else {
                return this.poll_read_upgraded(cx, buf);
            };
            if incoming.is_end_stream() {
                return this.poll_read_upgraded(cx, buf);
            }
            match Pin::new(incoming).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        *held = data;
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::ConnectionAborted, e)))
                }
                Poll::Ready(None) => return this.poll_read_upgraded(cx, buf),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl HttpClient {
    /// After the request body: the upgraded connection's bytes, or the end once the response is
    /// complete.
    fn poll_read_upgraded(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if matches!(self.upgrade, Upgrade::None) {
            if self.answered {
                return Poll::Ready(Ok(()));
            }
            if !self
                .reader
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()))
            {
                self.reader = Some(cx.waker().clone());
            }
            return Poll::Pending;
        }
        match std::task::ready!(self.poll_upgraded(cx)) {
            Some(io) => Pin::new(io).poll_read(cx, buf),
            None => Poll::Ready(Ok(())),
        }
    }
}

impl AsyncWrite for HttpClient {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if !this.relay.switched() {
            return Pin::new(&mut this.relay).poll_write(cx, buf);
        }
        let Some(io) = std::task::ready!(this.poll_upgraded(cx)) else {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the client connection was not handed over after the 101",
            )));
        };
        Pin::new(io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match &mut this.upgrade {
            Upgrade::Open(io) => Pin::new(io).poll_flush(cx),
            _ => Pin::new(&mut this.relay).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match &mut this.upgrade {
            Upgrade::Open(io) => Pin::new(io).poll_shutdown(cx),
            _ => {
                std::task::ready!(Pin::new(&mut this.relay).poll_shutdown(cx))?;
                // As a real client would once it has its response: a read waiting for more
                // (the two-way copy's) now sees the end.
                this.answered = true;
                if let Some(reader) = this.reader.take() {
                    reader.wake();
                }
                Poll::Ready(Ok(()))
            }
        }
    }
}
