//! The front group (issue #13): nginx in front of the fast nodes, the HTTP load on nginx, and
//! what sits between nginx and the nodes: nothing (`uwsgi_pass` with `least_conn`), routerd's
//! uwsgi listener, routerd's HTTP listener over kept-alive connections (TCP and UNIX), uWSGI's
//! HTTP router over kept-alive connections, or HAProxy in `mode tcp`. Interleaved rounds; the CPU
//! per request of nginx and of the router, from procfs over each measured window.

pub(crate) mod report;
mod stack;

use std::net::SocketAddr;
use std::time::Duration;

use uwsgi_router_bench::child::Child;
use uwsgi_router_bench::http_load::{self, HttpLoadConfig, HttpLoadReport};
use uwsgi_router_bench::procfs::{machine_cpu, tree_cpu, CpuTime};

use crate::setup::Bench;
use stack::Stack;

/// The Host header of every request.
const HOST: &str = "bench.local";
/// A request unanswered after this counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What nginx passes the requests to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// (a) `uwsgi_pass` to `upstream { least_conn; }` of the nodes.
    Direct,
    /// (b) `uwsgi_pass` to routerd's uwsgi listener.
    RouterdUwsgi,
    /// (c) `proxy_pass` with upstream keep-alive to routerd's HTTP listener over TCP.
    RouterdHttp,
    /// (c') the same over a UNIX socket.
    RouterdHttpUnix,
    /// (d) `proxy_pass` with upstream keep-alive to uWSGI's HTTP router (`--http-keepalive`).
    UwsgiHttp,
    /// (e) `uwsgi_pass` to HAProxy in `mode tcp`.
    Haproxy,
}

impl Phase {
    /// In table order; the first is the one the others are compared to.
    pub(crate) const ALL: [Phase; 6] = [
        Self::Direct,
        Self::RouterdUwsgi,
        Self::RouterdHttp,
        Self::RouterdHttpUnix,
        Self::UwsgiHttp,
        Self::Haproxy,
    ];

    /// The label in the list.
    pub(crate) fn letter(self) -> &'static str {
        match self {
            Self::Direct => "(a)",
            Self::RouterdUwsgi => "(b)",
            Self::RouterdHttp => "(c)",
            Self::RouterdHttpUnix => "(c')",
            Self::UwsgiHttp => "(d)",
            Self::Haproxy => "(e)",
        }
    }

    /// The name in tables.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Direct => "nginx uwsgi_pass least_conn -> nodes",
            Self::RouterdUwsgi => "nginx uwsgi_pass -> routerd uwsgi",
            Self::RouterdHttp => "nginx keepalive -> routerd HTTP (TCP)",
            Self::RouterdHttpUnix => "nginx keepalive -> routerd HTTP (UNIX)",
            Self::UwsgiHttp => "nginx keepalive -> uWSGI HTTP router",
            Self::Haproxy => "nginx uwsgi_pass -> HAProxy mode tcp",
        }
    }

    /// The name in `--only` (`front` selects them all), file names and logs.
    pub(crate) fn slug(self) -> &'static str {
        match self {
            Self::Direct => "front-direct",
            Self::RouterdUwsgi => "front-routerd-uwsgi",
            Self::RouterdHttp => "front-routerd-http-tcp",
            Self::RouterdHttpUnix => "front-routerd-http-unix",
            Self::UwsgiHttp => "front-uwsgi-http",
            Self::Haproxy => "front-haproxy",
        }
    }
}

/// The nodes behind every phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum NodeKind {
    /// The bench's own `fast-node`s.
    Fast,
    /// uWSGI nodes running the heterogeneous pool's WSGI app without its sleep
    /// (`--hetero-processes` processes each).
    Uwsgi,
}

impl NodeKind {
    /// How the table's intro names them.
    pub(crate) fn describe(self, count: usize, processes: u32) -> String {
        match self {
            Self::Fast => format!("{count} fast nodes"),
            Self::Uwsgi => format!(
                "{count} uWSGI Python nodes ({processes} processes each, the WSGI app answering at once)"
            ),
        }
    }
}

/// One phase's rounds.
pub(crate) struct Row {
    pub(crate) phase: Phase,
    pub(crate) rounds: Vec<Result<Measured, String>>,
}

/// One measured window.
pub(crate) struct Measured {
    pub(crate) load: HttpLoadReport,
    /// CPU time of nginx (master and worker) over the window.
    pub(crate) nginx_cpu: CpuTime,
    /// CPU time of the router's processes over the window (None for (a)).
    pub(crate) router_cpu: Option<CpuTime>,
    /// Share of the machine's CPU busy during the window, percent.
    pub(crate) machine_busy_pct: f64,
    /// The part of it taken by processes outside the benchmark.
    pub(crate) foreign_pct: f64,
    /// Distinct nodes that answered the pre-check.
    pub(crate) nodes_seen: usize,
}

impl Measured {
    /// Microseconds of CPU per successful request.
    fn per_request_us(&self, t: CpuTime) -> f64 {
        t.total().as_secs_f64() * 1e6 / self.load.ok.max(1) as f64
    }

    /// nginx's CPU per request, microseconds.
    pub(crate) fn nginx_us(&self) -> f64 {
        self.per_request_us(self.nginx_cpu)
    }

    /// The router's CPU per request, microseconds (0 without a router).
    pub(crate) fn router_us(&self) -> f64 {
        self.router_cpu.map_or(0.0, |t| self.per_request_us(t))
    }

    /// Both together.
    pub(crate) fn both_us(&self) -> f64 {
        self.nginx_us() + self.router_us()
    }
}

