//! The response side of an HTTP request: the session core writes the node's response (or its own
//! reply) here as the raw bytes a uwsgi node sends, an HTTP/1.x response ended by a close. The
//! relay reads its head, hands hyper a response with those headers, and passes the body on in
//! the framing the client's connection needs: a `Content-Length` body as it is, a chunked one
//! de-chunked (hyper chunks it again), one ended by the close re-framed as chunked, so that the
//! client's connection survives every one of them.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::PollSender;

use super::chunked::Dechunk;
use super::vars::is_hop_by_hop;

/// The body type of every response the HTTP front end gives.
pub(crate) type ResponseBody = BoxBody<Bytes, io::Error>;

/// Largest response head accepted from a node.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// Most header lines in a node's response head.
const MAX_RESPONSE_HEADERS: usize = 128;

/// A response of routerd's own, with a short text body.
pub(crate) fn plain(status: StatusCode, text: &str) -> Response<ResponseBody> {
    let mut r = Response::new(
        Full::new(Bytes::from(format!("{text}\n")))
            .map_err(|never| match never {})
            .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// How the body after the head is passed on.
#[derive(Debug)]
enum Framing {
    /// This many bytes are left; then the body is complete.
    Length(u64),
    /// Chunked: decoded, re-chunked by hyper.
    Chunked(Dechunk),
    /// Until the node closes.
    Close,
    /// No body (HEAD, 204, 304): whatever follows is dropped.
    Empty,
    /// 101 Switching Protocols: what follows is the new protocol's, for the upgraded connection
    /// (the relay takes no byte past the 101's head).
    Switched,
}

/// The response half of an HTTP request's virtual client connection.
#[derive(Debug)]
pub(crate) struct Relay {
    /// The head read so far, until it is complete.
    head: BytesMut,
    /// Where the response goes once its head is in; `None` after.
    respond: Option<oneshot::Sender<Response<ResponseBody>>>,
    /// The body's channel to hyper; `None` once the body has ended.
    body: Option<PollSender<io::Result<Bytes>>>,
    /// Body bytes accepted from the session but not yet taken by the channel.
    pending: Option<Bytes>,
    framing: Framing,
    /// The request was HEAD: the response has no body whatever its headers say.
    head_request: bool,
}

impl Relay {
    /// A relay answering through `respond`.
    pub(crate) fn new(
        respond: oneshot::Sender<Response<ResponseBody>>,
        head_request: bool,
    ) -> Self {
        Self {
            head: BytesMut::new(),
            respond: Some(respond),
            body: None,
            pending: None,
            framing: Framing::Empty,
            head_request,
        }
    }

    /// Sends what was accepted and is still held.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(data) = self.pending.take() else {
            return Poll::Ready(Ok(()));
        };
        let Some(tx) = self.body.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        match tx.poll_reserve(cx) {
            Poll::Pending => {
                self.pending = Some(data);
                Poll::Pending
            }
            Poll::Ready(Ok(())) => {
                tx.send_item(Ok(data)).map_err(|_| gone())?;
                if matches!(self.framing, Framing::Length(0)) || self.dechunked_all() {
                    // Complete: hyper may finish the response and read the next request
                    // without waiting for the node to close.
                    self.body = None;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(_)) => Poll::Ready(Err(gone())),
        }
    }

    fn dechunked_all(&self) -> bool {
        matches!(&self.framing, Framing::Chunked(d) if d.is_done())
    }

    /// Takes `buf` in: the head until it is complete, then body bytes. Returns how much of it
    /// was taken: all of it, but for a 101, whose relay ends with its head.
    fn accept(&mut self, buf: &[u8]) -> io::Result<usize> {
        let before = self.head.len();
        let mut skipped = 0;
        self.head.extend_from_slice(buf);
        loop {
            let mut headers = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
            let mut parsed = httparse::Response::new(&mut headers);
            let len = match parsed.parse(&self.head) {
                Ok(httparse::Status::Complete(len)) => len,
                Ok(httparse::Status::Partial) if self.head.len() <= MAX_RESPONSE_HEAD => {
                    return Ok(buf.len())
                }
                Ok(httparse::Status::Partial) => return Err(bad("response head over 64 KiB")),
                Err(e) => return Err(bad(&format!("malformed response head: {e}"))),
            };
            let code = parsed.code.unwrap_or(502);
            // An interim answer (103 Early Hints, a stray 100) is not the response.
            if (100..200).contains(&code) && code != 101 {
                self.head.advance(len);
                skipped += len;
                continue;
            }
            let status = StatusCode::from_u16(code).map_err(|_| bad("bad status"))?;
            let (headers, framing) = self.framing_of(status, parsed.headers)?;
            let rest = self.head.split_off(len);
            self.head = BytesMut::new();
            if matches!(framing, Framing::Switched) {
                self.start(status, headers, framing, BytesMut::new())?;
                return Ok(skipped + len - before);
            }
            self.start(status, headers, framing, rest)?;
            return Ok(buf.len());
        }
    }

    /// The headers to pass on and the body's framing.
    fn framing_of(
        &self,
        status: StatusCode,
        raw: &[httparse::Header<'_>],
    ) -> io::Result<(HeaderMap, Framing)> {
        let mut headers = HeaderMap::with_capacity(raw.len());
        let mut length: Option<u64> = None;
        let mut chunked = false;
        for h in raw {
            let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| bad("header name"))?;
            let value = HeaderValue::from_bytes(h.value).map_err(|_| bad("header value"))?;
            if name == CONTENT_LENGTH {
                let n = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .ok_or_else(|| bad("bad Content-Length"))?;
                if length.is_some_and(|l| l != n) {
                    return Err(bad("conflicting Content-Length headers"));
                }
                length = Some(n);
            } else if name == TRANSFER_ENCODING {
                chunked = h.value.eq_ignore_ascii_case(b"chunked");
                continue;
            } else if is_hop_by_hop(&name)
                && !(status == StatusCode::SWITCHING_PROTOCOLS
                    && (name == http::header::UPGRADE || name == http::header::CONNECTION))
            {
                continue;
            }
            headers.append(name, value);
        }
        let no_body = self.head_request
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED;
        let framing = if status == StatusCode::SWITCHING_PROTOCOLS {
            Framing::Switched
        } else if no_body {
            Framing::Empty
        } else if chunked {
            headers.remove(CONTENT_LENGTH);
            Framing::Chunked(Dechunk::default())
        } else if let Some(n) = length {
            Framing::Length(n)
        } else {
            Framing::Close
        };
        Ok((headers, framing))
    }

    /// Hands hyper the response and passes on the body bytes that came with the head.
    fn start(
        &mut self,
        status: StatusCode,
        headers: HeaderMap,
        mut framing: Framing,
        mut rest: BytesMut,
    ) -> io::Result<()> {
        let hint = match &framing {
            Framing::Length(n) => SizeHint::with_exact(*n),
            Framing::Empty => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        };
        let body: ResponseBody = match framing {
            Framing::Empty | Framing::Length(0) | Framing::Switched => http_body_util::Empty::new()
                .map_err(|never| match never {})
                .boxed(),
            // The whole body came with the head (the usual small response): handed over at
            // once, without a channel to feed or a copy; what follows it is dropped.
            Framing::Length(n) if rest.len() as u64 >= n => {
                framing = Framing::Length(0);
                let whole = rest.split_to(n as usize).freeze();
                Full::new(whole).map_err(|never| match never {}).boxed()
            }
            _ => {
                let (tx, rx) = mpsc::channel(4);
                self.body = Some(PollSender::new(tx));
                ChannelBody { rx, hint }.boxed()
            }
        };
        self.framing = framing;
        let mut response = Response::new(body);
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        let respond = self.respond.take().expect("the head is answered once");
        respond.send(response).map_err(|_| gone())?;
        self.body_bytes(&rest);
        Ok(())
    }

    /// True once the node switched protocols: the session's bytes are for the upgraded
    /// connection from now on.
    pub(crate) fn switched(&self) -> bool {
        matches!(self.framing, Framing::Switched)
    }

    /// Decodes body bytes into `pending`, as the framing says.
    fn body_bytes(&mut self, buf: &[u8]) {
        if buf.is_empty() || self.body.is_none() {
            return;
        }
        let data = match &mut self.framing {
            Framing::Length(left) => {
                let take = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                *left -= take as u64;
                Bytes::copy_from_slice(&buf[..take])
            }
            Framing::Close => Bytes::copy_from_slice(buf),
            Framing::Chunked(d) => match d.feed(buf) {
                Ok(data) => data,
                Err(e) => {
                    self.fail(bad(&e));
                    return;
                }
            },
            Framing::Empty | Framing::Switched => return,
        };
        if data.is_empty() {
            if self.dechunked_all() {
                self.body = None;
            }
            return;
        }
        let joined = match self.pending.take() {
            Some(p) => {
                let mut b = BytesMut::from(&p[..]);
                b.extend_from_slice(&data);
                b.freeze()
            }
            None => data,
        };
        self.pending = Some(joined);
    }

    /// Ends the body with an error: hyper breaks the client's connection off rather than let a
    /// truncated body pass for a whole one.
    fn fail(&mut self, e: io::Error) {
        if let Some(mut tx) = self.body.take() {
            if let Some(tx) = tx.get_ref() {
                let _ = tx.try_send(Err(e));
            }
            tx.close();
        }
    }

    /// The session is done writing: a body cut short is an error, a head that never completed
    /// gets a 502 of routerd's own.
    fn end(&mut self) {
        if let Some(respond) = self.respond.take() {
            let _ = respond.send(plain(
                StatusCode::BAD_GATEWAY,
                "the node's response ended before its head was complete",
            ));
            return;
        }
        match self.framing {
            Framing::Length(left) if left > 0 => {
                self.fail(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the node closed with {left} body bytes unsent"),
                ));
            }
            Framing::Chunked(ref d) if !d.is_done() => {
                self.fail(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the node closed in the middle of a chunked body",
                ));
            }
            _ => self.body = None,
        }
    }
}

impl tokio::io::AsyncWrite for Relay {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        let taken = if this.respond.is_some() {
            match this.accept(buf) {
                Ok(n) => n,
                Err(e) => {
                    if let Some(respond) = this.respond.take() {
                        let _ = respond.send(plain(StatusCode::BAD_GATEWAY, &e.to_string()));
                    }
                    return Poll::Ready(Err(e));
                }
            }
        } else {
            // Body bytes, or bytes after a complete body (dropped).
            this.body_bytes(buf);
            buf.len()
        };
        // Passed on now if the channel has room: a node that keeps its connection open after a
        // response with a length must not hold the response's end back until its next write.
        // Without room they stay held (and this task is woken when there is).
        if let Poll::Ready(Err(e)) = this.poll_pending(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(taken))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_pending(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        this.end();
        Poll::Ready(Ok(()))
    }
}

/// A response body fed by the relay.
#[derive(Debug)]
struct ChannelBody {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    hint: SizeHint,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.rx
            .poll_recv(cx)
            .map(|item| item.map(|r| r.map(Frame::data)))
    }

    fn size_hint(&self) -> SizeHint {
        self.hint
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the HTTP client went away")
}
