//! One uwsgi exchange as nginx does it: connect, send the packet and the body, read the response
//! until the other side closes (uwsgi has no keep-alive: the close ends the response).

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::target::Target;
use crate::CHUNK;

/// What `HTTP/1.1 200` responses start with.
const OK_PREFIX: &[u8] = b"HTTP/1.1 200";

/// How much of the response's start is kept: the status line for error reports, and the whole of
/// a small response, so a check can read which node answered.
const HEAD_KEPT: usize = 160;

/// Bytes streamed as request bodies.
static BODY_CHUNK: [u8; CHUNK] = [b'b'; CHUNK];

/// The response as seen by the client.
#[derive(Debug, Clone)]
pub struct Response {
    /// Every byte received, head included.
    pub bytes: u64,
    head: [u8; HEAD_KEPT],
    head_len: usize,
}

impl Response {
    /// True when the status line is `HTTP/1.1 200`.
    pub fn is_ok(&self) -> bool {
        self.head().starts_with(OK_PREFIX)
    }

    /// The first bytes of the response.
    pub fn head(&self) -> &[u8] {
        &self.head[..self.head_len]
    }

    /// The body of a small response (after the blank line), as text.
    pub fn small_body(&self) -> String {
        let head = self.head();
        let start = head
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(head.len(), |i| i + 4);
        String::from_utf8_lossy(&head[start..]).into_owned()
    }

    /// The status line (or what came instead), for error messages.
    pub fn status_line(&self) -> String {
        let head = String::from_utf8_lossy(self.head());
        head.lines().next().unwrap_or("").to_owned()
    }
}

/// Why an exchange failed; split by phase because a refused connect and a reset mean different things.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The connection could not be opened.
    #[error("connect to {target}: {source}")]
    Connect {
        /// Where to.
        target: String,
        /// The OS error.
        source: io::Error,
    },
    /// Sending the request or reading the response failed.
    #[error("i/o with {target}: {source}")]
    Io {
        /// Where to.
        target: String,
        /// The OS error.
        source: io::Error,
    },
}

/// Sends `packet` followed by `body_bytes` filler bytes, then reads the whole response into `buf`
/// (reused across calls, contents discarded).
pub async fn exchange(
    target: &Target,
    packet: &[u8],
    body_bytes: u64,
    buf: &mut [u8],
) -> Result<Response, ExchangeError> {
    let mut stream = target
        .connect()
        .await
        .map_err(|source| ExchangeError::Connect {
            target: target.to_string(),
            source,
        })?;
    let io_err = |source| ExchangeError::Io {
        target: target.to_string(),
        source,
    };
    stream.write_all(packet).await.map_err(io_err)?;
    send_body(&mut stream, body_bytes).await.map_err(io_err)?;
    read_response(&mut stream, buf).await.map_err(io_err)
}

async fn send_body<W: AsyncWriteExt + Unpin>(w: &mut W, mut left: u64) -> io::Result<()> {
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        w.write_all(&BODY_CHUNK[..n]).await?;
        left -= n as u64;
    }
    Ok(())
}

async fn read_response<R: AsyncReadExt + Unpin>(r: &mut R, buf: &mut [u8]) -> io::Result<Response> {
    let mut resp = Response {
        bytes: 0,
        head: [0; HEAD_KEPT],
        head_len: 0,
    };
    loop {
        let n = r.read(buf).await?;
        if n == 0 {
            return Ok(resp);
        }
        let keep = n.min(HEAD_KEPT - resp.head_len);
        resp.head[resp.head_len..resp.head_len + keep].copy_from_slice(&buf[..keep]);
        resp.head_len += keep;
        resp.bytes += n as u64;
    }
}
