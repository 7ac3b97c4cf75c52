//! Forwarding one exchange. Phase 1 sends the head and streams the request body while waiting for
//! the node's first response byte (the only time the router may still answer itself: 502, 504).
//! Phase 2 relays the response; should the client still send, `duplex` streams both ways until
//! both sides close, half-closes passed on, under an idle timeout.
//! Every read and write, on both sides, is under a timer: a client that stops reading the
//! response, or stops sending its body, is cut after `timeouts.idle` like a silent node.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::{sleep_until, timeout, Instant};

use super::connect::NodeStream;
use super::duplex::stream_rest;
use super::failure::{ForwardError, BUF_SIZE};
use crate::clock;
use crate::config::NodeTimeouts;
use crate::protocol::{response_status, StatusLine, STATUS_PREFIX};

/// How an exchange that delivered a response went.
#[derive(Debug, Clone, Copy)]
pub(super) struct Exchange {
    /// From the head being sent to the first response byte.
    pub(super) first_byte: Duration,
    /// The response's status code, if it began with an HTTP status line.
    pub(super) status: Option<u16>,
}

/// Forwards `head` (sent unchanged), then the rest of the exchange; `body_left` is how many body
/// bytes the client still owes after the head (CONTENT_LENGTH less those that came with it).
/// The response is held until its status is known (the first 12 bytes, nearly always in the
/// first read); with `resend_gateway_errors`, a 502, 503 or 504 answer is not relayed at all but
/// returned as [`ForwardError::GatewayAnswer`], for the request to be sent elsewhere.
pub(super) async fn forward<C>(
    client: &mut C,
    node: &mut NodeStream,
    head: &Bytes,
    body_left: u64,
    t: &NodeTimeouts,
    resend_gateway_errors: bool,
) -> Result<Exchange, ForwardError>
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let sent = Instant::now();
    match timeout(t.first_byte, node.write_all(head)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return Err(ForwardError::NoResponse(format!(
                "sending the request failed: {e}"
            )))
        }
        Err(_) => return Err(ForwardError::Timeout(t.first_byte)),
    }
    let (mut buf, mut body, client_done) = await_response(client, node, body_left, t).await?;
    let first_byte = sent.elapsed();
    let status = read_status(node, &mut buf, t.first_byte).await?;
    if resend_gateway_errors && matches!(status, Some(502..=504)) {
        let status = status.unwrap_or_default();
        return Err(ForwardError::GatewayAnswer { status, first_byte });
    }
    write_client(client, &buf, t.idle).await?;
    buf.clear();
    match relay_response(client, node, buf, &mut body, client_done, t.idle).await? {
        Relayed::Complete { client_done } => close_client(client, client_done).await,
        Relayed::ClientSending => {
            // The client still streams its body while the response flows: both ways at once.
            match timeout(t.idle, node.write_all(&body)).await {
                Ok(r) => r.map_err(ForwardError::NodeError)?,
                Err(_) => return Err(ForwardError::IdleTimeout(t.idle)),
            }
            stream_rest(client, node, t.idle).await?;
        }
    }
    Ok(Exchange { first_byte, status })
}

/// Reads until the status code at the head of `buf` is known (or known not to be there), within
/// `limit`. A node that closes inside its status line is relayed as it is, without a status.
async fn read_status(
    node: &mut NodeStream,
    buf: &mut BytesMut,
    limit: Duration,
) -> Result<Option<u16>, ForwardError> {
    let deadline = clock::deadline(limit);
    loop {
        match response_status(buf) {
            StatusLine::Code(code) => return Ok(Some(code)),
            StatusLine::NotHttp => return Ok(None),
            StatusLine::NeedMore => {}
        }
        debug_assert!(buf.len() < STATUS_PREFIX);
        match tokio::time::timeout_at(deadline, node.read_buf(buf)).await {
            Ok(Ok(0)) => return Ok(None),
            Ok(Ok(_)) => {}
            // Nothing reached the client yet: as a node that closed without answering.
            Ok(Err(e)) => return Err(ForwardError::NoResponse(e.to_string())),
            Err(_) => return Err(ForwardError::Timeout(limit)),
        }
    }
}

/// Writes response bytes to the client, which must take them within `idle`.
async fn write_client<C>(client: &mut C, buf: &[u8], idle: Duration) -> Result<(), ForwardError>
where
    C: AsyncWrite + Unpin,
{
    match timeout(idle, client.write_all(buf)).await {
        Ok(r) => r.map_err(ForwardError::ClientAbort),
        Err(_) => Err(ForwardError::ClientStalled(idle)),
    }
}

