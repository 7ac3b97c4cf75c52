//! One HTTP request as the session core sees a client: it reads the request body (hyper's,
//! streamed, or one buffered to learn its length) and writes the response to a [`Relay`].

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http_body::Body;
use hyper::body::Incoming;
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

/// A request's virtual client connection.
#[derive(Debug)]
pub(crate) struct HttpClient {
    body: RequestBody,
    relay: Relay,
}

impl HttpClient {
    pub(crate) fn new(body: RequestBody, relay: Relay) -> Self {
        Self { body, relay }
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
                return Poll::Ready(Ok(()));
            };
            match Pin::new(incoming).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        *held = data;
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::ConnectionAborted, e)))
                }
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl AsyncWrite for HttpClient {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().relay).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().relay).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().relay).poll_shutdown(cx)
    }
}
