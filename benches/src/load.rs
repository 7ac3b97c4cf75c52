//! The closed-loop load generator: C workers, each sending one request per connection and waiting
//! for the whole response before the next, bounded by a request count and a deadline.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::client::{exchange, ExchangeError};
use crate::latency::{as_us, summarize, Summary};
use crate::request::RequestSpec;
use crate::target::Target;
use crate::CHUNK;

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Requests go to these in turn (round robin over all requests).
    pub targets: Vec<Target>,
    /// Workers, i.e. requests in flight.
    pub concurrency: usize,
    /// Stop after this many requests...
    pub max_requests: u64,
    /// ...or after this long, whichever comes first.
    pub duration: Duration,
    /// The request every worker sends.
    pub request: RequestSpec,
    /// A request still unanswered after this counts as an error.
    pub request_timeout: Duration,
}

/// Failed requests by cause.
#[derive(Debug, Clone, Default)]
pub struct Errors {
    /// Connection refused or similar.
    pub connect: u64,
    /// Reset or other failure after connecting.
    pub io: u64,
    /// A response whose status line is not `HTTP/1.1 200`.
    pub status: u64,
    /// No complete response within the request timeout.
    pub timeout: u64,
    /// The first failure's message, to say what went wrong.
    pub first: Option<String>,
}

impl Errors {
    /// All failures.
    pub fn total(&self) -> u64 {
        self.connect + self.io + self.status + self.timeout
    }

    pub(crate) fn note(&mut self, message: impl FnOnce() -> String) {
        if self.first.is_none() {
            self.first = Some(message());
        }
    }

    pub(crate) fn merge(&mut self, other: Errors) {
        self.connect += other.connect;
        self.io += other.io;
        self.status += other.status;
        self.timeout += other.timeout;
        if self.first.is_none() {
            self.first = other.first;
        }
    }
}

/// The outcome of a run.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// From the first request to the last response.
    pub elapsed: Duration,
    /// Requests answered with a 200.
    pub ok: u64,
    /// Requests that failed.
    pub errors: Errors,
    /// Latency of the successful requests, connect to close.
    pub latency: Summary,
    /// Response bytes received.
    pub response_bytes: u64,
}

impl LoadReport {
    /// Successful requests per second.
    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

struct Shared {
    cfg: LoadConfig,
    packet: Vec<u8>,
    issued: AtomicU64,
    deadline: Instant,
}

#[derive(Default)]
struct Tally {
    samples: Vec<u32>,
    ok: u64,
    bytes: u64,
    errors: Errors,
}

/// Runs the load and waits for every worker to finish.
pub async fn run(cfg: LoadConfig) -> anyhow::Result<LoadReport> {
    anyhow::ensure!(!cfg.targets.is_empty(), "no target to send load to");
    anyhow::ensure!(cfg.concurrency > 0, "concurrency must be at least 1");
    let packet = cfg.request.packet()?;
    let start = Instant::now();
    let shared = Arc::new(Shared {
        deadline: start + cfg.duration,
        packet,
        issued: AtomicU64::new(0),
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
        all.bytes += t.bytes;
        all.errors.merge(t.errors);
    }
    Ok(LoadReport {
        elapsed: start.elapsed(),
        ok: all.ok,
        errors: all.errors,
        latency: summarize(&mut all.samples),
        response_bytes: all.bytes,
    })
}

async fn worker(shared: Arc<Shared>) -> Tally {
    let cfg = &shared.cfg;
    let mut tally = Tally::default();
    let mut buf = vec![0u8; CHUNK];
    while Instant::now() < shared.deadline {
        let n = shared.issued.fetch_add(1, Ordering::Relaxed);
        if n >= cfg.max_requests {
            break;
        }
        let target = &cfg.targets[(n % cfg.targets.len() as u64) as usize];
        let started = Instant::now();
        let body = cfg.request.body_bytes;
        let res = tokio::time::timeout(
            cfg.request_timeout,
            exchange(target, &shared.packet, body, &mut buf),
        )
        .await;
        record(&mut tally, res, started.elapsed());
    }
    tally
}

type Outcome = Result<Result<crate::client::Response, ExchangeError>, tokio::time::error::Elapsed>;

fn record(tally: &mut Tally, res: Outcome, took: Duration) {
    let errors = &mut tally.errors;
    match res {
        Ok(Ok(resp)) if resp.is_ok() => {
            tally.ok += 1;
            tally.bytes += resp.bytes;
            tally.samples.push(as_us(took));
        }
        Ok(Ok(resp)) => {
            errors.status += 1;
            errors.note(|| format!("bad status: {:?}", resp.status_line()));
        }
        Ok(Err(e @ ExchangeError::Connect { .. })) => {
            errors.connect += 1;
            errors.note(|| e.to_string());
        }
        Ok(Err(e)) => {
            errors.io += 1;
            errors.note(|| e.to_string());
        }
        Err(_) => {
            errors.timeout += 1;
            errors.note(|| format!("no response within {took:?}"));
        }
    }
}
