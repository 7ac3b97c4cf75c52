//! The routers under test and how to start each in front of the fast nodes.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use anyhow::Context as _;
use uwsgi_router_bench::child::{free_port, Child};
use uwsgi_router_bench::target::Target;

use crate::setup::{Bench, START_LIMIT};

/// What sits between the load generator and the nodes.
#[derive(Debug, Clone)]
pub(crate) enum RouterKind {
    /// Nothing: the load generator spreads requests over the nodes itself. The upper bound.
    Direct,
    /// routerd with this balancing algorithm, and maybe a setting changed.
    Routerd(String, Variant),
    /// uWSGI's FastRouter with this many router processes.
    FastRouter(u32),
}

/// What a routerd phase changes from the embedded defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Variant {
    /// Nothing: the access log off, request ids on.
    Defaults,
    /// The access log on, as JSON to a file.
    AccessLog,
    /// Request ids off (packets forwarded exactly as received).
    NoRequestId,
    /// The defaults' config on the `--baseline-routerd` binary.
    Baseline,
}

impl Variant {
    /// The phase name's suffix.
    fn suffix(self) -> &'static str {
        match self {
            Self::Defaults => "",
            Self::AccessLog => " + access log",
            Self::NoRequestId => " without request id",
            Self::Baseline => " baseline",
        }
    }

    /// The config sections it adds, with `log` as the access log's file.
    fn config(self, log: &std::path::Path) -> String {
        match self {
            Self::Defaults | Self::Baseline => String::new(),
            Self::AccessLog => format!(
                "[access_log]\nenabled = true\npath = \"{}\"\n",
                log.display()
            ),
            Self::NoRequestId => "[request_id]\nenabled = false\n".to_owned(),
        }
    }
}

impl RouterKind {
    /// The phase's name in tables and `--only`.
    pub(crate) fn name(&self) -> String {
        match self {
            Self::Direct => "direct".to_owned(),
            Self::Routerd(alg, v) => format!("routerd {alg}{}", v.suffix()),
            Self::FastRouter(1) => "fastrouter 1 process".to_owned(),
            Self::FastRouter(n) => format!("fastrouter {n} processes"),
        }
    }
}

/// A started router (or none, for `Direct`).
pub(crate) struct Router {
    /// The router's process; dropping it kills the router and its children.
    pub(crate) child: Option<Child>,
    /// Where to send load.
    pub(crate) targets: Vec<Target>,
}

impl Router {
    /// The router's main process id.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::pid)
    }
}

/// Starts `kind` in front of the bench's nodes and waits until it listens.
pub(crate) async fn start(bench: &Bench, kind: &RouterKind) -> anyhow::Result<Router> {
    match kind {
        RouterKind::Direct => Ok(Router {
            child: None,
            targets: bench.node_targets(),
        }),
        RouterKind::Routerd(alg, v) => {
            // A fresh file per start: each round's log is its own, and the disk never fills.
            let log = bench.path("access.log");
            let _ = std::fs::remove_file(&log);
            match (v, &bench.args.baseline_routerd) {
                (Variant::Baseline, Some(bin)) => {
                    let name = format!("routerd-baseline-{alg}");
                    launch_routerd(bench, bin, &name, alg, "").await
                }
                _ => start_routerd(bench, alg, &v.config(&log)).await,
            }
        }
        RouterKind::FastRouter(procs) => start_fastrouter(bench, *procs).await,
    }
}

/// Starts routerd with one pool over the nodes; `extra` is appended to the config (more sections).
pub(crate) async fn start_routerd(bench: &Bench, alg: &str, extra: &str) -> anyhow::Result<Router> {
    let name = format!("routerd-{alg}");
    launch_routerd(bench, &bench.routerd_bin(), &name, alg, extra).await
}

/// Starts the routerd binary `bin` as [`start_routerd`] does, logging as `name`.
async fn launch_routerd(
    bench: &Bench,
    bin: &Path,
    name: &str,
    alg: &str,
    extra: &str,
) -> anyhow::Result<Router> {
    anyhow::ensure!(
        bin.exists(),
        "{} not found: build it with `cargo build --release --bin routerd`",
        bin.display()
    );
    let addr = free_port()?;
    let config = routerd_config(addr, &bench.node_addrs, alg, extra);
    let file = bench.path(&format!("{name}.toml"));
    std::fs::write(&file, config).with_context(|| format!("writing {}", file.display()))?;
    let mut cmd = Command::new(bin);
    cmd.arg("--config").arg(&file).env("RUST_LOG", "warn");
    let mut child = Child::spawn(name, cmd, &bench.log(name))?;
    child.wait_listening(addr, START_LIMIT).await?;
    Ok(Router {
        child: Some(child),
        targets: vec![Target::Tcp(addr)],
    })
}

fn routerd_config(listen: SocketAddr, nodes: &[SocketAddr], alg: &str, extra: &str) -> String {
    let nodes: Vec<String> = nodes.iter().map(|n| format!("\"{n}\"")).collect();
    format!(
        "[listen]\nuwsgi = [\"{listen}\"]\n\n[pools.default]\nalgorithm = \"{alg}\"\nnodes = [{}]\n{extra}",
        nodes.join(", ")
    )
}

/// Starts uWSGI's FastRouter (a plugin in Debian's uwsgi-core) with static nodes, which it
/// round-robins. `--master` is what spawns the router process(es).
async fn start_fastrouter(bench: &Bench, procs: u32) -> anyhow::Result<Router> {
    let addr = free_port()?;
    let mut cmd = Command::new(&bench.args.uwsgi);
    cmd.args(["--plugin", "fastrouter", "--master", "--die-on-term"])
        .args(["--fastrouter", &addr.to_string()])
        .args(["--fastrouter-processes", &procs.to_string()]);
    for n in &bench.node_addrs {
        cmd.args(["--fastrouter-to", &n.to_string()]);
    }
    let name = format!("fastrouter-{procs}p");
    let mut child = Child::spawn(&name, cmd, &bench.log(&name))?;
    child.wait_listening(addr, START_LIMIT).await?;
    Ok(Router {
        child: Some(child),
        targets: vec![Target::Tcp(addr)],
    })
}
