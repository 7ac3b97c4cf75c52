//! The benchmark's fixed surroundings: a scratch directory, the binaries, the fast nodes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::Context as _;
use uwsgi_router_bench::child::{free_port, Child};
use uwsgi_router_bench::target::Target;

use crate::Args;

/// How long a freshly started process may take to listen.
pub(crate) const START_LIMIT: Duration = Duration::from_secs(10);

/// Everything the phases share.
pub(crate) struct Bench {
    pub(crate) args: Args,
    /// Configs and logs; removed at the end.
    pub(crate) dir: tempfile::TempDir,
    /// Where fast-node (and by default routerd) live.
    pub(crate) bin_dir: PathBuf,
    /// The fast nodes' addresses.
    pub(crate) node_addrs: Vec<SocketAddr>,
    /// Their processes; dropping them kills them.
    pub(crate) nodes: Vec<Child>,
}

impl Bench {
    /// Makes the scratch directory and starts `args.nodes` fast nodes.
    pub(crate) async fn start(args: Args) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("uwsgi-router-bench")
            .tempdir()?;
        let exe = std::env::current_exe()?;
        let bin_dir = exe
            .parent()
            .context("executable has no directory")?
            .to_owned();
        let mut bench = Self {
            args,
            dir,
            bin_dir,
            node_addrs: Vec::new(),
            nodes: Vec::new(),
        };
        for i in 0..bench.args.nodes {
            bench.start_node(&format!("node{}", i + 1), 0).await?;
        }
        Ok(bench)
    }

    async fn start_node(&mut self, name: &str, delay_ms: u64) -> anyhow::Result<()> {
        let bin = self.bin_dir.join("fast-node");
        anyhow::ensure!(
            bin.exists(),
            "{} not found: build with `cargo build --release -p uwsgi-router-bench`",
            bin.display()
        );
        let addr = free_port()?;
        let mut cmd = Command::new(bin);
        cmd.arg(addr.to_string())
            .args(["--name", name, "--delay-ms", &delay_ms.to_string()]);
        let mut child = Child::spawn(name, cmd, &self.log(name))?;
        child.wait_listening(addr, START_LIMIT).await?;
        self.node_addrs.push(addr);
        self.nodes.push(child);
        Ok(())
    }

    /// The nodes as load targets (for the direct phase).
    pub(crate) fn node_targets(&self) -> Vec<Target> {
        self.node_addrs.iter().map(|a| Target::Tcp(*a)).collect()
    }

    /// The routerd binary.
    pub(crate) fn routerd_bin(&self) -> PathBuf {
        self.args
            .routerd
            .clone()
            .unwrap_or_else(|| self.bin_dir.join("routerd"))
    }

    /// A file in the scratch directory.
    pub(crate) fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// The log file of the process called `name`.
    pub(crate) fn log(&self, name: &str) -> PathBuf {
        self.path(&format!("{}.log", name.replace([':', '/'], "-")))
    }

    /// Fails if a node died (a dead node would make every later number meaningless).
    pub(crate) fn check_nodes(&mut self) -> anyhow::Result<()> {
        self.nodes.iter_mut().try_for_each(Child::ensure_running)
    }
}
