//! The heterogeneous pool and everything in front of it, started once for the whole phase group:
//! uWSGI nodes (real uWSGI running a tiny WSGI app that sleeps), uWSGI's FastRouter with the nodes
//! subscribed to it, routerd instances (static nodes, and one fed by a `router-agent` per node),
//! and one nginx with an HTTP port per contender.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use anyhow::Context as _;
use tokio::time::Instant;
use uwsgi_router_bench::child::{free_port, Child};
use uwsgi_router_bench::client::exchange;
use uwsgi_router_bench::http_load;
use uwsgi_router_bench::request::RequestSpec;
use uwsgi_router_bench::target::Target;
use uwsgi_router_bench::CHUNK;

use super::prom::Scrape;
use super::{Contender, HOST};
use crate::nginx::NginxConf;
use crate::setup::{Bench, START_LIMIT};

/// The WSGI app every node runs (sleeps SLEEP_MS, answers with NODE_NAME).
const APP: &str = include_str!("../../../../hetero_app.py");
/// Agents' report interval.
pub(crate) const AGENT_INTERVAL: &str = "250ms";

/// One uWSGI instance.
pub(crate) struct UwsgiNode {
    /// `node1`...; the app answers with it.
    pub(crate) name: String,
    /// Its uwsgi socket.
    pub(crate) addr: SocketAddr,
    /// Its stats server.
    pub(crate) stats: SocketAddr,
    /// Sleep per request.
    pub(crate) delay_ms: u64,
    /// The master and its workers (one process group); None once killed.
    pub(crate) child: Option<Child>,
}

/// One routerd in front of the nodes.
pub(crate) struct Routerd {
    /// Which contender it serves.
    pub(crate) contender: Contender,
    /// Its uwsgi listener (nginx's upstream).
    pub(crate) listen: SocketAddr,
    /// Its metrics listener.
    pub(crate) metrics: SocketAddr,
    /// Its control listener (agents register there), for the agent-fed one.
    pub(crate) control: Option<SocketAddr>,
    pub(crate) child: Child,
}

/// Everything the hetero phases run against. Dropping it kills every process (each guard kills
/// its process group).
pub(crate) struct Stack {
    pub(crate) nodes: Vec<UwsgiNode>,
    pub(crate) routerds: Vec<Routerd>,
    /// HTTP port of each contender on nginx.
    pub(crate) ports: Vec<(Contender, SocketAddr)>,
    pub(crate) fastrouter: Child,
    pub(crate) agents: Vec<Child>,
    pub(crate) nginx: Child,
}

impl Stack {
    /// nginx's port for `c`.
    pub(crate) fn port(&self, c: Contender) -> SocketAddr {
        self.ports
            .iter()
            .find(|(k, _)| *k == c)
            .map(|(_, p)| *p)
            .expect("every contender has a port")
    }

    /// The routerd serving `c`, if it is one.
    pub(crate) fn routerd(&self, c: Contender) -> Option<&Routerd> {
        self.routerds.iter().find(|r| r.contender == c)
    }

    /// The node's name for an id used in routerd's metrics (an address, or the agent's node id).
    pub(crate) fn node_name(&self, id: &str) -> String {
        self.nodes
            .iter()
            .find(|n| n.name == id || n.addr.to_string() == id)
            .map_or_else(|| id.to_owned(), |n| n.name.clone())
    }

    /// Fails with the end of its log if any process died (nodes killed on purpose excepted).
    pub(crate) fn check(&mut self) -> anyhow::Result<()> {
        for n in &mut self.nodes {
            if let Some(c) = n.child.as_mut() {
                c.ensure_running()?;
            }
        }
        for r in &mut self.routerds {
            r.child.ensure_running()?;
        }
        for a in &mut self.agents {
            a.ensure_running()?;
        }
        self.fastrouter.ensure_running()?;
        self.nginx.ensure_running()
    }
}

