//! The memory phases' traffic: one huge body each way, and many idle connections; plus the RSS
//! trace of a process taken while that traffic runs.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::client::exchange;
use crate::procfs::status_kib;
use crate::request::RequestSpec;
use crate::target::Target;
use crate::CHUNK;

/// RSS of a process before, during and after some work, in KiB.
#[derive(Debug, Clone, Copy, Default)]
pub struct RssTrace {
    /// Just before.
    pub before: u64,
    /// Lowest sample while the work ran.
    pub min: u64,
    /// Highest sample while the work ran.
    pub max: u64,
    /// Just after.
    pub after: u64,
    /// How many samples were taken during the work.
    pub samples: usize,
}

/// Runs `work` while sampling `pid`'s RSS every `every`.
pub async fn with_rss<F: Future>(pid: u32, every: Duration, work: F) -> (F::Output, RssTrace) {
    let rss = || status_kib(pid, "VmRSS").unwrap_or(0);
    let mut trace = RssTrace {
        before: rss(),
        min: u64::MAX,
        ..RssTrace::default()
    };
    let mut tick = tokio::time::interval(every);
    tokio::pin!(work);
    let out = loop {
        tokio::select! {
            out = &mut work => break out,
            _ = tick.tick() => {
                let now = rss();
                trace.min = trace.min.min(now);
                trace.max = trace.max.max(now);
                trace.samples += 1;
            }
        }
    };
    trace.after = rss();
    trace.min = trace.min.min(trace.max);
    (out, trace)
}

/// One big transfer's result.
#[derive(Debug, Clone)]
pub struct Transfer {
    /// Payload bytes moved (request body, or response bytes received).
    pub bytes: u64,
    /// Connect to close.
    pub elapsed: Duration,
    /// The response's status line.
    pub status: String,
}

impl Transfer {
    /// Throughput in MiB/s.
    pub fn mib_per_s(&self) -> f64 {
        self.bytes as f64 / (1024.0 * 1024.0) / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// POSTs a body of `bytes` bytes; the node discards it and answers 200.
pub async fn upload(target: &Target, bytes: u64, limit: Duration) -> anyhow::Result<Transfer> {
    let packet = RequestSpec::post("/upload", bytes).packet()?;
    let (resp, elapsed) = timed(limit, exchange_owned(target, packet, bytes)).await?;
    anyhow::ensure!(resp.is_ok(), "upload answered {:?}", resp.status_line());
    Ok(Transfer {
        bytes,
        elapsed,
        status: resp.status_line(),
    })
}

/// GETs `/big/<bytes>`: the node streams that many bytes back.
pub async fn download(target: &Target, bytes: u64, limit: Duration) -> anyhow::Result<Transfer> {
    let packet = RequestSpec::get(&format!("/big/{bytes}")).packet()?;
    let (resp, elapsed) = timed(limit, exchange_owned(target, packet, 0)).await?;
    anyhow::ensure!(resp.is_ok(), "download answered {:?}", resp.status_line());
    anyhow::ensure!(
        resp.bytes > bytes,
        "download cut short: {} of {bytes} body bytes",
        resp.bytes
    );
    Ok(Transfer {
        bytes: resp.bytes,
        elapsed,
        status: resp.status_line(),
    })
}

async fn exchange_owned(
    target: &Target,
    packet: Vec<u8>,
    body: u64,
) -> anyhow::Result<crate::client::Response> {
    let mut buf = vec![0u8; CHUNK];
    Ok(exchange(target, &packet, body, &mut buf).await?)
}

async fn timed<T>(
    limit: Duration,
    work: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<(T, Duration)> {
    let start = Instant::now();
    let out = tokio::time::timeout(limit, work)
        .await
        .with_context(|| format!("not done within {limit:?}"))??;
    Ok((out, start.elapsed()))
}

/// Opens `count` connections to `addr` that send nothing, `parallel` connects at a time.
pub async fn open_idle(
    addr: SocketAddr,
    count: usize,
    parallel: usize,
    limit: Duration,
) -> anyhow::Result<Vec<TcpStream>> {
    let parallel = parallel.clamp(1, count.max(1));
    let opener = |share: usize| async move {
        let mut conns = Vec::with_capacity(share);
        for _ in 0..share {
            conns.push(TcpStream::connect(addr).await?);
        }
        anyhow::Ok(conns)
    };
    // A JoinSet aborts the openers if the limit passes, so no connect outlives this call.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..parallel {
        tasks.spawn(opener(count / parallel + usize::from(i < count % parallel)));
    }
    let all = async {
        let mut conns = Vec::with_capacity(count);
        while let Some(res) = tasks.join_next().await {
            conns.extend(res??);
        }
        anyhow::Ok(conns)
    };
    tokio::time::timeout(limit, all)
        .await
        .with_context(|| format!("{count} connections not open within {limit:?}"))?
}
