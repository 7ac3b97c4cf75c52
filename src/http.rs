//! A small HTTP/1.1 server for operations endpoints, on hyper: `/metrics` (Prometheus text format,
//! with the `process_*` series), `/healthz` (200 while the process runs) and `/readyz` (200 while
//! it wants traffic), for `GET` and `HEAD`, kept alive across requests. The request head is bounded
//! in size and time (the same time bounds the idle wait between requests), each write of the
//! answer in time. At most `max_connections` are open at once; when full, the oldest connection
//! that has not yet sent a request is closed for the new one ([`crate::conn_limit`]), so idle
//! connections cannot keep probes out. routerd serves it from [`crate::daemon`]; any other binary
//! (router-agent) serves its own metrics by passing its own render function to [`serve`].

mod deadline;
mod routes;

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::config::DEFAULT_METRICS_MAX_CONNECTIONS;
use crate::conn_limit::{Limiter, Ticket};
use deadline::WriteDeadline;

/// Largest request head read (hyper's smallest buffer); bigger ones get 431.
pub const MAX_HEAD: usize = 8 * 1024;
/// Time a client has to send a request head, the first or the next on a kept-alive connection.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Time a write of the answer may wait for a client that stopped reading.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// The content type of the Prometheus text format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders the `/metrics` body.
pub type RenderMetrics = Arc<dyn Fn() -> String + Send + Sync>;

/// Says why the process should get no traffic yet (`None`: it may).
pub type ReadyCheck = Arc<dyn Fn() -> Option<String> + Send + Sync>;

/// Whether the process wants new traffic: `/readyz` answers 200 while it is serving and its
/// check (if any) passes, 503 with the reason otherwise.
#[derive(Clone)]
pub struct Readiness {
    serving: Arc<AtomicBool>,
    check: Option<ReadyCheck>,
}

impl Readiness {
    /// A readiness flag, initially `ready`, with no check.
    pub fn new(ready: bool) -> Self {
        Self {
            serving: Arc::new(AtomicBool::new(ready)),
            check: None,
        }
    }

    /// The same flag, ready only while `check` finds nothing missing as well.
    pub fn requiring(self, check: impl Fn() -> Option<String> + Send + Sync + 'static) -> Self {
        Self {
            check: Some(Arc::new(check)),
            ..self
        }
    }

    /// Sets the flag: cleared when shutdown begins.
    pub fn set(&self, ready: bool) {
        self.serving.store(ready, Relaxed);
    }

    /// Why `/readyz` fails now, or `None` when it passes.
    pub fn why_not(&self) -> Option<String> {
        if !self.serving.load(Relaxed) {
            return Some("shutting down".to_owned());
        }
        self.check.as_ref().and_then(|check| check())
    }
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness")
            .field("serving", &self.serving.load(Relaxed))
            .field("check", &self.check.is_some())
            .finish()
    }
}

/// What the endpoints answer with.
#[derive(Clone)]
pub struct Endpoints {
    /// The `/metrics` body (the `process_*` series are appended to it).
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
                tokio::spawn(handle(stream, endpoints.clone(), ticket, shutdown.clone()));
            }
            Err(e) => {
                // EMFILE and the like: wait a little instead of spinning or giving up.
                tracing::warn!(error = %e, "cannot accept on the metrics listener");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Serves one connection until the client closes it, it idles out, it is evicted before its
/// first request, or `shutdown` (the request in progress is answered first).
async fn handle(
    stream: TcpStream,
    endpoints: Endpoints,
    ticket: Ticket,
    shutdown: CancellationToken,
) {
    let evicted = ticket.evicted().clone();
    let ticket = Arc::new(ticket);
    let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
        // A request head arrived: a real client, never evicted.
        ticket.prove();
        let path = req.uri().path().to_owned();
        let reply = routes::respond(req.method(), &path, &endpoints);
        std::future::ready(Ok::<_, Infallible>(reply))
    });
    let io = TokioIo::new(WriteDeadline::new(stream, WRITE_TIMEOUT));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        // hyper runs this timer whenever it waits for a head: between requests too.
        .header_read_timeout(HEAD_TIMEOUT)
        .keep_alive(true)
        .max_buf_size(MAX_HEAD)
        // As probes and the README spell them (`Connection: close`, `Content-Type`).
        .title_case_headers(true);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let result = tokio::select! {
        r = connection.as_mut() => r,
        () = evicted.cancelled() => return,
        () = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "metrics connection ended with an error");
    }
}
