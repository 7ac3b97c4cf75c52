//! `metrics-render`: what rendering routerd's `/metrics` body costs with N registered nodes, in
//! process (no HTTP, no control plane): one pool of N nodes that reported their load, the body
//! rendered `--runs` times; prints its size and the median (min..max) render time.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use uwsgi_router::clock::now_ms;
use uwsgi_router::cluster::Cluster;
use uwsgi_router::config::Config;
use uwsgi_router::node::{LoadReport, Node, Source};

/// Renders `/metrics` for a pool of simulated nodes and times it.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Nodes in the pool.
    #[arg(long, default_value_t = 10_000)]
    nodes: usize,
    /// `metrics.node_series_limit` (per-node series only for pools of at most this many nodes).
    #[arg(long)]
    limit: Option<usize>,
    /// Renders timed.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u32).range(1..=1000))]
    runs: u32,
}

/// Long enough that no lease runs out while rendering.
const LEASE: Duration = Duration::from_secs(3600);

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = Config::parse(&format!(
        "[pools.default]\nmax_nodes = {}\n",
        args.nodes.max(1)
    ))
    .context("the pool's config")?;
    let cluster = Cluster::default();
    cluster.apply_config(&config);
    for i in 0..args.nodes {
        let addr = format!(
            "127.{}.{}.{}:3031",
            (i >> 16) & 255,
            (i >> 8) & 255,
            i & 255
        );
        let addr = addr.parse().context("a node address")?;
        let node = Node::new(format!("sim-{i}"), addr, Source::Registered, 1);
        let node = cluster.join("default", node, LEASE)?;
        let report = LoadReport {
            capacity: 4,
            busy: 1,
            ..LoadReport::default()
        };
        node.record_report(&report, now_ms(), LEASE);
    }
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..args.runs {
        let t = Instant::now();
        bytes = uwsgi_router::scrape::render(&cluster, args.limit).len();
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{} nodes, node_series_limit {}: {:.2} MB, render {:.2} ms median ({:.2}..{:.2}) over {} runs",
        args.nodes,
        args.limit.map_or_else(|| "unset".to_owned(), |l| l.to_string()),
        bytes as f64 / 1e6,
        times[(times.len() - 1) / 2],
        times[0],
        times[times.len() - 1],
        args.runs
    );
    Ok(())
}
