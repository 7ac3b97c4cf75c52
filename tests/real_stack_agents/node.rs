//! A uWSGI node running the demo Django site and the `router-agent` that registers it, on fixed
//! loopback ports so that the node can be stopped and started again at the same address.
//!
//! Each start of uWSGI is a new generation with its own `NODE_NAME` (`node2`, then `node2-gen2`,
//! ...), so a reply shows which run of the node answered it; the node's id with the routers stays
//! the same (`node2`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use crate::support::ports::{accepts, free_addr};
use crate::support::process::Process;
use crate::support::programs::find_program;
use crate::support::uwsgi_node::{self, Site, Socket};
use crate::support::wait;

/// How long a node may take to load Django and answer its first request.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long uWSGI may take to exit on SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// The agents' report interval: the lease is three of them, at least 1 s.
pub(crate) const REPORT_INTERVAL: &str = "250ms";
/// How long an agent waits for the routers to report its node drained before giving up.
pub(crate) const DRAIN_TIMEOUT: &str = "10s";
/// Bound on the agent's whole shutdown: the drain timeout plus its leave grace and some slack.
const AGENT_STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// One node: uWSGI (a master and two workers) and its agent.
pub(crate) struct Node {
    /// The node's id with the routers.
    pub(crate) id: String,
    /// Its uwsgi socket.
    pub(crate) addr: SocketAddr,
    /// Its uWSGI stats server.
    pub(crate) stats: SocketAddr,
    /// Starts of uWSGI so far.
    generation: u32,
    /// The control listeners of the routers its agent registers it with.
    routers: Vec<SocketAddr>,
    dir: PathBuf,
    // Dropped in this order: the agent first, as a deploy stops it before uWSGI.
    agent: Option<Process>,
    uwsgi: Option<Process>,
}

impl Node {
    /// A node on free loopback ports whose agent registers it with the router at `control`;
    /// nothing runs yet.
    pub(crate) fn new(id: &str, control: SocketAddr, dir: &Path) -> Node {
        Self::with_routers(id, &[control], dir)
    }

    /// Like [`Node::new`], its agent registering it with every router of `routers`.
    pub(crate) fn with_routers(id: &str, routers: &[SocketAddr], dir: &Path) -> Node {
        Node {
            id: id.to_owned(),
            addr: free_addr(),
            stats: free_addr(),
            generation: 0,
            routers: routers.to_vec(),
            dir: dir.to_owned(),
            agent: None,
            uwsgi: None,
        }
    }

    /// The `NODE_NAME` of the running (or last) uWSGI, which the echo view reports.
    pub(crate) fn name(&self) -> String {
        generation_name(&self.id, self.generation)
    }

    /// Starts a new generation of uWSGI; call [`Node::wait_ready`] before using it.
    pub(crate) fn start_uwsgi(&mut self) {
        assert!(self.uwsgi.is_none(), "{}: uWSGI already running", self.id);
        self.generation += 1;
        let name = self.name();
        let mut cmd = Command::new(find_program("uwsgi"));
        let (socket, stats) = (Socket::Tcp(self.addr), Socket::Tcp(self.stats));
        uwsgi_node::add_node_args(&mut cmd, Site::Test, &name, &[socket], &stats);
        self.uwsgi = Some(Process::spawn(&format!("uwsgi-{name}"), cmd, &self.dir));
    }

    /// Waits until uWSGI answers a real request with this generation's name: the socket is
    /// bound, Django is loaded and a worker accepts.
    pub(crate) fn wait_ready(&mut self) {
        let name = self.name();
        let uwsgi = self.uwsgi.as_mut().expect("uWSGI started");
        uwsgi_node::wait_serving(uwsgi, &name, &Socket::Tcp(self.addr), START_TIMEOUT);
    }

    /// Starts the node's agent: it registers the node with the routers and reports its load.
    /// Its state file (operators' drains and weights of the node) is `ID.state.json` in the
    /// node's dir, so it outlives a restart of the agent.
    pub(crate) fn start_agent(&mut self) {
        assert!(self.agent.is_none(), "{}: agent already running", self.id);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_router-agent"));
        for control in &self.routers {
            cmd.arg("--router").arg(format!("http://{control}"));
        }
        cmd.arg("--state-file")
            .arg(self.dir.join(format!("{}.state.json", self.id)))
            .args(["--pool", "default", "--node-id", &self.id])
            .arg("--node")
            .arg(self.addr.to_string())
            .arg("--stats")
            .arg(self.stats.to_string())
            .args(["--interval", REPORT_INTERVAL])
            .args(["--drain-timeout", DRAIN_TIMEOUT])
            .env("RUST_LOG", "info,uwsgi_router=debug")
            .env("NO_COLOR", "1");
        let name = format!("agent-{}", self.name());
        self.agent = Some(Process::spawn(&name, cmd, &self.dir));
    }

    /// Fails with the agent's log if it has exited.
    pub(crate) fn assert_agent_running(&mut self) {
        if let Some(agent) = self.agent.as_mut() {
            agent.assert_running();
        }
    }

    /// SIGTERMs the agent (it drains the node on the router, then leaves) and waits for it to
    /// exit; returns its exit status, how long it took, and its log.
    pub(crate) fn stop_agent(&mut self) -> (ExitStatus, Duration, String) {
        let mut agent = self.agent.take().expect("agent running");
        let started = Instant::now();
        let status = agent.stop("TERM", AGENT_STOP_TIMEOUT);
        (status, started.elapsed(), agent.log())
    }

    /// SIGTERMs uWSGI (`--die-on-term`: it shuts down), waits for it to exit and for its port to
    /// refuse connections.
    pub(crate) fn stop_uwsgi(&mut self) {
        let mut uwsgi = self.uwsgi.take().expect("uWSGI running");
        let status = uwsgi.stop("TERM", STOP_TIMEOUT);
        // The master reaps its workers before it exits; none may keep the socket open.
        self.wait_refused(&format!("after uWSGI exited with {status}"));
    }

    /// SIGKILLs the agent's and uWSGI's process groups (a crashed host: no drain, no goodbye)
    /// and waits until the node's port refuses connections.
    pub(crate) fn kill(&mut self) {
        if let Some(mut agent) = self.agent.take() {
            agent.kill_group();
        }
        if let Some(mut uwsgi) = self.uwsgi.take() {
            uwsgi.kill_group();
        }
        self.wait_refused("after SIGKILL");
    }

    fn wait_refused(&self, when: &str) {
        let refused = wait::poll_within(Duration::from_secs(5), || {
            (!accepts(self.addr)).then_some(())
        });
        if let Err(e) = refused {
            panic!(
                "node {} still accepts on {} {when}: {e}",
                self.id, self.addr
            );
        }
    }

    /// The ends of the logs of uWSGI and the agent, for failure messages.
    pub(crate) fn log_tails(&self, lines: usize) -> String {
        [&self.uwsgi, &self.agent]
            .into_iter()
            .flatten()
            .map(|c| c.log_tail(lines))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The `NODE_NAME` of generation `generation` of node `id`.
pub(crate) fn generation_name(id: &str, generation: u32) -> String {
    if generation <= 1 {
        id.to_owned()
    } else {
        format!("{id}-gen{generation}")
    }
}
