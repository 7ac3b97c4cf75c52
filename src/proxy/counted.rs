//! A client connection that counts the bytes it moves, for the access log: everything read from
//! the client (head, body, what is drained after a reply) and written to it (the response or the
//! router's reply). Owned by its session, so plain counters: no atomics.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// `S`, counting bytes each way.
#[derive(Debug)]
pub(super) struct Counted<S> {
    io: S,
    read: u64,
    written: u64,
}

impl<S> Counted<S> {
    /// Counts from zero.
    pub(super) fn new(io: S) -> Self {
        Self {
            io,
            read: 0,
            written: 0,
        }
    }

    /// The connection itself.
    pub(super) fn get_ref(&self) -> &S {
        &self.io
    }

    /// Bytes read from the client so far.
    pub(super) fn bytes_in(&self) -> u64 {
        self.read
    }

    /// Bytes written to the client so far.
    pub(super) fn bytes_out(&self) -> u64 {
        self.written
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.io).poll_read(cx, buf);
        this.read += (buf.filled().len() - before) as u64;
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            this.written += n as u64;
        }
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = r {
            this.written += n as u64;
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn counts_both_ways() {
        let mock = tokio_test::io::Builder::new()
            .read(b"hello")
            .write(b"response")
            .read(b"!")
            .build();
        let mut c = Counted::new(mock);
        let mut buf = [0u8; 16];
        assert_eq!(c.read(&mut buf).await.unwrap(), 5);
        c.write_all(b"response").await.unwrap();
        assert_eq!(c.read(&mut buf).await.unwrap(), 1);
        assert_eq!((c.bytes_in(), c.bytes_out()), (6, 8));
    }
}
