//! The heterogeneous pool (issue #3): 3 uWSGI nodes, one 10x slower, behind each contender, all
//! measured the same way: HTTP load on nginx, which passes each request (`uwsgi_pass`) to routerd
//! (least-load with static nodes, least-load fed by agents, round-robin), straight to the nodes
//! (`upstream { least_conn; }`), or to uWSGI's FastRouter (subscriptions, `lrc`). Then one node is
//! SIGKILLed under load through the agent-fed routerd.

mod kill;
mod prom;
pub(crate) mod report;
pub(crate) mod stack;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use uwsgi_router_bench::http_load::{self, HttpLoadConfig, HttpLoadReport};
use uwsgi_router_bench::procfs::{machine_cpu, tree_cpu};

use crate::setup::Bench;
use prom::Scrape;
use stack::Stack;

pub(crate) use kill::Kill;

/// The Host header of every request (FastRouter's subscription key).
pub(crate) const HOST: &str = "bench.local";
/// A request unanswered after this counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often routerd's view of its nodes is sampled during a measured window.
const SAMPLE_EVERY: Duration = Duration::from_millis(200);

/// What nginx passes the requests to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Contender {
    /// routerd `least-load`, nodes listed in its config: only what the router sees itself.
    RouterdLeastLoad,
    /// routerd `least-load`, nodes registered by a `router-agent` each, which reports the node's
    /// busy workers and listen queue from uWSGI's stats server every 250 ms.
    RouterdAgents,
    /// routerd `round-robin`, static nodes.
    RouterdRoundRobin,
    /// nginx `upstream { least_conn; server ...; }` straight to the nodes.
    NginxLeastConn,
    /// uWSGI FastRouter, nodes subscribed (`--subscribe-to`), `--subscription-algo lrc`.
    FastRouter,
}

impl Contender {
    /// In table order.
    pub(crate) const ALL: [Contender; 5] = [
        Self::RouterdLeastLoad,
        Self::RouterdAgents,
        Self::RouterdRoundRobin,
        Self::NginxLeastConn,
        Self::FastRouter,
    ];

    /// The name in tables.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::RouterdLeastLoad => "routerd least-load (static nodes)",
            Self::RouterdAgents => "routerd least-load (agents)",
            Self::RouterdRoundRobin => "routerd round-robin",
            Self::NginxLeastConn => "nginx least_conn",
            Self::FastRouter => "FastRouter lrc (subscribed)",
        }
    }

    /// The name in `--only` (after `hetero-`), file names and logs.
    pub(crate) fn slug(self) -> &'static str {
        match self {
            Self::RouterdLeastLoad => "routerd-least-load-static",
            Self::RouterdAgents => "routerd-least-load-agents",
            Self::RouterdRoundRobin => "routerd-round-robin",
            Self::NginxLeastConn => "nginx-least-conn",
            Self::FastRouter => "fastrouter-lrc",
        }
    }

    /// True for the routerd contenders.
    pub(crate) fn is_routerd(self) -> bool {
        matches!(
            self,
            Self::RouterdLeastLoad | Self::RouterdAgents | Self::RouterdRoundRobin
        )
    }
}

/// The whole group's results.
pub(crate) struct Hetero {
    /// Node names and their sleep per request, in order.
    pub(crate) nodes: Vec<(String, u64)>,
    /// One per contender run.
    pub(crate) rows: Vec<Row>,
    /// The kill phase, if run.
    pub(crate) kill: Option<Result<Kill, String>>,
}

/// One contender's rounds.
pub(crate) struct Row {
    pub(crate) contender: Contender,
    pub(crate) rounds: Vec<Result<Measured, String>>,
}

/// One measured window.
pub(crate) struct Measured {
    pub(crate) load: HttpLoadReport,
    /// Share of the machine's CPU busy during the window, percent.
    pub(crate) machine_busy_pct: f64,
    /// The part of it taken by processes outside the benchmark.
    pub(crate) foreign_pct: f64,
    /// routerd's own view of each node over the window (routerd contenders).
    pub(crate) router_view: Vec<NodeView>,
}

/// routerd's view of one node, averaged over the samples of a window.
#[derive(Debug, Clone, Default)]
pub(crate) struct NodeView {
    pub(crate) node: String,
    /// Requests routerd had in flight on it.
    pub(crate) in_flight: f64,
    /// The peak-EWMA latency estimate least-load uses, milliseconds: mean and range over the samples.
    pub(crate) latency_ms: f64,
    pub(crate) latency_min_ms: f64,
    pub(crate) latency_max_ms: f64,
    /// Reported busy workers (agents only).
    pub(crate) busy: Option<f64>,
    /// Reported listen queue (agents only).
    pub(crate) queue: Option<f64>,
    samples: u32,
}

/// True when any part of the group is wanted.
pub(crate) fn wanted(bench: &Bench) -> bool {
    Contender::ALL
        .iter()
        .any(|c| bench.args.wants_hetero(c.slug()))
        || bench.args.wants_hetero("kill")
}

