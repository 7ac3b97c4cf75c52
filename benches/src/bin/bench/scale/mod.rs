//! The scale group (issue #15): routerd's control plane with thousands of registered nodes. Per
//! round, a fresh routerd and a simulated fleet (one Registry session per node over a chosen
//! number of connections, a report every second, lease 3 s): how long until every node is in the
//! pool, routerd's CPU and RSS while they report, the `/metrics` body's size and scrape time, the
//! CPU while nodes leave and join, and after every lease ran out at once and the fleet rejoined,
//! the agents still streaming for a node that is in no pool (stranded).

pub(crate) mod report;
mod stack;

use std::time::Duration;

use tokio::time::Instant;
use uwsgi_router_bench::fleet::{Fleet, FleetConfig};
use uwsgi_router_bench::http_load;
use uwsgi_router_bench::procfs::{machine_cpu, status_kib, tree_cpu};

use crate::setup::Bench;
use stack::Routerd;

/// Every agent's report interval; the lease is three of them.
pub(crate) const INTERVAL: Duration = Duration::from_secs(1);
/// Time for the whole fleet to be in the pool; the round goes on without it (and shows how many
/// nodes the pool held), since sessions the router lost are what the round is looking for.
const JOIN_LIMIT: Duration = Duration::from_secs(30);
/// How often the pool's size is polled while waiting.
const POLL: Duration = Duration::from_millis(50);
/// Rest after a phase, so the next window does not measure its tail.
const SETTLE: Duration = Duration::from_secs(2);
/// Scrapes per round; the round shows their median time.
const SCRAPES: usize = 5;
/// Reports held back for this long: every lease (3 intervals) runs out.
const PAUSE: Duration = Duration::from_millis(4500);
/// Time for the fleet to be whole again after reports resume.
const REJOIN_LIMIT: Duration = Duration::from_secs(20);

/// One fleet shape to measure.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    pub(crate) nodes: usize,
    /// HTTP/2 connections the sessions share; equal to `nodes` for one per node.
    pub(crate) connections: usize,
}

/// One shape's rounds.
pub(crate) struct Row {
    pub(crate) shape: Shape,
    pub(crate) rounds: Vec<Result<Measured, String>>,
}

/// One round's numbers.
#[derive(Debug, Clone)]
pub(crate) struct Measured {
    /// From the first connect until the router's pool held every node (None: not within
    /// [`JOIN_LIMIT`]).
    pub(crate) visible_after: Option<Duration>,
    /// The pool's size at that point.
    pub(crate) visible_nodes: usize,
    /// Agents registered as they believe, for a node in no pool, after that join.
    pub(crate) stranded_after_join: usize,
    /// routerd's CPU time over that join.
    pub(crate) join_cpu: Duration,
    /// routerd's CPU over the steady window, percent of one core.
    pub(crate) steady_cpu_pct: f64,
    /// Share of the machine's CPU busy during the steady window, percent.
    pub(crate) machine_busy_pct: f64,
    /// VmRSS at the end of the steady window, KiB.
    pub(crate) rss_kib: u64,
    /// `/metrics` body size, bytes.
    pub(crate) scrape_bytes: usize,
    /// Median time of a whole `/metrics` GET.
    pub(crate) scrape: Duration,
    /// routerd's CPU while nodes left and joined, percent of one core.
    pub(crate) churn_cpu_pct: f64,
    /// Membership changes (leaves plus joins) made in the churn window, per second.
    pub(crate) churn_rate: f64,
    /// VmRSS after the churn window, KiB.
    pub(crate) churn_rss_kib: u64,
    /// Nodes that left the pool while reports were held back.
    pub(crate) expired: usize,
    /// From resuming reports until the pool and the fleet were whole again (None: not in time).
    pub(crate) rejoin_after: Option<Duration>,
    /// Agents streaming as registered for a node in no pool, in two checks a second apart.
    pub(crate) stranded: usize,
    /// `Removed` messages the fleet received in the round.
    pub(crate) removed_msgs: u64,
}

/// The shapes `--scale-nodes` x `--scale-connections` ask for (0 connections: one per node).
pub(crate) fn shapes(bench: &Bench) -> Vec<Shape> {
    let a = &bench.args;
    let mut shapes = Vec::new();
    for &nodes in &a.scale_nodes {
        for &c in &a.scale_connections {
            let connections = if c == 0 { nodes } else { c.min(nodes) };
            shapes.push(Shape { nodes, connections });
        }
    }
    shapes
}