/// The phases of the group `--only` selects: none unless an entry starts with `front` (or no
/// `--only` at all).
pub(crate) fn wanted(bench: &Bench) -> Vec<Phase> {
    let only = &bench.args.only;
    Phase::ALL
        .into_iter()
        .filter(|p| {
            only.is_empty()
                || only.iter().any(|o| {
                    let o = o.replace(' ', "-");
                    o.starts_with("front") && p.slug().contains(&o)
                })
        })
        .collect()
}

/// Starts the nodes (for `Uwsgi`) and the stack once, then runs `rounds` interleaved rounds of
/// every phase.
pub(crate) async fn run(bench: &mut Bench, phases: &[Phase], kind: NodeKind) -> Vec<Row> {
    eprintln!(
        "[bench] front ({kind:?} nodes): starting routerd, uWSGI's HTTP router, HAProxy and nginx"
    );
    let mut rows: Vec<Row> = phases
        .iter()
        .map(|p| Row {
            phase: *p,
            rounds: Vec::new(),
        })
        .collect();
    let started = match kind {
        NodeKind::Fast => Ok((bench.node_addrs.clone(), Vec::new())),
        NodeKind::Uwsgi => start_uwsgi_nodes(bench).await,
    };
    let started = match started {
        Ok((addrs, uwsgi)) => stack::start(bench, &addrs).await.map(|s| (s, uwsgi)),
        Err(e) => Err(e),
    };
    let (mut stack, mut uwsgi_nodes) = match started {
        Ok(s) => s,
        Err(e) => {
            let e = format!("starting the front stack: {e:#}");
            eprintln!("[bench] front: FAILED: {e}");
            for r in &mut rows {
                r.rounds.push(Err(e.clone()));
            }
            return rows;
        }
    };
    for round in 1..=usize::from(bench.args.rounds) {
        for row in &mut rows {
            let res = measure(bench, &mut stack, &mut uwsgi_nodes, row.phase)
                .await
                .map_err(|e| format!("{e:#}"));
            report::print_progress(row.phase, round, &res);
            row.rounds.push(res);
        }
    }
    rows
}

fn load_config(bench: &Bench, stack: &Stack, p: Phase, duration: Duration) -> HttpLoadConfig {
    HttpLoadConfig {
        target: stack.port(p),
        host: HOST.to_owned(),
        path: "/hello?bench=front".to_owned(),
        concurrency: bench.args.concurrency,
        // The deadline is the real bound; this only stops a runaway.
        max_requests: 10_000_000,
        duration,
        request_timeout: REQUEST_TIMEOUT,
    }
}

/// Three uWSGI nodes without a sleep per request; their addresses and processes.
async fn start_uwsgi_nodes(bench: &Bench) -> anyhow::Result<(Vec<SocketAddr>, Vec<Child>)> {
    let app = crate::hetero::stack::write_app(bench)?;
    let mut addrs = Vec::new();
    let mut children = Vec::new();
    for i in 1..=3 {
        let name = format!("node{i}");
        let n = crate::hetero::stack::start_node(bench, &app, &name, 0, None).await?;
        addrs.push(n.addr);
        children.extend(n.child);
    }
    Ok((addrs, children))
}

fn check_all(bench: &mut Bench, stack: &mut Stack, nodes: &mut [Child]) -> anyhow::Result<()> {
    stack.check()?;
    bench.check_nodes()?;
    nodes.iter_mut().try_for_each(Child::ensure_running)
}

async fn measure(
    bench: &mut Bench,
    stack: &mut Stack,
    nodes: &mut [Child],
    p: Phase,
) -> anyhow::Result<Measured> {
    check_all(bench, stack, nodes)?;
    let nodes_seen = spread_check(stack, p, 9).await?;
    if !bench.args.warmup().is_zero() {
        http_load::run(load_config(bench, stack, p, bench.args.warmup())).await?;
    }
    let nginx_pid = stack.nginx.pid();
    let router_pid = stack.router_pid(p);
    let nginx_before = tree_cpu(nginx_pid);
    let router_before = router_pid.map(tree_cpu);
    let ours_before = tree_cpu(std::process::id());
    let machine_before = machine_cpu()?;
    let load = http_load::run(load_config(bench, stack, p, bench.args.duration())).await?;
    let machine_after = machine_cpu()?;
    let ours = tree_cpu(std::process::id()).since(ours_before).total();
    let nginx_cpu = tree_cpu(nginx_pid).since(nginx_before);
    let router_cpu = router_pid
        .zip(router_before)
        .map(|(r, b)| tree_cpu(r).since(b));
    check_all(bench, stack, nodes)?;
    let busy = machine_after.0.saturating_sub(machine_before.0);
    let window = machine_after.1.saturating_sub(machine_before.1);
    Ok(Measured {
        load,
        nginx_cpu,
        router_cpu,
        machine_busy_pct: pct(busy, window),
        foreign_pct: pct(busy.saturating_sub(ours), window),
        nodes_seen,
    })
}

fn pct(part: Duration, whole: Duration) -> f64 {
    100.0 * part.as_secs_f64() / whole.as_secs_f64().max(1e-9)
}

/// `count` requests one after another through nginx; all must succeed. Returns how many distinct
/// nodes answered.
async fn spread_check(stack: &Stack, p: Phase, count: usize) -> anyhow::Result<usize> {
    let report = http_load::run(HttpLoadConfig {
        target: stack.port(p),
        host: HOST.to_owned(),
        path: "/check".to_owned(),
        concurrency: 1,
        max_requests: count as u64,
        duration: Duration::from_secs(10),
        request_timeout: REQUEST_TIMEOUT,
    })
    .await?;
    anyhow::ensure!(
        report.errors.total() == 0 && report.ok == count as u64,
        "{} of {count} check requests through nginx failed: {}",
        report.errors.total(),
        report.errors.first.unwrap_or_default()
    );
    Ok(report.by_node.len())
}