/// Starts the stack, runs the rounds of every wanted contender (interleaved), then the kill phase.
/// A stack that fails to start fails every row, with the reason.
pub(crate) async fn run(bench: &mut Bench) -> Hetero {
    let a = &bench.args;
    let nodes = vec![
        ("node1".to_owned(), a.hetero_fast_ms),
        ("node2".to_owned(), a.hetero_fast_ms),
        ("node3".to_owned(), a.hetero_slow_ms),
    ];
    let contenders: Vec<Contender> = Contender::ALL
        .into_iter()
        .filter(|c| a.wants_hetero(c.slug()))
        .collect();
    let want_kill = a.wants_hetero("kill");
    eprintln!("[bench] hetero: starting 3 uWSGI nodes, FastRouter, 3 routerd, 3 agents, nginx");
    let mut stack = match stack::start(bench).await {
        Ok(s) => s,
        Err(e) => {
            let e = format!("starting the heterogeneous stack: {e:#}");
            eprintln!("[bench] hetero: FAILED: {e}");
            return Hetero {
                nodes,
                rows: contenders
                    .iter()
                    .map(|c| Row {
                        contender: *c,
                        rounds: vec![Err(e.clone())],
                    })
                    .collect(),
                kill: want_kill.then_some(Err(e)),
            };
        }
    };
    let mut rows: Vec<Row> = contenders
        .iter()
        .map(|c| Row {
            contender: *c,
            rounds: Vec::new(),
        })
        .collect();
    for round in 1..=usize::from(bench.args.rounds) {
        for row in &mut rows {
            let res = measure(bench, &mut stack, row.contender)
                .await
                .map_err(|e| format!("{e:#}"));
            report::print_progress(row.contender, round, &res);
            row.rounds.push(res);
        }
    }
    let kill = if want_kill {
        let res = kill::run(bench, &mut stack)
            .await
            .map_err(|e| format!("{e:#}"));
        if let Err(e) = &res {
            eprintln!("[bench] hetero kill: FAILED: {e}");
        }
        Some(res)
    } else {
        None
    };
    // Every process of the stack is killed here (process groups), whatever happened above.
    drop(stack);
    Hetero { nodes, rows, kill }
}

fn load_config(bench: &Bench, stack: &Stack, c: Contender, duration: Duration) -> HttpLoadConfig {
    HttpLoadConfig {
        target: stack.port(c),
        host: HOST.to_owned(),
        path: "/hello?bench=hetero".to_owned(),
        concurrency: bench.args.concurrency,
        // The deadline is the real bound; this only stops a runaway.
        max_requests: 10_000_000,
        duration,
        request_timeout: REQUEST_TIMEOUT,
    }
}

async fn measure(bench: &Bench, stack: &mut Stack, c: Contender) -> anyhow::Result<Measured> {
    stack.check()?;
    if !bench.args.warmup().is_zero() {
        http_load::run(load_config(bench, stack, c, bench.args.warmup())).await?;
    }
    let sampler = stack
        .routerd(c)
        .map(|r| Sampler::start(r.metrics, c == Contender::RouterdAgents));
    let ours_before = tree_cpu(std::process::id());
    let machine_before = machine_cpu()?;
    let load = http_load::run(load_config(bench, stack, c, bench.args.duration())).await?;
    let machine_after = machine_cpu()?;
    let ours = tree_cpu(std::process::id()).since(ours_before).total();
    let router_view = match sampler {
        Some(s) => s
            .stop()
            .await
            .into_iter()
            .map(|mut v| {
                v.node = stack.node_name(&v.node);
                v
            })
            .collect(),
        None => Vec::new(),
    };
    stack.check()?;
    let busy = machine_after.0.saturating_sub(machine_before.0);
    let window = machine_after.1.saturating_sub(machine_before.1);
    Ok(Measured {
        load,
        machine_busy_pct: pct(busy, window),
        foreign_pct: pct(busy.saturating_sub(ours), window),
        router_view,
    })
}

fn pct(part: Duration, whole: Duration) -> f64 {
    100.0 * part.as_secs_f64() / whole.as_secs_f64().max(1e-9)
}

/// Samples a routerd's per-node gauges in the background until stopped.
struct Sampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<NodeView>>,
}

impl Sampler {
    fn start(metrics: std::net::SocketAddr, reported: bool) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let task = tokio::spawn(async move {
            let mut views: BTreeMap<String, NodeView> = BTreeMap::new();
            // Bounded: a window is at most two minutes long.
            for _ in 0..1_000 {
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                if let Ok(s) = Scrape::get(metrics).await {
                    add_sample(&mut views, &s, reported);
                }
                tokio::time::sleep(SAMPLE_EVERY).await;
            }
            views
                .into_values()
                .map(|mut v| {
                    let n = f64::from(v.samples.max(1));
                    v.in_flight /= n;
                    v.latency_ms /= n;
                    v.busy = v.busy.map(|b| b / n);
                    v.queue = v.queue.map(|q| q / n);
                    v
                })
                .collect()
        });
        Self { stop, task }
    }

    async fn stop(self) -> Vec<NodeView> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap_or_default()
    }
}

fn add_sample(views: &mut BTreeMap<String, NodeView>, s: &Scrape, reported: bool) {
    let pool = [("pool", "default")];
    let in_flight: Vec<(String, f64)> = s
        .by_label("uwsgi_router_node_in_flight_requests", &pool, "node")
        .collect();
    for (node, v) in in_flight {
        let labels = [("pool", "default"), ("node", node.as_str())];
        let view = views.entry(node.clone()).or_insert_with(|| NodeView {
            node: node.clone(),
            ..NodeView::default()
        });
        view.samples += 1;
        view.in_flight += v;
        let latency = 1e3
            * s.value("uwsgi_router_node_latency_seconds", &labels)
                .unwrap_or(0.0);
        view.latency_min_ms = if view.samples == 1 {
            latency
        } else {
            view.latency_min_ms.min(latency)
        };
        view.latency_max_ms = view.latency_max_ms.max(latency);
        view.latency_ms += latency;
        if reported {
            let add = |acc: &mut Option<f64>, name: &str| {
                if let Some(v) = s.value(name, &labels) {
                    *acc = Some(acc.unwrap_or(0.0) + v);
                }
            };
            add(&mut view.busy, "uwsgi_router_node_busy_workers");
            add(&mut view.queue, "uwsgi_router_node_listen_queue");
        }
    }
}
