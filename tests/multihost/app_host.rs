//! An app host: uWSGI running the demo Django site, and the router-agent that registers it with
//! routerd on the router host.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::hosts::{app_addr, CONTROL_PORT, NODE_PORT, REPORT_INTERVAL, ROUTER_ADDR};
use crate::net::Network;
use crate::support::process::Process;
use crate::support::programs::find_program;
use crate::support::uwsgi_node::{self, Site, Socket};

/// An app host: uWSGI running the demo site, and its router-agent.
pub(crate) struct AppHost {
    /// `app1`...: host name, node id and the name the pages show.
    pub(crate) id: String,
    index: usize,
    dir: PathBuf,
    uwsgi: Option<Process>,
    agent: Option<Process>,
    starts: u32,
}

impl AppHost {
    /// Host `index` (1-based), nothing started yet.
    pub(crate) fn new(index: usize, dir: &Path) -> AppHost {
        AppHost {
            id: format!("app{index}"),
            index,
            dir: dir.to_owned(),
            uwsgi: None,
            agent: None,
            starts: 0,
        }
    }

    /// The node's address, as routerd connects to it.
    pub(crate) fn addr(&self) -> String {
        format!("{}:{NODE_PORT}", app_addr(self.index))
    }

    fn socket(&self, what: &str) -> PathBuf {
        self.dir.join(format!("{}-{what}.sock", self.id))
    }

    /// Starts uWSGI: the uwsgi socket on the host's address, plus a UNIX socket through which
    /// the test checks it is ready, and the stats server (a UNIX socket) the agent reads.
    pub(crate) fn start_uwsgi(&mut self, net: &Network) {
        self.starts += 1;
        let mut cmd = net.command(&self.id, find_program("uwsgi"));
        let addr = self.addr().parse().expect("the node's address");
        let sockets = [Socket::Tcp(addr), self.direct()];
        let stats = Socket::Unix(self.socket("stats"));
        uwsgi_node::add_node_args(&mut cmd, Site::Demo, &self.id, &sockets, &stats);
        let name = format!("uwsgi-{}-{}", self.id, self.starts);
        self.uwsgi = Some(Process::spawn(&name, cmd, &self.dir));
    }

    /// The UNIX socket through which the test checks that uWSGI serves.
    fn direct(&self) -> Socket {
        Socket::Unix(self.socket("direct"))
    }

    /// Waits until uWSGI answers a request with its own name.
    pub(crate) fn wait_uwsgi_ready(&mut self) {
        let direct = self.direct();
        let uwsgi = self.uwsgi.as_mut().expect("uWSGI started");
        uwsgi_node::wait_serving(uwsgi, &self.id, &direct, Duration::from_secs(60));
    }

    /// Starts the agent: it registers the node with routerd on the router host.
    pub(crate) fn start_agent(&mut self, net: &Network) {
        let mut cmd = net.command(&self.id, env!("CARGO_BIN_EXE_router-agent"));
        cmd.args(["--router", &format!("http://{ROUTER_ADDR}:{CONTROL_PORT}")])
            .args([
                "--pool",
                "default",
                "--node",
                &self.addr(),
                "--node-id",
                &self.id,
            ])
            .arg("--stats")
            .arg(self.socket("stats"))
            .arg("--token-file")
            .arg(self.dir.join("registry.token"))
            .args(["--interval", &format!("{}ms", REPORT_INTERVAL.as_millis())])
            .args(["--drain-timeout", "10s"])
            .env("NO_COLOR", "1");
        let name = format!("agent-{}-{}", self.id, self.starts);
        self.agent = Some(Process::spawn(&name, cmd, &self.dir));
    }

    /// SIGTERM to the agent, which drains the node and leaves; it must exit 0 in time.
    pub(crate) fn stop_agent(&mut self) {
        let mut agent = self.agent.take().expect("agent started");
        let status = agent.stop("TERM", Duration::from_secs(20));
        assert!(
            status.success(),
            "the agent of {} exited with {status}:\n{}",
            self.id,
            agent.log_tail(20)
        );
    }

    /// SIGTERM to uWSGI (die-on-term), which must exit in time.
    pub(crate) fn stop_uwsgi(&mut self) {
        let mut uwsgi = self.uwsgi.take().expect("uWSGI started");
        uwsgi.stop("TERM", Duration::from_secs(20));
    }

    /// Logs of uWSGI and the agent, for failure messages.
    pub(crate) fn log_tails(&self) -> String {
        [&self.uwsgi, &self.agent]
            .into_iter()
            .flatten()
            .map(|d| d.log_tail(15))
            .collect::<Vec<_>>()
            .join("\n")
    }
}
