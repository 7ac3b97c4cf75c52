//! A throughput phase: start a router, check it reaches every node, warm up, then measure the
//! closed-loop load and the router's CPU time over exactly the measured window.

use std::collections::BTreeSet;
use std::time::Duration;

use uwsgi_router_bench::client::exchange;
use uwsgi_router_bench::load::{self, LoadConfig, LoadReport};
use uwsgi_router_bench::procfs::{machine_cpu, tree_cpu, tree_status_kib, CpuTime};
use uwsgi_router_bench::request::RequestSpec;
use uwsgi_router_bench::target::Target;
use uwsgi_router_bench::CHUNK;

use crate::report;
use crate::routers::{self, RouterKind};
use crate::setup::Bench;

/// A request still unanswered after this counts as an error (a fast node answers in microseconds).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// One line of the throughput table.
pub(crate) struct Row {
    /// The phase's name.
    pub(crate) name: String,
    /// The round with the median req/s, or why no round succeeded.
    pub(crate) result: Result<Measured, String>,
    /// Every round's outcome, in order.
    pub(crate) rounds: Vec<Result<Round, String>>,
}

/// One round in brief.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Round {
    /// Successful requests per second.
    pub(crate) rps: f64,
    /// CPU share taken by processes outside the benchmark (see `Measured::foreign_pct`).
    pub(crate) foreign_pct: f64,
}

impl Row {
    /// This phase's req/s over `base`'s, round by round (interleaved rounds share conditions),
    /// then the median (the lower middle for an even count). None without a common good round.
    pub(crate) fn ratio_to(&self, base: &Row) -> Option<f64> {
        let mut ratios: Vec<f64> = self
            .rounds
            .iter()
            .zip(&base.rounds)
            .filter_map(|(a, b)| Some(a.as_ref().ok()?.rps / b.as_ref().ok()?.rps))
            .collect();
        ratios.sort_by(f64::total_cmp);
        ratios.get(ratios.len().checked_sub(1)? / 2).copied()
    }
}

/// What one round of a phase measured.
pub(crate) struct Measured {
    /// Load generator's view.
    pub(crate) load: LoadReport,
    /// CPU time of the router's processes during the measured window (None: no router).
    pub(crate) router_cpu: Option<CpuTime>,
    /// Peak RSS of the router's processes (VmHWM, summed over its processes), KiB.
    pub(crate) router_peak_rss_kib: Option<u64>,
    /// Share of the machine's CPU time that was busy during the measured window, in percent:
    /// near 100 means the result is bound by CPU, and every process's cost counts.
    pub(crate) machine_busy_pct: f64,
    /// The part of it used by processes outside the benchmark (other builds on a shared machine):
    /// more than a few percent means the round was disturbed.
    pub(crate) foreign_pct: f64,
    /// Distinct nodes that answered the pre-check: shows the router really spreads requests.
    pub(crate) nodes_seen: usize,
}

/// Runs `rounds` rounds of every phase, interleaved (all phases, then all again) so that a slow
/// spell on this shared machine hits every phase alike; each row reports its median round.
pub(crate) async fn run_rounds(bench: &mut Bench, kinds: &[RouterKind], rounds: usize) -> Vec<Row> {
    let mut runs: Vec<Vec<Result<Measured, String>>> = kinds.iter().map(|_| Vec::new()).collect();
    for round in 1..=rounds {
        for (kind, runs) in kinds.iter().zip(&mut runs) {
            let res = measure(bench, kind).await.map_err(|e| format!("{e:#}"));
            report::print_progress(&kind.name(), round, &res);
            runs.push(res);
        }
    }
    kinds
        .iter()
        .zip(runs)
        .map(|(k, r)| median_row(k.name(), r))
        .collect()
}

fn median_row(name: String, runs: Vec<Result<Measured, String>>) -> Row {
    let rounds = runs
        .iter()
        .map(|r| {
            r.as_ref().map_err(Clone::clone).map(|m| Round {
                rps: m.load.rps(),
                foreign_pct: m.foreign_pct,
            })
        })
        .collect();
    let mut ok: Vec<Measured> = Vec::new();
    let mut first_err = None;
    for r in runs {
        match r {
            Ok(m) => ok.push(m),
            Err(e) => first_err = first_err.or(Some(e)),
        }
    }
    ok.sort_by(|a, b| a.load.rps().total_cmp(&b.load.rps()));
    // The lower middle for an even count: the conservative choice.
    let result = match ok.len() {
        0 => Err(first_err.unwrap_or_else(|| "not run".to_owned())),
        n => Ok(ok.swap_remove((n - 1) / 2)),
    };
    Row {
        name,
        result,
        rounds,
    }
}

async fn measure(bench: &mut Bench, kind: &RouterKind) -> anyhow::Result<Measured> {
    let mut router = routers::start(bench, kind).await?;
    let nodes_seen = spread_check(&router.targets, 3 * bench.node_addrs.len()).await?;
    if !bench.args.warmup().is_zero() {
        run_load(bench, &router.targets, bench.args.warmup()).await?;
    }
    let pid = router.pid();
    let cpu_before = pid.map(tree_cpu);
    // This process's tree holds everything the benchmark runs: driver, nodes, router.
    let ours_before = tree_cpu(std::process::id());
    let machine_before = machine_cpu()?;
    let load = run_load(bench, &router.targets, bench.args.duration()).await?;
    let machine_after = machine_cpu()?;
    let ours = tree_cpu(std::process::id()).since(ours_before).total();
    let router_cpu = pid.zip(cpu_before).map(|(p, b)| tree_cpu(p).since(b));
    let window = machine_after.1 - machine_before.1;
    let router_peak_rss_kib = pid.map(|p| tree_status_kib(p, "VmHWM"));
    if let Some(child) = router.child.as_mut() {
        child.ensure_running()?;
    }
    bench.check_nodes()?;
    Ok(Measured {
        load,
        router_cpu,
        router_peak_rss_kib,
        machine_busy_pct: pct(machine_after.0 - machine_before.0, window),
        foreign_pct: pct(
            (machine_after.0 - machine_before.0).saturating_sub(ours),
            window,
        ),
        nodes_seen,
    })
}

fn pct(part: Duration, whole: Duration) -> f64 {
    100.0 * part.as_secs_f64() / whole.as_secs_f64().max(1e-9)
}

async fn run_load(
    bench: &Bench,
    targets: &[Target],
    duration: Duration,
) -> anyhow::Result<LoadReport> {
    load::run(LoadConfig {
        targets: targets.to_vec(),
        concurrency: bench.args.concurrency,
        // The deadline is the real bound; this only stops a runaway.
        max_requests: 100_000_000,
        duration,
        request: RequestSpec::get("/hello?bench=1"),
        request_timeout: REQUEST_TIMEOUT,
    })
    .await
}

/// Sends `count` requests one after another; all must succeed. Returns how many distinct nodes
/// answered (each node names itself in the body).
async fn spread_check(targets: &[Target], count: usize) -> anyhow::Result<usize> {
    let packet = RequestSpec::get("/check").packet()?;
    let mut buf = vec![0u8; CHUNK];
    let mut seen = BTreeSet::new();
    for i in 0..count {
        let target = &targets[i % targets.len()];
        let resp =
            tokio::time::timeout(REQUEST_TIMEOUT, exchange(target, &packet, 0, &mut buf)).await??;
        anyhow::ensure!(
            resp.is_ok(),
            "check request {i} via {target} answered {:?}",
            resp.status_line()
        );
        seen.insert(resp.small_body());
    }
    Ok(seen.len())
}
