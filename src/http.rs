//! A small HTTP/1.1 server for operations endpoints: `GET /metrics` (Prometheus text format),
//! `GET /healthz` (200 while the process runs) and `GET /readyz` (200 while it wants traffic, 503
//! once it is shutting down). One request per connection, answered with `Connection: close`; the
//! request head is bounded in size and time, the answer in time. At most `max_connections` are
//! open at once; when full, the oldest connection still sending its head is closed for the new
//! one ([`crate::conn_limit`]), so idle connections cannot keep probes out. routerd serves it from
//! [`crate::daemon`]; any other binary (router-agent) serves its own metrics by passing its own
//! render function to [`serve`].

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::config::DEFAULT_METRICS_MAX_CONNECTIONS;
use crate::conn_limit::{Limiter, Ticket};

/// Largest request head read; bigger ones get 431.
pub const MAX_HEAD: usize = 8 * 1024;
/// Time a client has to send its request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Time to write the answer to a client that stopped reading.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// The content type of the Prometheus text format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders the `/metrics` body.
pub type RenderMetrics = Arc<dyn Fn() -> String + Send + Sync>;

/// Whether the process wants new traffic: `/readyz` answers 200 while set, 503 once cleared.
#[derive(Debug, Clone)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// A readiness flag, initially `ready`.
    pub fn new(ready: bool) -> Self {
        Self(Arc::new(AtomicBool::new(ready)))
    }

    /// Sets the flag.
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Relaxed);
    }

    /// True while ready.
    pub fn is_ready(&self) -> bool {
        self.0.load(Relaxed)
    }
}

/// What the endpoints answer with.
#[derive(Clone)]
pub struct Endpoints {
    /// The `/metrics` body.
    pub metrics: RenderMetrics,
    /// The `/readyz` answer.
    pub ready: Readiness,
}

impl std::fmt::Debug for Endpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoints")
            .field("ready", &self.ready)
            .finish_non_exhaustive()
    }
}

/// Binds the listener (`127.0.0.1:0` picks a free port).
pub async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves `endpoints` on `listener` until `shutdown`, with the default connection limit.
pub async fn serve(listener: TcpListener, endpoints: Endpoints, shutdown: CancellationToken) {
    serve_limited(
        listener,
        endpoints,
        Limiter::new("metrics.max_connections", DEFAULT_METRICS_MAX_CONNECTIONS),
        shutdown,
    )
    .await;
}

/// Serves `endpoints` on `listener` until `shutdown`, within `limiter`.
pub async fn serve_limited(
    listener: TcpListener,
    endpoints: Endpoints,
    limiter: Limiter,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            () = limiter.make_room() => {}
            () = shutdown.cancelled() => return,
        }
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = shutdown.cancelled() => return,
        };
        match accepted {
            Ok((stream, _)) => {
                let ticket = limiter.admit(None);
                let endpoints = endpoints.clone();
                tokio::spawn(async move {
                    let _ = handle(stream, &endpoints, &ticket).await;
                });
            }
            Err(e) => {
                // EMFILE and the like: wait a little instead of spinning or giving up.
                tracing::warn!(error = %e, "cannot accept on the metrics listener");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Reads one request head and answers it. Closed without an answer if evicted meanwhile.
async fn handle(mut stream: TcpStream, endpoints: &Endpoints, ticket: &Ticket) -> io::Result<()> {
    let head = tokio::select! {
        h = tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream)) => h,
        () = ticket.evicted().cancelled() => return Ok(()),
    };
    ticket.prove();
    let reply = match head {
        Err(_) => Reply::text(408, "request head not received in time\n"),
        Ok(Err(e)) if e.kind() == io::ErrorKind::InvalidData => {
            Reply::text(431, "request head too large\n")
        }
        Ok(Err(e)) => return Err(e),
        Ok(Ok(head)) => route(&head, endpoints),
    };
    let write = async {
        stream.write_all(&reply.encode()).await?;
        stream.shutdown().await
    };
    tokio::time::timeout(WRITE_TIMEOUT, write)
        .await
        .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
}

