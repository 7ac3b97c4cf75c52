//! A closed-loop HTTP/1.1 load generator, for measuring routers through nginx the way browsers
//! reach them: C workers, each with one keep-alive connection, sending a GET, reading the whole
//! response and starting over, bounded by a request count and a deadline.
//!
//! Latencies are raw (request written to the last body byte read, plus the connect when a new
//! connection was needed): no coordinated-omission correction. Each `200` response's body names
//! the node that served it (`hello from <name>`), and the report counts responses per node.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::latency::{as_us, summarize, Summary};
use crate::load::Errors;

/// Largest response head accepted.
const MAX_HEAD: usize = 16 * 1024;
/// Largest body kept to read the node's name from; longer bodies are read and discarded.
const MAX_KEPT_BODY: usize = 256;
/// The body prefix before the node's name.
const NODE_PREFIX: &str = "hello from ";
/// At most this many error times are kept (the first ones).
const MAX_ERROR_TIMES: usize = 100_000;

/// What to run.
#[derive(Debug, Clone)]
pub struct HttpLoadConfig {
    /// nginx (or any HTTP server) address.
    pub target: SocketAddr,
    /// The Host header.
    pub host: String,
    /// Path and query of the GET.
    pub path: String,
    /// Workers, i.e. requests in flight.
    pub concurrency: usize,
    /// Stop after this many requests...
    pub max_requests: u64,
    /// ...or after this long, whichever comes first.
    pub duration: Duration,
    /// A request still unanswered after this counts as an error (and its connection is dropped).
    pub request_timeout: Duration,
}

/// The outcome of a run.
#[derive(Debug, Clone, Default)]
pub struct HttpLoadReport {
    /// When the load started: the origin of `error_times`.
    pub started: Option<Instant>,
    /// From the start to the last response.
    pub elapsed: Duration,
    /// Requests answered with a 200.
    pub ok: u64,
    /// Requests that failed; `status` counts answers other than 200 (nginx's 502, 504...).
    pub errors: Errors,
    /// Failed requests by HTTP status (the `status` errors only).
    pub error_statuses: BTreeMap<u16, u64>,
    /// When each failed request ended, since the start (the first [`MAX_ERROR_TIMES`]), sorted.
    pub error_times: Vec<Duration>,
    /// Latency of the successful requests.
    pub latency: Summary,
    /// Successful requests per node name (from the body; `?` for a body that names none).
    pub by_node: BTreeMap<String, NodeTally>,
    /// Connections opened to the target.
    pub connections: u64,
}

/// The successful requests one node served.
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeTally {
    /// How many.
    pub count: u64,
    /// Sum of their latencies, microseconds.
    pub total_us: u64,
    /// The slowest, microseconds.
    pub max_us: u32,
}

impl NodeTally {
    fn add(&mut self, us: u32) {
        self.count += 1;
        self.total_us += u64::from(us);
        self.max_us = self.max_us.max(us);
    }

    fn merge(&mut self, o: &NodeTally) {
        self.count += o.count;
        self.total_us += o.total_us;
        self.max_us = self.max_us.max(o.max_us);
    }

    /// Mean latency.
    pub fn mean(&self) -> Duration {
        Duration::from_micros(self.total_us / self.count.max(1))
    }
}

