//! `bench`: the end-to-end benchmark. Starts fast nodes, then for each router under test (none,
//! routerd, uWSGI's FastRouter) runs the same closed-loop load and measures throughput, latency
//! and the router's CPU; then routerd's memory with 1 GiB bodies and 10,000 idle connections;
//! then the heterogeneous pool (real uWSGI nodes, one 10x slower, behind nginx and each contender)
//! and a node SIGKILLed under load. Prints markdown tables. Every process it starts is killed when
//! it ends, whatever happens.

mod front;
mod hetero;
mod memory;
mod nginx;
mod report;
mod routers;
mod scale;
mod setup;
mod spread;
mod throughput;

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use routers::{RouterKind, Variant};
use setup::Bench;

/// Runs every benchmark phase and prints the results as markdown.
#[derive(Debug, Clone, Parser)]
#[command(version)]
pub(crate) struct Args {
    /// Seconds of measured load per throughput phase and round.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Rounds of throughput phases, interleaved; each phase reports its median round.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=20))]
    rounds: u16,
    /// Seconds of unmeasured load before each throughput phase.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Concurrent clients (closed loop) in every throughput phase.
    #[arg(long, short = 'c', default_value_t = 64)]
    concurrency: usize,
    /// Fast nodes behind every router.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Size of the body streamed each way through routerd in the memory phase.
    #[arg(long, default_value_t = 1 << 30)]
    big_bytes: u64,
    /// Idle client connections held open to routerd in the memory phase.
    #[arg(long, default_value_t = 10_000)]
    idle: usize,
    /// The routerd binary (default: next to this one, i.e. target/release/routerd).
    #[arg(long)]
    routerd: Option<PathBuf>,
    /// The uWSGI binary (Debian's uwsgi-core).
    #[arg(long, default_value = "uwsgi")]
    uwsgi: PathBuf,
    /// routerd balancing algorithms to measure, one throughput phase each.
    #[arg(long, value_delimiter = ',', default_value = "least-load,round-robin")]
    algorithms: Vec<String>,
    /// Skip the phases that run the first algorithm again with the access log on and with
    /// request ids off.
    #[arg(long)]
    no_variants: bool,
    /// Another routerd binary (an older build, say) measured as one more phase with the first
    /// algorithm's config, next to the current routerd's defaults: what a change costs.
    #[arg(long, value_name = "PATH")]
    baseline_routerd: Option<PathBuf>,
    /// FastRouter process counts to measure, one throughput phase each.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    fastrouter_processes: Vec<u32>,
    /// Run only the phases whose name contains one of these, spaces written as dashes
    /// (e.g. `direct,routerd-least-load,fastrouter-1,memory`). `hetero` is the heterogeneous-pool
    /// group; `hetero-<contender>` one of it (`hetero-routerd-least-load-static`,
    /// `hetero-routerd-least-load-agents`, `hetero-routerd-round-robin`, `hetero-nginx-least-conn`,
    /// `hetero-fastrouter-lrc`) and `hetero-kill` its kill phase. `front` is nginx in front of
    /// routerd's HTTP listener and the alternatives; `front-<phase>` one of it (`front-direct`,
    /// `front-routerd-uwsgi`, `front-routerd-http-tcp`, `front-routerd-http-unix`,
    /// `front-uwsgi-http`, `front-haproxy`). `scale` is the control plane with thousands of
    /// simulated agents (`--scale-nodes`, `--scale-connections`); only `--only scale` runs it.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Heterogeneous pool: milliseconds each request sleeps on the two normal nodes.
    #[arg(long, default_value_t = 2)]
    hetero_fast_ms: u64,
    /// Heterogeneous pool: milliseconds each request sleeps on the slow node.
    #[arg(long, default_value_t = 20)]
    hetero_slow_ms: u64,
    /// Heterogeneous pool: uWSGI processes per node.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    hetero_processes: u32,
    /// The nodes behind the front group, one run of the group each: `fast` (the fast nodes),
    /// `uwsgi` (3 uWSGI Python nodes, `--hetero-processes` each, no sleep).
    #[arg(long, value_delimiter = ',', default_value = "fast")]
    front_nodes: Vec<front::NodeKind>,
    /// The HAProxy binary (front group; Debian's haproxy).
    #[arg(long, default_value = "haproxy")]
    haproxy: PathBuf,
    /// Scale group: fleet sizes, one shape each (times each `--scale-connections`).
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    scale_nodes: Vec<usize>,
    /// Scale group: HTTP/2 connections the fleet's sessions share; 0 for one per node (as real
    /// agents: routerd then needs an open-file limit of four times the node count).
    #[arg(long, value_delimiter = ',', default_value = "100")]
    scale_connections: Vec<usize>,
    /// Scale group: agents announcing per second while the fleet joins (in steps of 100 ms);
    /// 0 (the default): all at once.
    #[arg(long, default_value_t = 0)]
    scale_join_rate: u32,
    /// Scale group: membership changes per second in the churn window (half leaves, half joins).
    #[arg(long, default_value_t = 100)]
    scale_churn: u32,
    /// The nginx binary (heterogeneous pool, front group).
    #[arg(long, default_value = "nginx")]
    nginx: PathBuf,
    /// The router-agent binary (default: next to this one).
    #[arg(long)]
    router_agent: Option<PathBuf>,
    /// uWSGI's Python plugin (Debian's uwsgi-plugin-python3).
    #[arg(long, default_value = "python3")]
    python_plugin: String,
}

