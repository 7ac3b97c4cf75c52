//! uWSGI nodes running the test Django site, each named by its `NODE_NAME`.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::ports::{accepts, free_addr};
use crate::support::process::{group_members, Process};
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

    /// SIGKILLs the master and its workers, the whole process group at once (no goodbye, as a
    /// crashed host), and waits until none of them lives and the node's port refuses
    /// connections. Returns how many processes the group had.
    pub(crate) fn kill(&mut self) -> usize {
        let group = self.process.pid();
        let members = group_members(group).len();
        self.process.kill_group();
        let addr = self.addr;
        let gone = wait::poll_within(Duration::from_secs(5), || {
            (group_members(group).is_empty() && !accepts(addr)).then_some(())
        });
        if let Err(e) = gone {
            panic!(
                "node {} still runs ({:?} in its group) or accepts on {addr} after SIGKILL: {e}",
                self.name,
                group_members(group)
            );
        }
        members
    }

    /// The end of the node's log, for failure messages.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        self.process.log_tail(lines)
    }
}
