//! The routerd of a scale round: no static node, one pool with room for the whole fleet and its
//! churn, the control listener sized for one session per node and (at most) one connection each.

use std::net::SocketAddr;
use std::process::Command;

use anyhow::Context as _;
use uwsgi_router_bench::child::{free_port, Child};

use super::Shape;
use crate::setup::{Bench, START_LIMIT};

/// The pool every simulated node joins.
pub(crate) const POOL: &str = "default";
/// Sessions and connections beyond the fleet's: routerctl-like calls, sessions ending late.
const SPARE: usize = 1024;

/// A started routerd.
pub(crate) struct Routerd {
    /// Dropping it kills routerd.
    pub(crate) child: Child,
    /// The gRPC control listener.
    pub(crate) control: SocketAddr,
    /// The `/metrics` listener.
    pub(crate) metrics: SocketAddr,
}

impl Routerd {
    /// Starts routerd for `shape` and waits until its control and metrics listeners accept.
    pub(crate) async fn start(bench: &Bench, shape: Shape) -> anyhow::Result<Self> {
        let bin = bench.routerd_bin();
        anyhow::ensure!(
            bin.exists(),
            "{} not found: build it with `cargo build --release --bin routerd`",
            bin.display()
        );
        // routerd takes at most a quarter of its open-file limit for control connections.
        let connections = shape.connections + SPARE;
        let want = 4 * connections as u64 + SPARE as u64;
        let nofile = uwsgi_router_bench::ensure_nofile(want)?;
        anyhow::ensure!(
            nofile >= want,
            "{} connections need an open-file limit of {want} for routerd (it is {nofile}): \
             raise the hard limit (ulimit -Hn) or use fewer --scale-connections",
            shape.connections
        );
        let (uwsgi, control, metrics) = (free_port()?, free_port()?, free_port()?);
        let name = format!("routerd-scale-{}n-{}c", shape.nodes, shape.connections);
        let file = bench.path(&format!("{name}.toml"));
        let config = config(uwsgi, control, metrics, shape);
        std::fs::write(&file, config).with_context(|| format!("writing {}", file.display()))?;
        let mut cmd = Command::new(&bin);
        cmd.arg("--config").arg(&file).env("RUST_LOG", "warn");
        let mut child = Child::spawn(&name, cmd, &bench.log(&name))?;
        child.wait_listening(control, START_LIMIT).await?;
        child.wait_listening(metrics, START_LIMIT).await?;
        Ok(Self {
            child,
            control,
            metrics,
        })
    }

    /// routerd's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.pid()
    }
}

/// Room for the fleet twice over: churn's joins may briefly overlap its leaves, and a mass
/// rejoin's new sessions the old ones the router has not yet closed.
fn config(uwsgi: SocketAddr, control: SocketAddr, metrics: SocketAddr, shape: Shape) -> String {
    let sessions = 2 * shape.nodes + SPARE;
    let connections = shape.connections + SPARE;
    format!(
        "[listen]\nuwsgi = [\"{uwsgi}\"]\n\n\
         [metrics]\nlisten = \"{metrics}\"\n\n\
         [control]\nlisten = \"{control}\"\nmax_sessions = {sessions}\nmax_connections = {connections}\n\n\
         [pools.{POOL}]\nmax_nodes = {sessions}\n"
    )
}