impl HttpLoadReport {
    /// Successful requests per second.
    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

struct Shared {
    cfg: HttpLoadConfig,
    request: Vec<u8>,
    issued: AtomicU64,
    start: Instant,
    deadline: Instant,
}

#[derive(Default)]
struct Tally {
    samples: Vec<u32>,
    ok: u64,
    errors: Errors,
    error_statuses: BTreeMap<u16, u64>,
    error_times: Vec<Duration>,
    by_node: BTreeMap<String, NodeTally>,
    connections: u64,
}

/// Runs the load and waits for every worker to finish.
pub async fn run(cfg: HttpLoadConfig) -> anyhow::Result<HttpLoadReport> {
    anyhow::ensure!(cfg.concurrency > 0, "concurrency must be at least 1");
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: uwsgi-router-bench\r\nAccept: */*\r\n\r\n",
        cfg.path, cfg.host
    )
    .into_bytes();
    let start = Instant::now();
    let shared = Arc::new(Shared {
        deadline: start + cfg.duration,
        request,
        issued: AtomicU64::new(0),
        start,
        cfg,
    });
    let workers: Vec<_> = (0..shared.cfg.concurrency)
        .map(|_| tokio::spawn(worker(Arc::clone(&shared))))
        .collect();
    let mut all = Tally::default();
    for w in workers {
        let t = w.await?;
        all.samples.extend_from_slice(&t.samples);
        all.ok += t.ok;
        all.errors.merge(t.errors);
        for (k, v) in t.error_statuses {
            *all.error_statuses.entry(k).or_default() += v;
        }
        all.error_times.extend(t.error_times);
        for (k, v) in t.by_node {
            all.by_node.entry(k).or_default().merge(&v);
        }
        all.connections += t.connections;
    }
    all.error_times.sort_unstable();
    all.error_times.truncate(MAX_ERROR_TIMES);
    Ok(HttpLoadReport {
        started: Some(start),
        elapsed: start.elapsed(),
        ok: all.ok,
        errors: all.errors,
        error_statuses: all.error_statuses,
        error_times: all.error_times,
        latency: summarize(&mut all.samples),
        by_node: all.by_node,
        connections: all.connections,
    })
}

/// How one request ended.
enum Outcome {
    /// A complete response; `reusable` when the connection may carry the next request.
    Done {
        resp: HttpResponse,
        reusable: bool,
    },
    Connect(io::Error),
    Io(io::Error),
}

async fn worker(shared: Arc<Shared>) -> Tally {
    let cfg = &shared.cfg;
    let mut tally = Tally::default();
    let mut conn: Option<TcpStream> = None;
    let mut buf = vec![0u8; 64 * 1024];
    while Instant::now() < shared.deadline {
        if shared.issued.fetch_add(1, Ordering::Relaxed) >= cfg.max_requests {
            break;
        }
        let started = Instant::now();
        let res = tokio::time::timeout(
            cfg.request_timeout,
            one_request(&shared, &mut conn, &mut tally.connections, &mut buf),
        )
        .await;
        let took = started.elapsed();
        let failed_at = shared.start.elapsed();
        let fail = |tally: &mut Tally| {
            if tally.error_times.len() < MAX_ERROR_TIMES {
                tally.error_times.push(failed_at);
            }
        };
        match res {
            Ok(Outcome::Done { resp, reusable }) => {
                if !reusable {
                    conn = None;
                }
                if resp.status == 200 {
                    let us = as_us(took);
                    tally.ok += 1;
                    tally.samples.push(us);
                    tally.by_node.entry(resp.node()).or_default().add(us);
                } else {
                    tally.errors.status += 1;
                    *tally.error_statuses.entry(resp.status).or_default() += 1;
                    tally
                        .errors
                        .note(|| format!("HTTP {}: {}", resp.status, resp.body_text()));
                    fail(&mut tally);
                }
            }
            Ok(Outcome::Connect(e)) => {
                conn = None;
                tally.errors.connect += 1;
                tally
                    .errors
                    .note(|| format!("connect to {}: {e}", cfg.target));
                fail(&mut tally);
            }
            Ok(Outcome::Io(e)) => {
                conn = None;
                tally.errors.io += 1;
                tally
                    .errors
                    .note(|| format!("i/o with {}: {e}", cfg.target));
                fail(&mut tally);
            }
            Err(_) => {
                conn = None;
                tally.errors.timeout += 1;
                tally
                    .errors
                    .note(|| format!("no complete response within {took:?}"));
                fail(&mut tally);
            }
        }
    }
    tally
}

/// Sends the request on the kept connection, or a new one. A kept connection that the server
/// closed while idle (nothing of the response read) is replaced once, as browsers do.
async fn one_request(
    shared: &Shared,
    conn: &mut Option<TcpStream>,
    opened: &mut u64,
    buf: &mut [u8],
) -> Outcome {
    for attempt in 0..2 {
        let reused = conn.is_some();
        let stream = match conn {
            Some(s) => s,
            None => match TcpStream::connect(shared.cfg.target).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    *opened += 1;
                    conn.insert(s)
                }
                Err(e) => return Outcome::Connect(e),
            },
        };
        if let Err(e) = stream.write_all(&shared.request).await {
            *conn = None;
            if reused && attempt == 0 {
                continue;
            }
            return Outcome::Io(e);
        }
        match read_response(stream, buf).await {
            Ok(Some((resp, reusable))) => return Outcome::Done { resp, reusable },
            // Closed before any byte of a response: a stale keep-alive connection.
            Ok(None) if reused && attempt == 0 => *conn = None,
            Ok(None) => {
                return Outcome::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed before a response",
                ))
            }
            Err(e) => return Outcome::Io(e),
        }
    }
    Outcome::Io(io::Error::other("stale keep-alive connection twice"))
}

/// A response as the load generator keeps it.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The first bytes of the body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The node named by a `hello from <name>` body, else `?`.
    pub fn node(&self) -> String {
        self.body_text()
            .strip_prefix(NODE_PREFIX)
            .map_or_else(|| "?".to_owned(), |n| n.trim().to_owned())
    }

    /// The kept body as one line of text.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body)
            .replace(['\r', '\n'], " ")
            .trim()
            .to_owned()
    }
}

/// How the body is delimited.
enum Framing {
    Length(u64),
    Chunked,
    Close,
}

/// Reads one response. `Ok(None)`: the connection closed before any byte arrived.
async fn read_response(
    s: &mut TcpStream,
    buf: &mut [u8],
) -> io::Result<Option<(HttpResponse, bool)>> {
    let mut head: Vec<u8> = Vec::with_capacity(512);
    let head_end = loop {
        let n = s.read(buf).await?;
        if n == 0 {
            if head.is_empty() {
                return Ok(None);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed inside the response head",
            ));
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if head.len() > MAX_HEAD {
            return Err(bad("response head too long"));
        }
    };
    let rest = head.split_off(head_end);
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split(' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(bad("not an HTTP/1.x response"));
    }
    let status: u16 = parts
        .next()
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| bad("no status code"))?;
    let mut framing = Framing::Close;
    let mut close = version == "HTTP/1.0";
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("content-length") {
            let n = value.parse().map_err(|_| bad("bad Content-Length"))?;
            framing = Framing::Length(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            && value.to_ascii_lowercase().contains("chunked")
        {
            framing = Framing::Chunked;
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
    let mut body = Body {
        pending: rest,
        kept: Vec::new(),
    };
    let reusable = match framing {
        Framing::Length(n) => {
            body.read_exact_len(s, buf, n).await?;
            !close
        }
        Framing::Chunked => {
            body.read_chunked(s, buf).await?;
            !close
        }
        Framing::Close => {
            body.read_to_end(s, buf).await?;
            false
        }
    };
    Ok(Some((
        HttpResponse {
            status,
            body: body.kept,
        },
        reusable,
    )))
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// Body bytes: those read along with the head come first, then the stream.
struct Body {
    pending: Vec<u8>,
    kept: Vec<u8>,
}

impl Body {
    fn keep(&mut self, bytes: &[u8]) {
        let room = MAX_KEPT_BODY.saturating_sub(self.kept.len());
        self.kept.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// Up to `max` bytes: pending ones first. 0 means the stream ended.
    async fn read_some(
        &mut self,
        s: &mut TcpStream,
        buf: &mut [u8],
        max: usize,
    ) -> io::Result<Vec<u8>> {
        if self.pending.is_empty() {
            let n = s.read(buf).await?;
            self.pending.extend_from_slice(&buf[..n]);
        }
        let n = self.pending.len().min(max);
        Ok(self.pending.drain(..n).collect())
    }

    async fn read_exact_len(
        &mut self,
        s: &mut TcpStream,
        buf: &mut [u8],
        mut left: u64,
    ) -> io::Result<()> {
        while left > 0 {
            let max = usize::try_from(left).unwrap_or(usize::MAX);
            let got = self.read_some(s, buf, max).await?;
            if got.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed inside the body",
                ));
            }
            self.keep(&got);
            left -= got.len() as u64;
        }
        Ok(())
    }

    async fn read_to_end(&mut self, s: &mut TcpStream, buf: &mut [u8]) -> io::Result<()> {
        loop {
            let got = self.read_some(s, buf, usize::MAX).await?;
            if got.is_empty() {
                return Ok(());
            }
            self.keep(&got);
        }
    }

    /// One CRLF-terminated line (chunk sizes, trailers).
    async fn read_line(&mut self, s: &mut TcpStream, buf: &mut [u8]) -> io::Result<String> {
        let mut line = Vec::new();
        loop {
            let got = self.read_some(s, buf, 1).await?;
            let Some(&b) = got.first() else {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed inside a chunk",
                ));
            };
            if b == b'\n' {
                return Ok(String::from_utf8_lossy(&line).trim().to_owned());
            }
            line.push(b);
            if line.len() > 1024 {
                return Err(bad("chunk line too long"));
            }
        }
    }

    async fn read_chunked(&mut self, s: &mut TcpStream, buf: &mut [u8]) -> io::Result<()> {
        loop {
            let size_line = self.read_line(s, buf).await?;
            let hex = size_line.split(';').next().unwrap_or_default();
            let size = u64::from_str_radix(hex.trim(), 16).map_err(|_| bad("bad chunk size"))?;
            if size == 0 {
                // Trailers, up to the empty line.
                while !self.read_line(s, buf).await?.is_empty() {}
                return Ok(());
            }
            self.read_exact_len(s, buf, size).await?;
            self.read_line(s, buf).await?;
        }
    }
}

/// One GET with `Connection: close`, for scraping `/metrics` and the like. Returns the status and
/// the whole body.
pub async fn get(addr: SocketAddr, path: &str, limit: Duration) -> anyhow::Result<(u16, String)> {
    let fetch = async {
        let mut s = TcpStream::connect(addr).await?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await?;
        let mut all = Vec::new();
        s.read_to_end(&mut all).await?;
        Ok::<_, io::Error>(all)
    };
    let all = tokio::time::timeout(limit, fetch)
        .await
        .map_err(|_| anyhow::anyhow!("GET {path} from {addr}: no answer within {limit:?}"))??;
    let text = String::from_utf8_lossy(&all);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("GET {path} from {addr}: no response head"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("GET {path} from {addr}: no status"))?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Ok((status, body))
}

/// Joins a chunked body's chunks (enough for metrics pages).
fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_come_from_the_body() {
        let r = HttpResponse {
            status: 200,
            body: b"hello from node2".to_vec(),
        };
        assert_eq!(r.node(), "node2");
        let r = HttpResponse {
            status: 502,
            body: b"<html>bad gateway</html>".to_vec(),
        };
        assert_eq!(r.node(), "?");
    }

    #[test]
    fn chunked_bodies_join() {
        assert_eq!(
            dechunk("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
            "hello world"
        );
    }
}
