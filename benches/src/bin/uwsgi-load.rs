//! `uwsgi-load`: a closed-loop uwsgi load generator reporting raw latency percentiles.

use std::time::Duration;

use clap::Parser;
use uwsgi_router_bench::load::{run, LoadConfig, LoadReport};
use uwsgi_router_bench::request::RequestSpec;
use uwsgi_router_bench::target::Target;
use uwsgi_router_bench::transfer::{download, upload};

/// Sends uwsgi requests (one per connection, as nginx does) from C workers in a closed loop.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Where to send: ip:port or unix:/path. Repeat to spread requests round robin.
    #[arg(long, required = true)]
    target: Vec<Target>,
    /// Concurrent workers (requests in flight).
    #[arg(long, short = 'c', default_value_t = 64)]
    concurrency: usize,
    /// Stop after this many requests.
    #[arg(long, short = 'n', default_value_t = 1_000_000)]
    requests: u64,
    /// Stop after this many seconds (at most 600).
    #[arg(long, short = 'd', default_value_t = 10.0)]
    duration: f64,
    /// Request URI.
    #[arg(long, default_value = "/")]
    uri: String,
    /// Send one POST with a body of this many bytes (to the first target) and report throughput.
    #[arg(long, conflicts_with = "download_bytes")]
    body_bytes: Option<u64>,
    /// Download `/big/<bytes>` once (from the first target) and report throughput.
    #[arg(long)]
    download_bytes: Option<u64>,
    /// A request unanswered after this many seconds counts as an error.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    uwsgi_router_bench::raise_nofile()?;
    let limit = Duration::from_secs_f64(args.duration.clamp(0.0, 600.0));
    let first = &args.target[0];
    if let Some(bytes) = args.body_bytes {
        let t = upload(first, bytes, limit).await?;
        println!(
            "upload {} bytes in {:.2?}: {:.0} MiB/s, {}",
            t.bytes,
            t.elapsed,
            t.mib_per_s(),
            t.status
        );
        return Ok(());
    }
    if let Some(bytes) = args.download_bytes {
        let t = download(first, bytes, limit).await?;
        println!(
            "download {} bytes in {:.2?}: {:.0} MiB/s, {}",
            t.bytes,
            t.elapsed,
            t.mib_per_s(),
            t.status
        );
        return Ok(());
    }
    let report = run(LoadConfig {
        targets: args.target,
        concurrency: args.concurrency,
        max_requests: args.requests,
        duration: limit,
        request: RequestSpec::get(&args.uri),
        request_timeout: Duration::from_secs_f64(args.timeout.clamp(0.001, 600.0)),
    })
    .await?;
    print_report(&report);
    Ok(())
}

fn print_report(r: &LoadReport) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let l = &r.latency;
    println!(
        "requests: {} ok, {} errors in {:.2?}",
        r.ok,
        r.errors.total(),
        r.elapsed
    );
    println!("req/s:    {:.0}", r.rps());
    println!(
        "latency:  p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms, mean {:.3} ms",
        ms(l.p50),
        ms(l.p90),
        ms(l.p99),
        ms(l.max),
        ms(l.mean)
    );
    let e = &r.errors;
    if e.total() > 0 {
        println!(
            "errors:   connect {}, io {}, status {}, timeout {}; first: {}",
            e.connect,
            e.io,
            e.status,
            e.timeout,
            e.first.as_deref().unwrap_or("-")
        );
    }
}