/// Starts the whole stack and waits until every contender serves through nginx.
pub(crate) async fn start(bench: &Bench) -> anyhow::Result<Stack> {
    let a = &bench.args;
    let app = write_app(bench)?;

    // FastRouter first, so the nodes' first subscription (sent at their start) reaches it.
    let fr_listen = free_port()?;
    let fr_sub = free_port()?;
    let fr_stats = free_port()?;
    let mut cmd = Command::new(&a.uwsgi);
    cmd.args(["--plugin", "fastrouter", "--master", "--die-on-term"])
        .args(["--fastrouter", &fr_listen.to_string()])
        .args(["--fastrouter-subscription-server", &fr_sub.to_string()])
        .args(["--subscription-algo", "lrc"])
        .args(["--fastrouter-stats", &fr_stats.to_string()]);
    let mut fastrouter = Child::spawn("hetero-fastrouter", cmd, &bench.log("hetero-fastrouter"))?;
    fastrouter.wait_listening(fr_listen, START_LIMIT).await?;

    let mut nodes = Vec::new();
    for i in 0..3 {
        let name = format!("node{}", i + 1);
        // The last node is the slow one.
        let delay_ms = if i == 2 {
            a.hetero_slow_ms
        } else {
            a.hetero_fast_ms
        };
        nodes.push(start_node(bench, &app, &name, delay_ms, Some(fr_sub)).await?);
    }
    let node_addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.addr).collect();

    let mut routerds = Vec::new();
    for c in Contender::ALL.iter().filter(|c| c.is_routerd()) {
        routerds.push(start_routerd(bench, *c, &node_addrs).await?);
    }
    let mut agents = Vec::new();
    let fed = routerds
        .iter()
        .find(|r| r.contender == Contender::RouterdAgents)
        .expect("the agent-fed routerd is started");
    let control = fed
        .control
        .context("the agent-fed routerd has a control listener")?;
    for n in &nodes {
        agents.push(start_agent(bench, n, control)?);
    }
    wait_agents_joined(fed.metrics, nodes.len(), &mut agents).await?;
    wait_subscribed(fr_stats, nodes.len(), &mut fastrouter).await?;

    let ports: Vec<(Contender, SocketAddr)> = Contender::ALL
        .iter()
        .map(|c| Ok((*c, free_port()?)))
        .collect::<anyhow::Result<_>>()?;
    let upstream = |c: Contender| match c {
        Contender::NginxLeastConn => "hetero_least_conn".to_owned(),
        Contender::FastRouter => fr_listen.to_string(),
        _ => routerds
            .iter()
            .find(|r| r.contender == c)
            .map(|r| r.listen.to_string())
            .unwrap_or_default(),
    };
    let servers: Vec<(SocketAddr, String)> =
        ports.iter().map(|(c, p)| (*p, upstream(*c))).collect();
    let nginx = start_nginx(bench, &servers, &node_addrs).await?;
    let mut stack = Stack {
        nodes,
        routerds,
        ports,
        fastrouter,
        agents,
        nginx,
    };
    for (c, port) in stack.ports.clone() {
        check_contender(port)
            .await
            .with_context(|| format!("{} through nginx", c.name()))?;
    }
    stack.check()?;
    Ok(stack)
}

/// Writes the nodes' WSGI app into the scratch directory; returns its path.
pub(crate) fn write_app(bench: &Bench) -> anyhow::Result<std::path::PathBuf> {
    let app = bench.path("hetero_app.py");
    std::fs::write(&app, APP).with_context(|| format!("writing {}", app.display()))?;
    Ok(app)
}