/// Reads up to the blank line ending the head: `InvalidData` past [`MAX_HEAD`].
async fn read_head(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&chunk[..n]);
        if let Some(end) = find_end(&head) {
            head.truncate(end);
            return Ok(head);
        }
        if head.len() > MAX_HEAD {
            return Err(io::ErrorKind::InvalidData.into());
        }
    }
}

fn find_end(head: &[u8]) -> Option<usize> {
    let crlf = head.windows(4).position(|w| w == b"\r\n\r\n");
    crlf.or_else(|| head.windows(2).position(|w| w == b"\n\n"))
}

/// Picks the answer for a request head.
fn route(head: &[u8], endpoints: &Endpoints) -> Reply {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Reply::text(400, "bad request line\n");
    };
    if !version.starts_with("HTTP/1.") {
        return Reply::text(400, "HTTP/1.x only\n");
    }
    if method != "GET" {
        return Reply::text(405, "GET only\n").header("Allow", "GET");
    }
    match target.split('?').next().unwrap_or_default() {
        "/metrics" => Reply {
            status: 200,
            content_type: METRICS_CONTENT_TYPE,
            body: (endpoints.metrics)().into_bytes(),
            extra: None,
        },
        "/healthz" => Reply::text(200, "ok\n"),
        "/readyz" if endpoints.ready.is_ready() => Reply::text(200, "ready\n"),
        "/readyz" => Reply::text(503, "shutting down\n"),
        _ => Reply::text(404, "not found: try /metrics, /healthz or /readyz\n"),
    }
}

/// A response, always closing the connection.
struct Reply {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    extra: Option<(&'static str, &'static str)>,
}

impl Reply {
    fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.as_bytes().to_vec(),
            extra: None,
        }
    }

    fn header(mut self, name: &'static str, value: &'static str) -> Self {
        self.extra = Some((name, value));
        self
    }

    fn encode(&self) -> Vec<u8> {
        let reason = match self.status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            408 => "Request Timeout",
            431 => "Request Header Fields Too Large",
            _ => "Service Unavailable",
        };
        let extra = self
            .extra
            .map(|(k, v)| format!("{k}: {v}\r\n"))
            .unwrap_or_default();
        let mut out = format!(
            "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
            self.status,
            self.content_type,
            self.body.len()
        )
        .into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(ready: bool) -> Endpoints {
        Endpoints {
            metrics: Arc::new(|| "m 1\n".to_owned()),
            ready: Readiness::new(ready),
        }
    }

    fn status(head: &str, e: &Endpoints) -> u16 {
        route(head.as_bytes(), e).status
    }

    #[test]
    fn routes_by_method_and_path() {
        let e = endpoints(true);
        assert_eq!(status("GET /metrics HTTP/1.1\r\nHost: x", &e), 200);
        assert_eq!(status("GET /metrics?x=1 HTTP/1.0", &e), 200);
        assert_eq!(status("GET /healthz HTTP/1.1", &e), 200);
        assert_eq!(status("GET /readyz HTTP/1.1", &e), 200);
        assert_eq!(status("GET /readyz HTTP/1.1", &endpoints(false)), 503);
        assert_eq!(status("GET /healthz HTTP/1.1", &endpoints(false)), 200);
        assert_eq!(status("POST /metrics HTTP/1.1", &e), 405);
        assert_eq!(status("GET /nope HTTP/1.1", &e), 404);
        assert_eq!(status("GET /metrics", &e), 400);
        assert_eq!(status("GET /metrics SPDY/3", &e), 400);
    }

    #[test]
    fn replies_close_the_connection() {
        let r =
            String::from_utf8(route(b"GET /metrics HTTP/1.1", &endpoints(true)).encode()).unwrap();
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(r.contains(&format!("Content-Type: {METRICS_CONTENT_TYPE}\r\n")));
        assert!(
            r.contains("Content-Length: 4\r\nConnection: close\r\n\r\nm 1\n"),
            "{r}"
        );
    }
}