impl Args {
    fn wants(&self, phase: &str) -> bool {
        // Names have spaces ("routerd least-load"); let `routerd-least-load` match them too.
        let phase = phase.replace(' ', "-");
        self.only.is_empty()
            || self
                .only
                .iter()
                .any(|o| phase.contains(&o.replace(' ', "-")))
    }

    /// For the heterogeneous group, which only an `--only` entry starting with `hetero` selects
    /// (so that `--only routerd-least-load` does not start it): `part` is a contender's slug or `kill`.
    fn wants_hetero(&self, part: &str) -> bool {
        let name = format!("hetero-{part}");
        self.only.is_empty()
            || self.only.iter().any(|o| {
                let o = o.replace(' ', "-");
                o.starts_with("hetero") && name.contains(&o)
            })
    }

    fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.duration.clamp(0.1, 120.0))
    }

    fn warmup(&self) -> Duration {
        Duration::from_secs_f64(self.warmup.clamp(0.0, 30.0))
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let nofile = uwsgi_router_bench::raise_nofile()?;
    anyhow::ensure!(
        args.idle == 0 || nofile as usize > args.idle + 100,
        "open-file limit {nofile} is too low for {} idle connections",
        args.idle
    );
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        tokio::select! {
            res = run(args) => res,
            // Leave through the normal path, so every child's guard kills it.
            sig = stop_signal() => anyhow::bail!("stopped by {}", sig?),
        }
    })
}

/// Resolves on Ctrl-C or SIGTERM.
async fn stop_signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        res = tokio::signal::ctrl_c() => res.map(|()| "SIGINT"),
        _ = term.recv() => Ok("SIGTERM"),
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let mut bench = Bench::start(args.clone()).await?;
    report::print_header(&bench);
    let kinds: Vec<RouterKind> = phases(&args)
        .into_iter()
        .filter(|k| args.wants(&k.name()))
        .collect();
    let rows = throughput::run_rounds(&mut bench, &kinds, usize::from(args.rounds)).await;
    report::print_throughput(&bench, &rows);
    let mem = if args.wants("memory") {
        let mem = memory::run(&mut bench).await;
        report::print_memory(&bench, &rows, &mem);
        mem.ok()
    } else {
        None
    };
    if !rows.is_empty() || mem.is_some() {
        report::print_targets(&rows, mem.as_ref());
    }
    let front = front::wanted(&bench);
    for kind in args.front_nodes.iter().filter(|_| !front.is_empty()) {
        let rows = front::run(&mut bench, &front, *kind).await;
        let nodes = kind.describe(args.nodes, args.hetero_processes);
        front::report::print(&rows, args.concurrency, args.rounds, args.duration, &nodes);
    }
    if hetero::wanted(&bench) {
        let h = hetero::run(&mut bench).await;
        hetero::report::print(&h, args.concurrency, args.rounds, args.duration);
    }
    if args.only.iter().any(|o| o == "scale") {
        let rows = scale::run(&bench, &scale::shapes(&bench)).await;
        scale::report::print(&rows, args.rounds, args.duration, args.scale_churn);
    }
    Ok(())
}

/// The throughput phases in order; the direct one comes first because the others are compared to it.
fn phases(args: &Args) -> Vec<RouterKind> {
    let mut kinds = vec![RouterKind::Direct];
    kinds.extend(
        args.algorithms
            .iter()
            .map(|a| RouterKind::Routerd(a.clone(), Variant::Defaults)),
    );
    // The first algorithm again with the access log on, and with request ids off: their cost.
    if let Some(first) = args.algorithms.first().filter(|_| !args.no_variants) {
        for v in [Variant::AccessLog, Variant::NoRequestId] {
            kinds.push(RouterKind::Routerd(first.clone(), v));
        }
    }
    // The first algorithm on the baseline binary: the current build against an older one.
    if let Some(first) = args
        .algorithms
        .first()
        .filter(|_| args.baseline_routerd.is_some())
    {
        kinds.push(RouterKind::Routerd(first.clone(), Variant::Baseline));
    }
    kinds.extend(
        args.fastrouter_processes
            .iter()
            .map(|&p| RouterKind::FastRouter(p)),
    );
    kinds
}