/// Phase 1: pumps the request body to the node until its first response bytes arrive. While the
/// client still owes body bytes the timer is the client's (`idle`, restarted whenever body bytes
/// move, so a slow upload is not a slow node); once the body is in, it is the node's
/// (`first_byte`).
async fn await_response<C>(
    client: &mut C,
    node: &mut NodeStream,
    mut body_left: u64,
    t: &NodeTimeouts,
) -> Result<(BytesMut, BytesMut, bool), ForwardError>
where
    C: AsyncRead + Unpin,
{
    let mut response = BytesMut::with_capacity(BUF_SIZE);
    let mut body = BytesMut::with_capacity(BUF_SIZE);
    let mut client_done = false;
    let limit = t.first_byte;
    let timer = |body_left: u64, client_done: bool| {
        if body_left > 0 && !client_done {
            t.idle
        } else {
            limit
        }
    };
    let mut deadline = clock::deadline(timer(body_left, client_done));
    loop {
        tokio::select! {
            biased;
            r = node.read_buf(&mut response) => return match r {
                Ok(0) => Err(ForwardError::NoResponse("node closed the connection".into())),
                Ok(_) => Ok((response, body, client_done)),
                Err(e) => Err(ForwardError::NoResponse(e.to_string())),
            },
            r = client.read_buf(&mut body), if !client_done => match r {
                Ok(0) => {
                    client_done = true;
                    let _ = node.shutdown().await;
                }
                Ok(n) => {
                    match timeout(limit, node.write_all(&body)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => return Err(ForwardError::NoResponse(format!("sending the body failed: {e}"))),
                        Err(_) => return Err(ForwardError::Timeout(limit)),
                    }
                    body.clear();
                    body_left = body_left.saturating_sub(n as u64);
                    deadline = clock::deadline(timer(body_left, client_done));
                }
                Err(e) => return Err(ForwardError::ClientAbort(e)),
            },
            () = sleep_until(deadline) => return Err(if body_left > 0 && !client_done {
                ForwardError::ClientStalled(t.idle)
            } else {
                ForwardError::Timeout(limit)
            }),
        }
    }
}

/// How the fast relay of phase 2 ended.
enum Relayed {
    /// The node closed: the response is complete.
    Complete {
        /// The client had closed its sending side.
        client_done: bool,
    },
    /// The client sent more bytes (now in the body buffer): switch to the two-way copy.
    ClientSending,
}

/// Phase 2, the common case: the request is sent, so relay the response until the node closes,
/// reusing phase 1's buffer. Should the client still send (a body streamed past the response's
/// start), hand over to [`stream_rest`], which moves both ways at once.
async fn relay_response<C>(
    client: &mut C,
    node: &mut NodeStream,
    mut buf: BytesMut,
    body: &mut BytesMut,
    mut client_done: bool,
    idle: Duration,
) -> Result<Relayed, ForwardError>
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let stall = tokio::time::sleep(idle);
    tokio::pin!(stall);
    loop {
        tokio::select! {
            biased;
            r = node.read_buf(&mut buf) => match r {
                Ok(0) => return Ok(Relayed::Complete { client_done }),
                Ok(_) => {
                    write_client(client, &buf, idle).await?;
                    buf.clear();
                    stall.as_mut().reset(clock::deadline(idle));
                }
                Err(e) => return Err(ForwardError::NodeError(e)),
            },
            r = client.read_buf(body), if !client_done => match r {
                Ok(0) => {
                    client_done = true;
                    let _ = node.shutdown().await;
                }
                Ok(_) => return Ok(Relayed::ClientSending),
                Err(e) => return Err(ForwardError::ClientAbort(e)),
            },
            () = &mut stall => return Err(ForwardError::IdleTimeout(idle)),
        }
    }
}

/// The response is complete: end the client's connection. Usually the client has nothing more
/// to say, and dropping the socket sends the FIN that ends the response. If it still has unread
/// bytes, closing would send a reset that can destroy the response before the client reads it,
/// so half-close first and drain what it sends for a short while.
async fn close_client<C>(client: &mut C, client_done: bool)
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    if client_done || !has_unread(client) {
        return;
    }
    let _ = timeout(LINGER, client.shutdown()).await;
    linger(client).await;
}

/// True if the client has bytes (or an error) waiting to be read, checked without waiting.
fn has_unread<C: AsyncRead + Unpin>(client: &mut C) -> bool {
    let mut probe = [0u8; 1];
    let mut buf = ReadBuf::new(&mut probe);
    let mut cx = Context::from_waker(std::task::Waker::noop());
    match Pin::new(client).poll_read(&mut cx, &mut buf) {
        Poll::Pending => false,
        Poll::Ready(Ok(())) => !buf.filled().is_empty(),
        Poll::Ready(Err(_)) => true,
    }
}

/// After the router has answered, how long it keeps reading (and discarding) what the client
/// still sends, so that closing does not reset the connection under the answer.
pub(super) const LINGER: Duration = Duration::from_secs(2);
/// ... and how much it reads at most.
const LINGER_BYTES: u64 = 64 * 1024 * 1024;

/// Reads and discards what the client sends, until it closes or the linger limits are reached.
pub(super) async fn linger<C: AsyncRead + Unpin>(client: &mut C) {
    let mut sink = tokio::io::sink();
    let _ = timeout(
        LINGER,
        tokio::io::copy(&mut (&mut *client).take(LINGER_BYTES), &mut sink),
    )
    .await;
}
