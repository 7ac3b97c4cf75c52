//! uWSGI nodes running the test Django site, each named by its `NODE_NAME`.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::ports::{accepts, free_addr};
use crate::support::process::Process;
use crate::support::programs::find_program;
use crate::support::uwsgi_node::{self, Site, Socket};
use crate::support::wait;

/// How long a node may take to load Django and answer its first request.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// One uWSGI instance: a master and two worker processes.
pub(crate) struct Node {
    /// Its `NODE_NAME`, which the echo view reports.
    pub(crate) name: String,
    /// Its uwsgi socket.
    pub(crate) addr: SocketAddr,
    process: Process,
}

impl Node {
    /// Starts a node on free loopback ports; call [`Node::wait_ready`] before using it.
    pub(crate) fn spawn(name: &str, dir: &Path) -> Node {
        let addr = free_addr();
        let mut cmd = Command::new(find_program("uwsgi"));
        let stats = Socket::Tcp(free_addr());
        uwsgi_node::add_node_args(&mut cmd, Site::Test, name, &[Socket::Tcp(addr)], &stats);
        let process = Process::spawn(&format!("uwsgi-{name}"), cmd, dir);
        Node {
            name: name.to_owned(),
            addr,
            process,
        }
    }

    /// Waits until the node answers a real request with its own name.
    pub(crate) fn wait_ready(&mut self) {
        let socket = Socket::Tcp(self.addr);
        uwsgi_node::wait_serving(&mut self.process, &self.name, &socket, START_TIMEOUT);
    }

    /// SIGKILLs the master and its workers (no goodbye, as a crashed host), and waits until
    /// the node's port refuses connections.
    pub(crate) fn kill(&mut self) {
        self.process.kill_group();
        let addr = self.addr;
        if let Err(e) = wait::poll_within(Duration::from_secs(5), || (!accepts(addr)).then_some(()))
        {
            panic!(
                "node {} still accepts on {addr} after SIGKILL: {e}",
                self.name
            );
        }
    }

    /// The end of the node's log, for failure messages.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        self.process.log_tail(lines)
    }
}
