//! One HTTP/1.1 client connection, kept alive across requests (hyper's server): each request's
//! head becomes a uwsgi packet and is served by the session core in a task of its own, while
//! hyper writes the response the relay hands it.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Arc;

use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{oneshot, OwnedSemaphorePermit};
use tokio_util::sync::CancellationToken;

use super::client::{HttpClient, RequestBody, Upgrade};
use super::relay::{plain, Relay, ResponseBody};
use super::vars::{self, ConnInfo, VarsError};
use crate::metrics;
use crate::protocol::MAX_VARS_SIZE;
use crate::proxy::counted::Counted;
use crate::proxy::head::Head;
use crate::proxy::session::{self, Peer};
use crate::proxy::SharedDispatch;

/// What every request of one connection shares.
#[derive(Debug)]
struct Connection {
    conn: ConnInfo,
    peer: Peer,
    dispatch: SharedDispatch,
    /// Requests served on it so far.
    served: AtomicU32,
}

/// Serves HTTP/1.1 on `io` until the client closes, the connection idles out, it has served
/// `http.max_requests_per_connection` requests, or `shutdown` (then the request in progress is
/// finished and the connection closed).
pub(crate) async fn serve_connection<I>(
    io: I,
    conn: ConnInfo,
    peer: Peer,
    dispatch: SharedDispatch,
    shutdown: CancellationToken,
    _permit: OwnedSemaphorePermit,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let _open = session::OpenConnection::new(crate::proxy::Front::Http.name());
    let cfg = dispatch.load().config.http.clone();
    let shared = Arc::new(Connection {
        conn,
        peer,
        dispatch,
        served: AtomicU32::new(0),
    });
    let service = service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(handle(req, &shared).await) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        // hyper starts this timer when it waits for a request's head: between keep-alive
        // requests too, so it is the idle timeout as well.
        .header_read_timeout(cfg.idle_timeout)
        .keep_alive(true)
        .max_buf_size(cfg.max_header_size)
        .max_headers(cfg.max_headers);
    let connection = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(connection);
    let result = tokio::select! {
        r = connection.as_mut() => r,
        () = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
    }
}

/// One request: its response, of the node or of routerd.
async fn handle(req: Request<Incoming>, c: &Connection) -> Response<ResponseBody> {
    let d = c.dispatch.load_full();
    let served = c.served.fetch_add(1, Relaxed) + 1;
    metrics::http_request();
    let mut response = respond(req, c, d).await;
    if served >= c.dispatch.load().config.http.max_requests_per_connection {
        response
            .headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

async fn respond(
    mut req: Request<Incoming>,
    c: &Connection,
    d: Arc<crate::proxy::Dispatch>,
) -> Response<ResponseBody> {
    let http = &d.config.http;
    let upgrade = if wants_upgrade(req.headers()) {
        Upgrade::Waiting(hyper::upgrade::on(&mut req))
    } else {
        Upgrade::None
    };
    let (parts, incoming) = req.into_parts();
    let head_request = parts.method == Method::HEAD;
    let announced = parts.headers.contains_key(http::header::CONTENT_LENGTH);

    let (body, length) = if announced || incoming.is_end_stream() {
        let length = announced.then(|| incoming.size_hint().exact()).flatten();
        (
            RequestBody::Streaming(incoming, bytes::Bytes::new()),
            length,
        )
    } else {
        // Chunked: uWSGI needs CONTENT_LENGTH, so the body is read whole first.
        match buffer_chunked(incoming, http.max_body_buffer, http.idle_timeout).await {
            Ok(all) => {
                let n = all.len() as u64;
                (RequestBody::Buffered(all), Some(n))
            }
            Err(Chunked::TooLarge) => {
                metrics::malformed("http_body_too_large");
                let mut r = plain(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "a chunked request body over http.max_body_buffer; send a Content-Length",
                );
                r.headers_mut()
                    .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
                return r;
            }
            Err(Chunked::Stalled) => {
                return plain(
                    StatusCode::REQUEST_TIMEOUT,
                    "the chunked request body stopped arriving (http.idle_timeout)",
                );
            }
            Err(Chunked::Bad(e)) => {
                tracing::debug!(peer = %c.peer, error = %e, "reading a chunked request body failed");
                return plain(
                    StatusCode::BAD_REQUEST,
                    "the chunked request body is malformed",
                );
            }
        }
    };
    let packet = match vars::packet(
        &parts,
        &c.conn,
        length,
        !matches!(upgrade, Upgrade::None),
        &http.trusted_proxies,
        d.max_vars_size,
    ) {
        Ok(p) => p.freeze(),
        Err(e @ VarsError::BadPath) => {
            metrics::malformed("http_bad_path");
            return plain(StatusCode::BAD_REQUEST, &e.to_string());
        }
        Err(e @ VarsError::TooLarge) => {
            metrics::malformed("http_head_too_large");
            return plain(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, &e.to_string());
        }
    };
    let head = match Head::from_packet(packet, MAX_VARS_SIZE) {
        Ok(h) => h,
        Err(e) => return plain(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let (tx, rx) = oneshot::channel();
    let client = HttpClient::new(body, Relay::new(tx, head_request), upgrade);
    let peer = c.peer;
    // A task of its own: the session goes on relaying the body after hyper has the head.
    tokio::spawn(async move {
        let mut client = Counted::new(client);
        session::serve(&mut client, &head, peer, &d).await;
        let _ = client.shutdown().await;
    });
    match rx.await {
        Ok(response) => response,
        // The session ended without an answer: the client went away meanwhile.
        Err(_) => plain(StatusCode::BAD_GATEWAY, "no response"),
    }
}

/// True when the request asks to switch protocols (`Connection: upgrade` and an `Upgrade`).
fn wants_upgrade(headers: &http::HeaderMap) -> bool {
    headers.contains_key(http::header::UPGRADE)
        && headers
            .get_all(http::header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// Why a chunked body was not buffered.
enum Chunked {
    /// Over the limit.
    TooLarge,
    /// Broken framing, or the client went away.
    Bad(hyper::Error),
    /// The client stopped sending for `http.idle_timeout`.
    Stalled,
}

/// Most of an over-limit body read and thrown away before the 413, so that a client (nginx)
/// still sending sees the answer rather than a reset; past it the connection is closed.
const DISCARD_LIMIT: usize = 64 << 20;

/// Reads a chunked body whole, up to `limit` bytes. Over it, reads on (throwing the rest away,
/// up to [`DISCARD_LIMIT`] more, each read within `idle`) so that the 413 reaches a client that
/// is still sending, as nginx's lingering close does.
async fn buffer_chunked(
    mut body: Incoming,
    limit: usize,
    idle: std::time::Duration,
) -> Result<bytes::Bytes, Chunked> {
    let mut all = bytes::BytesMut::new();
    let mut over = false;
    let mut discarded = 0usize;
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Ok(Some(Ok(f))) => f,
            // Over the limit: however the reading ends, the answer is 413.
            _ if over => return Err(Chunked::TooLarge),
            Ok(Some(Err(e))) => return Err(Chunked::Bad(e)),
            Ok(None) => return Ok(all.freeze()),
            Err(_) => return Err(Chunked::Stalled),
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if over {
            discarded += data.len();
            if discarded > DISCARD_LIMIT {
                return Err(Chunked::TooLarge);
            }
        } else if all.len() + data.len() > limit {
            over = true;
            all = bytes::BytesMut::new();
        } else {
            all.extend_from_slice(&data);
        }
    }
}