/// Runs `--rounds` rounds of every shape, each on a fresh routerd.
pub(crate) async fn run(bench: &Bench, shapes: &[Shape]) -> Vec<Row> {
    let mut rows: Vec<Row> = shapes
        .iter()
        .map(|&shape| Row {
            shape,
            rounds: Vec::new(),
        })
        .collect();
    for round in 1..=usize::from(bench.args.rounds) {
        for row in &mut rows {
            let res = measure(bench, row.shape)
                .await
                .map_err(|e| format!("{e:#}"));
            report::print_progress(row.shape, round, &res);
            row.rounds.push(res);
        }
    }
    rows
}

async fn measure(bench: &Bench, shape: Shape) -> anyhow::Result<Measured> {
    let mut routerd = Routerd::start(bench, shape).await?;
    let pid = routerd.pid();
    let window = bench.args.duration();
    let config = FleetConfig {
        control: routerd.control,
        pool: stack::POOL.to_owned(),
        connections: shape.connections,
        interval: INTERVAL,
    };
    let cpu0 = tree_cpu(pid);
    let t0 = Instant::now();
    let mut fleet = Fleet::connect(config).await?;
    join(&mut fleet, shape.nodes, bench.args.scale_join_rate).await;
    let (visible_after, visible_nodes) = wait_pool(&fleet, shape.nodes, t0).await?;
    let join_cpu = tree_cpu(pid).since(cpu0).total();
    let stranded_after_join = stranded(&fleet).await?;
    routerd.child.ensure_running()?;

    tokio::time::sleep(SETTLE).await;
    let steady = cpu_over(pid, window, None).await?;
    let rss_kib = status_kib(pid, "VmRSS")?;
    let (scrape_bytes, scrape) = scrapes(routerd.metrics).await?;

    let churn = bench.args.scale_churn;
    let churned = cpu_over(pid, window, Some((&mut fleet, churn))).await?;
    wait_pool(&fleet, shape.nodes, Instant::now()).await?;
    let churn_rss_kib = status_kib(pid, "VmRSS")?;

    let removed_before = fleet.counts().removed;
    let (expired, rejoin_after) = expire_and_rejoin(&fleet, shape.nodes).await?;
    let stranded = stranded(&fleet).await?;
    routerd.child.ensure_running()?;
    Ok(Measured {
        visible_after,
        visible_nodes,
        stranded_after_join,
        join_cpu,
        steady_cpu_pct: steady.cpu_pct,
        machine_busy_pct: steady.machine_pct,
        rss_kib,
        scrape_bytes,
        scrape,
        churn_cpu_pct: churned.cpu_pct,
        churn_rate: churned.changes as f64 / churned.wall.as_secs_f64(),
        churn_rss_kib,
        expired,
        rejoin_after,
        stranded,
        removed_msgs: fleet.counts().removed - removed_before,
    })
}

/// Starts `nodes` agents: all at once, or `rate` per second (0: all at once) in steps of 100 ms.
async fn join(fleet: &mut Fleet, nodes: usize, rate: u32) {
    if rate == 0 {
        fleet.join(nodes);
        return;
    }
    let step = Duration::from_millis(100);
    let per_step = (rate as usize / 10).max(1);
    let mut tick = tokio::time::interval(step);
    while fleet.len() < nodes {
        tick.tick().await;
        fleet.join(per_step.min(nodes - fleet.len()));
    }
}