/// Starts one uWSGI node running `app` (`--processes` from `--hetero-processes`), subscribed to
/// `subscription` if given, and waits until the app answers.
pub(crate) async fn start_node(
    bench: &Bench,
    app: &std::path::Path,
    name: &str,
    delay_ms: u64,
    subscription: Option<SocketAddr>,
) -> anyhow::Result<UwsgiNode> {
    let a = &bench.args;
    let addr = free_port()?;
    let stats = free_port()?;
    let mut cmd = Command::new(&a.uwsgi);
    cmd.args(["--plugin", &a.python_plugin, "--master", "--die-on-term"])
        .args(["--processes", &a.hetero_processes.to_string()])
        .args(["--socket", &addr.to_string()])
        .args(["--stats", &stats.to_string()])
        .arg("--wsgi-file")
        .arg(app)
        .args(["--env", &format!("NODE_NAME={name}")])
        .args(["--env", &format!("SLEEP_MS={delay_ms}")])
        // One log line per request would cost CPU that the routers then lack.
        .arg("--disable-logging")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    if let Some(sub) = subscription {
        cmd.args(["--subscribe-to", &format!("{sub}:{HOST}")]);
    }
    let log = format!("hetero-{name}");
    let mut child = Child::spawn(&log, cmd, &bench.log(&log))?;
    child.wait_listening(addr, START_LIMIT).await?;
    // Listening is not serving: wait for the app to answer with its name.
    let packet = RequestSpec::get("/ready").packet()?;
    let mut buf = vec![0u8; CHUNK];
    let deadline = Instant::now() + START_LIMIT;
    loop {
        child.ensure_running()?;
        let resp = tokio::time::timeout(
            Duration::from_secs(2),
            exchange(&Target::Tcp(addr), &packet, 0, &mut buf),
        )
        .await;
        if let Ok(Ok(r)) = resp {
            if r.small_body().contains(name) {
                break;
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "uWSGI {name} does not answer on {addr}; log:\n{}",
            child.log_tail(20)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(UwsgiNode {
        name: name.to_owned(),
        addr,
        stats,
        delay_ms,
        child: Some(child),
    })
}

async fn start_routerd(
    bench: &Bench,
    c: Contender,
    nodes: &[SocketAddr],
) -> anyhow::Result<Routerd> {
    let bin = bench.routerd_bin();
    anyhow::ensure!(
        bin.exists(),
        "{} not found: build it with `cargo build --release --bin routerd`",
        bin.display()
    );
    let listen = free_port()?;
    let metrics = free_port()?;
    let (alg, nodes_line, control) = match c {
        Contender::RouterdLeastLoad => ("least-load", list(nodes), None),
        Contender::RouterdRoundRobin => ("round-robin", list(nodes), None),
        Contender::RouterdAgents => ("least-load", "[]".to_owned(), Some(free_port()?)),
        _ => anyhow::bail!("{} is not a routerd", c.name()),
    };
    // "" turns the control plane off.
    let control_listen = control.map_or(String::new(), |a| a.to_string());
    let config = format!(
        "[listen]\nuwsgi = [\"{listen}\"]\n\n[metrics]\nlisten = \"{metrics}\"\n\n\
         [control]\nlisten = \"{control_listen}\"\n\n\
         [pools.default]\nalgorithm = \"{alg}\"\nnodes = {nodes_line}\n"
    );
    let slug = c.slug();
    let file = bench.path(&format!("{slug}.toml"));
    std::fs::write(&file, config).with_context(|| format!("writing {}", file.display()))?;
    let mut cmd = Command::new(bin);
    cmd.arg("--config").arg(&file).env("RUST_LOG", "warn");
    let mut child = Child::spawn(slug, cmd, &bench.log(slug))?;
    child.wait_listening(listen, START_LIMIT).await?;
    child.wait_listening(metrics, START_LIMIT).await?;
    Ok(Routerd {
        contender: c,
        listen,
        metrics,
        control,
        child,
    })
}

fn list(nodes: &[SocketAddr]) -> String {
    let quoted: Vec<String> = nodes.iter().map(|n| format!("\"{n}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

fn start_agent(bench: &Bench, node: &UwsgiNode, control: SocketAddr) -> anyhow::Result<Child> {
    let bin = bench
        .args
        .router_agent
        .clone()
        .unwrap_or_else(|| bench.bin_dir.join("router-agent"));
    anyhow::ensure!(
        bin.exists(),
        "{} not found: build it with `cargo build --release --bin router-agent`",
        bin.display()
    );
    let mut cmd = Command::new(bin);
    cmd.args(["--router", &format!("http://{control}")])
        .args(["--pool", "default"])
        .args(["--node", &node.addr.to_string()])
        .args(["--node-id", &node.name])
        .args(["--stats", &node.stats.to_string()])
        .args(["--interval", AGENT_INTERVAL])
        .env("RUST_LOG", "warn");
    let name = format!("hetero-agent-{}", node.name);
    Child::spawn(&name, cmd, &bench.log(&name))
}

/// Waits until the agent-fed routerd has every node active.
async fn wait_agents_joined(
    metrics: SocketAddr,
    nodes: usize,
    agents: &mut [Child],
) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_LIMIT;
    loop {
        for a in agents.iter_mut() {
            a.ensure_running()?;
        }
        let active = Scrape::get(metrics).await.ok().and_then(|s| {
            s.value(
                "uwsgi_router_nodes",
                &[("pool", "default"), ("state", "active")],
            )
        });
        if active == Some(nodes as f64) {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the agents' nodes did not all join routerd within {START_LIMIT:?} (active: {active:?}); \
             agent log:\n{}",
            agents.first().map(|a| a.log_tail(10)).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until FastRouter's stats list every node under the key.
async fn wait_subscribed(
    stats: SocketAddr,
    nodes: usize,
    fastrouter: &mut Child,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_LIMIT + Duration::from_secs(10);
    loop {
        fastrouter.ensure_running()?;
        let seen = fastrouter_nodes(stats).await.unwrap_or(0);
        if seen >= nodes {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {seen} of {nodes} nodes subscribed to FastRouter; log:\n{}",
            fastrouter.log_tail(20)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Nodes subscribed under our key, from FastRouter's stats server (one JSON document).
async fn fastrouter_nodes(stats: SocketAddr) -> anyhow::Result<usize> {
    use tokio::io::AsyncReadExt as _;
    let mut s = tokio::net::TcpStream::connect(stats).await?;
    let mut doc = Vec::new();
    tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut doc)).await??;
    let v: serde_json::Value = serde_json::from_slice(&doc)?;
    let subs = v["subscriptions"].as_array().cloned().unwrap_or_default();
    Ok(subs
        .iter()
        .filter(|s| s["key"] == HOST)
        .map(|s| s["nodes"].as_array().map_or(0, Vec::len))
        .sum())
}

async fn start_nginx(
    bench: &Bench,
    servers: &[(SocketAddr, String)],
    nodes: &[SocketAddr],
) -> anyhow::Result<Child> {
    let mut conf = NginxConf::new(bench, "hetero-nginx")?;
    let mut text = String::from("    upstream hetero_least_conn {\n        least_conn;\n");
    for n in nodes {
        let _ = writeln!(text, "        server {n};");
    }
    text.push_str("    }\n");
    let params = conf.params();
    for (port, upstream) in servers {
        let _ = write!(
            text,
            "    server {{
        listen {port};
        location / {{
            include {};
            uwsgi_pass {upstream};
        }}
    }}
",
            params.display()
        );
    }
    conf.push(&text);
    let ports: Vec<SocketAddr> = servers.iter().map(|(p, _)| *p).collect();
    conf.start(bench, &ports).await
}

/// A few requests through nginx must succeed.
async fn check_contender(port: SocketAddr) -> anyhow::Result<()> {
    let report = http_load::run(http_load::HttpLoadConfig {
        target: port,
        host: HOST.to_owned(),
        path: "/check".to_owned(),
        concurrency: 3,
        max_requests: 9,
        duration: Duration::from_secs(10),
        request_timeout: Duration::from_secs(5),
    })
    .await?;
    anyhow::ensure!(
        report.errors.total() == 0 && report.ok == 9,
        "{} of 9 check requests failed: {}",
        report.errors.total(),
        report.errors.first.unwrap_or_default()
    );
    Ok(())
}
