//! routerd's memory: RSS while a 1 GiB body streams each way through it (it must stay flat), and
//! with 10,000 idle client connections open (it must stay small).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;
use uwsgi_router_bench::procfs::{fd_count, status_kib};
use uwsgi_router_bench::target::Target;
use uwsgi_router_bench::transfer::{download, open_idle, upload, with_rss, RssTrace, Transfer};

use crate::routers::start_routerd;
use crate::setup::Bench;

/// A big transfer is bounded by this (1 GiB over loopback takes about a second).
const TRANSFER_LIMIT: Duration = Duration::from_secs(120);
/// How often RSS is sampled during a transfer.
const SAMPLE_EVERY: Duration = Duration::from_millis(20);
/// Opening, and seeing routerd accept, the idle connections is bounded by this.
const IDLE_LIMIT: Duration = Duration::from_secs(60);

/// Everything the memory phase measured; each part fails on its own.
pub(crate) struct Memory {
    /// routerd's RSS when it starts, KiB.
    pub(crate) start_rss_kib: u64,
    /// 1 GiB request body through routerd to a node.
    pub(crate) upload: Result<(Transfer, RssTrace), String>,
    /// 1 GiB response from a node through routerd.
    pub(crate) download: Result<(Transfer, RssTrace), String>,
    /// Idle connections held open.
    pub(crate) idle: Result<Idle, String>,
    /// routerd's peak RSS over the whole phase (VmHWM), KiB.
    pub(crate) peak_rss_kib: u64,
}

/// RSS and descriptors of routerd around a batch of idle connections.
pub(crate) struct Idle {
    /// Connections opened.
    pub(crate) opened: usize,
    /// routerd's extra descriptors once they were open: the connections it accepted.
    pub(crate) accepted: usize,
    /// RSS before opening, with them open, and after closing them, KiB.
    pub(crate) rss_before: u64,
    pub(crate) rss_with: u64,
    pub(crate) rss_after: u64,
    /// A real request sent through routerd while the idle ones were open.
    pub(crate) request_ok: Result<Duration, String>,
}

/// Runs the memory phase against its own routerd (higher limits, long header timeout).
pub(crate) async fn run(bench: &mut Bench) -> Result<Memory, String> {
    measure(bench).await.map_err(|e| format!("{e:#}"))
}

async fn measure(bench: &mut Bench) -> anyhow::Result<Memory> {
    let max_conn = (bench.args.idle * 2).max(20_000);
    let extra =
        format!("\n[limits]\nmax_connections = {max_conn}\n\n[timeouts]\nheader = \"60s\"\n");
    let mut router = start_routerd(bench, "least-load", &extra).await?;
    let pid = router.pid().expect("routerd has a process");
    let target = router.targets[0].clone();
    let start_rss_kib = status_kib(pid, "VmRSS")?;
    let start_fds = fd_count(pid)?;
    let big = bench.args.big_bytes;
    let upload = with_rss(pid, SAMPLE_EVERY, upload(&target, big, TRANSFER_LIMIT)).await;
    let download = with_rss(pid, SAMPLE_EVERY, download(&target, big, TRANSFER_LIMIT)).await;
    let idle = idle(pid, &target, bench.args.idle, start_fds).await;
    if let Some(child) = router.child.as_mut() {
        child.ensure_running()?;
    }
    Ok(Memory {
        start_rss_kib,
        upload: flatten(upload),
        download: flatten(download),
        idle: idle.map_err(|e| format!("{e:#}")),
        peak_rss_kib: status_kib(pid, "VmHWM")?,
    })
}

fn flatten<T>((res, trace): (anyhow::Result<T>, RssTrace)) -> Result<(T, RssTrace), String> {
    res.map(|t| (t, trace)).map_err(|e| format!("{e:#}"))
}

async fn idle(pid: u32, target: &Target, count: usize, start_fds: usize) -> anyhow::Result<Idle> {
    let Target::Tcp(addr) = target else {
        anyhow::bail!("idle connections need a TCP listener");
    };
    // The big transfers' sockets may still be closing: start from routerd's idle descriptor count.
    let fds_before = wait_fds(pid, |n| n <= start_fds).await;
    let rss_before = status_kib(pid, "VmRSS")?;
    let conns = open_idle(*addr, count, 64, IDLE_LIMIT).await?;
    // routerd has accepted them when its descriptor count has grown by as many.
    let fds_with = wait_fds(pid, |n| n >= fds_before + count).await;
    // Let sessions that were just accepted reach their first read (and allocate what they need).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_with = status_kib(pid, "VmRSS")?;
    let request_ok = one_request(*addr).await;
    drop(conns);
    wait_fds(pid, |n| n <= fds_before).await;
    Ok(Idle {
        opened: count,
        accepted: fds_with.saturating_sub(fds_before),
        rss_before,
        rss_with,
        rss_after: status_kib(pid, "VmRSS")?,
        request_ok,
    })
}

/// Polls routerd's descriptor count until `done` holds or 10 s pass; returns the last count.
async fn wait_fds(pid: u32, done: impl Fn(usize) -> bool) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = fd_count(pid).unwrap_or(0);
        if done(n) || Instant::now() >= deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn one_request(addr: SocketAddr) -> Result<Duration, String> {
    let packet = uwsgi_router_bench::request::RequestSpec::get("/while-idle")
        .packet()
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; uwsgi_router_bench::CHUNK];
    let target = Target::Tcp(addr);
    let started = Instant::now();
    let exchange = uwsgi_router_bench::client::exchange(&target, &packet, 0, &mut buf);
    match tokio::time::timeout(Duration::from_secs(5), exchange).await {
        Ok(Ok(r)) if r.is_ok() => Ok(started.elapsed()),
        Ok(Ok(r)) => Err(format!("answered {:?}", r.status_line())),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 5 s".to_owned()),
    }
}