/// Polls ListPools until the pool holds `nodes` nodes or [`JOIN_LIMIT`] passed `since`: how long
/// it took (None: not in time) and the pool's size then.
async fn wait_pool(
    fleet: &Fleet,
    nodes: usize,
    since: Instant,
) -> anyhow::Result<(Option<Duration>, usize)> {
    loop {
        let size = fleet.pool_size().await?;
        if size >= nodes {
            return Ok((Some(since.elapsed()), size));
        }
        if since.elapsed() >= JOIN_LIMIT {
            return Ok((None, size));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// What one measured window saw.
struct Window {
    /// routerd's CPU, percent of one core.
    cpu_pct: f64,
    /// The machine's busy share, percent.
    machine_pct: f64,
    /// Membership changes made (leaves plus joins).
    changes: usize,
    wall: Duration,
}

/// routerd's CPU over `window` as percent of one core, and the machine's busy share. With
/// `churn = (fleet, rate)`, `rate` membership changes per second are made meanwhile: half of them
/// the oldest nodes leaving, half new nodes joining, in steps of 100 ms.
async fn cpu_over(
    pid: u32,
    window: Duration,
    churn: Option<(&mut Fleet, u32)>,
) -> anyhow::Result<Window> {
    let (busy0, total0) = machine_cpu()?;
    let mut changes = 0;
    let cpu0 = tree_cpu(pid);
    let t0 = Instant::now();
    match churn {
        Some((fleet, rate)) if rate > 0 => {
            let step = Duration::from_millis(100);
            // Carry fractions over, so that any rate is met on average.
            let per_step = f64::from(rate) / 2.0 * step.as_secs_f64();
            let mut owed = 0.0;
            let mut tick = tokio::time::interval(step);
            while t0.elapsed() < window {
                tick.tick().await;
                owed += per_step;
                let n = owed as usize;
                owed -= n as f64;
                fleet.leave_oldest(n);
                fleet.join(n);
                changes += 2 * n;
            }
        }
        _ => tokio::time::sleep(window).await,
    }
    let wall = t0.elapsed();
    let cpu = tree_cpu(pid).since(cpu0).total().as_secs_f64();
    let (busy1, total1) = machine_cpu()?;
    let machine = (busy1 - busy0).as_secs_f64() / (total1 - total0).as_secs_f64().max(1e-9);
    Ok(Window {
        cpu_pct: cpu / wall.as_secs_f64() * 100.0,
        machine_pct: machine * 100.0,
        changes,
        wall,
    })
}

/// `SCRAPES` GETs of `/metrics`: the body size and the median time.
async fn scrapes(addr: std::net::SocketAddr) -> anyhow::Result<(usize, Duration)> {
    let mut times = Vec::with_capacity(SCRAPES);
    let mut bytes = 0;
    for _ in 0..SCRAPES {
        let t = Instant::now();
        let (status, body) = http_load::get(addr, "/metrics", Duration::from_secs(10)).await?;
        times.push(t.elapsed());
        anyhow::ensure!(status == 200, "GET /metrics: HTTP {status}");
        bytes = body.len();
    }
    times.sort();
    Ok((bytes, times[(times.len() - 1) / 2]))
}

/// Holds every report back until each lease ran out, then lets them go: the nodes that left the
/// pool meanwhile, and how long after resuming the pool and the fleet were whole again.
async fn expire_and_rejoin(
    fleet: &Fleet,
    nodes: usize,
) -> anyhow::Result<(usize, Option<Duration>)> {
    fleet.pause_reports(true);
    tokio::time::sleep(PAUSE).await;
    let left = fleet.pool_size().await?;
    fleet.pause_reports(false);
    let t0 = Instant::now();
    while t0.elapsed() < REJOIN_LIMIT {
        if fleet.counts().registered == nodes && fleet.pool_size().await? == nodes {
            return Ok((nodes.saturating_sub(left), Some(t0.elapsed())));
        }
        tokio::time::sleep(POLL).await;
    }
    Ok((nodes.saturating_sub(left), None))
}

/// Agents that believe their node is registered while the pool has no such node, in two checks a
/// second apart with the same registration (so one re-announcing between the reads is not
/// counted). The agents are read before the pool each time: a node accepted after the agent read
/// cannot make it look stranded.
async fn stranded(fleet: &Fleet) -> anyhow::Result<usize> {
    let first = absent(fleet).await?;
    tokio::time::sleep(INTERVAL).await;
    let second = absent(fleet).await?;
    Ok(first.iter().filter(|s| second.contains(s)).count())
}

async fn absent(fleet: &Fleet) -> anyhow::Result<Vec<(std::sync::Arc<str>, u64)>> {
    let registered = fleet.registered();
    let pool = fleet.pool_nodes().await?;
    Ok(registered
        .into_iter()
        .filter(|(id, _)| !pool.contains(&**id))
        .collect())
}
