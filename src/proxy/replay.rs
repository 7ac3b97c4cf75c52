//! Keeping a request so it can be sent again: which requests may be (an idempotent method, or any
//! with `retry.non_idempotent`, and a body no larger than `retry.buffer`), and reading such a
//! body whole before the first attempt, as nginx does with `uwsgi_request_buffering`.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::timeout;

use super::failure::ForwardError;
use super::head::{Head, RequestTag};
use crate::config::{RetryConfig, RetryOn};

/// Methods a request must not be resent with unless the pool says so (nginx's list).
const NON_IDEMPOTENT: [&[u8]; 3] = [b"POST", b"PATCH", b"LOCK"];

/// True when a request that reached a node may be sent to another one.
pub(super) fn replayable(head: &Head, retry: &RetryConfig) -> bool {
    let resends = retry.on(RetryOn::ResetBeforeResponse) || retry.on(RetryOn::GatewayError);
    let method_ok = match head.vars().get(b"REQUEST_METHOD") {
        Some(m) => retry.non_idempotent || !NON_IDEMPOTENT.contains(&m),
        // No method: nothing says resending it is safe.
        None => false,
    };
    resends && method_ok && head.body_left() <= retry.buffer as u64
}

/// Reads the `left` body bytes the client still owes, each read within `idle`.
pub(super) async fn read_body<C>(
    client: &mut C,
    left: u64,
    idle: std::time::Duration,
) -> Result<Bytes, ForwardError>
where
    C: AsyncRead + Unpin,
{
    let mut body = BytesMut::with_capacity(usize::try_from(left).unwrap_or(0));
    while (body.len() as u64) < left {
        let want = left - body.len() as u64;
        let mut part = (&mut *client).take(want);
        match timeout(idle, part.read_buf(&mut body)).await {
            Ok(Ok(0)) => {
                let e = std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("the client closed with {want} body bytes unsent"),
                );
                return Err(ForwardError::ClientAbort(e));
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(ForwardError::ClientAbort(e)),
            Err(_) => return Err(ForwardError::ClientStalled(idle)),
        }
    }
    Ok(body.freeze())
}

/// The request as a node with `modifiers` gets it: the head (with the request id var `tag` asks
/// for, and body bytes read with it), then the `rest` of the body read before the first attempt.
pub(super) fn request_bytes(
    head: &Head,
    modifiers: Option<(u8, u8)>,
    tag: Option<&RequestTag>,
    rest: &Bytes,
) -> Bytes {
    let first = head.bytes_for(modifiers, tag);
    if rest.is_empty() {
        return first;
    }
    let mut all = BytesMut::with_capacity(first.len() + rest.len());
    all.extend_from_slice(&first);
    all.extend_from_slice(rest);
    all.freeze()
}
