//! The whole stack in a temp dir: nginx -> routerd -> three uWSGI nodes, each with the agent that
//! registers it.

use std::net::SocketAddr;
use std::time::Duration;

use tempfile::TempDir;

use crate::admin::Admin;
use crate::nginx::Nginx;
use crate::node::Node;
use crate::router::Router;
use crate::support::wait;

/// The nodes' ids with the router.
pub(crate) const IDS: [&str; 3] = ["node1", "node2", "node3"];

/// Running processes; dropping the stack kills them all (fields drop in order: nginx, routerd,
/// the nodes with their agents, then the temp dir).
pub(crate) struct Stack {
    nginx: Nginx,
    /// The router under test.
    pub(crate) router: Router,
    /// The nodes, each with its agent.
    pub(crate) nodes: Vec<Node>,
    /// routerd's Admin API.
    pub(crate) admin: Admin,
    dir: TempDir,
}

impl Stack {
    /// Starts routerd, nginx in front of it and three uWSGI nodes, without agents: the pool is
    /// empty until they run.
    pub(crate) fn start() -> Stack {
        let dir = tempfile::Builder::new()
            .prefix("real-stack-agents")
            .tempdir()
            .expect("create temp dir");
        let router = Router::start(dir.path());
        let nginx = Nginx::start(&[router.uwsgi.to_string()], dir.path());
        let mut nodes: Vec<Node> = IDS
            .iter()
            .map(|id| Node::new(id, router.control, dir.path()))
            .collect();
        // Start every node before waiting for any: Django loads in parallel.
        nodes.iter_mut().for_each(Node::start_uwsgi);
        nodes.iter_mut().for_each(Node::wait_ready);
        let admin = Admin::new(router.control);
        Stack {
            nginx,
            router,
            nodes,
            admin,
            dir,
        }
    }

    /// nginx's HTTP port.
    pub(crate) fn http(&self) -> SocketAddr {
        self.nginx.ports[0]
    }

    /// Calls `probe` until it returns `Some`, for at most `timeout`; between attempts checks
    /// that routerd and the agents still run, so a crash fails fast with its log.
    pub(crate) fn wait_for<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut probe: impl FnMut(&mut Stack) -> Option<T>,
    ) -> T {
        let found = wait::poll_within(timeout, || {
            probe(self).or_else(|| {
                self.router.assert_running();
                self.nodes.iter_mut().for_each(Node::assert_agent_running);
                None
            })
        });
        found.unwrap_or_else(|e| panic!("{what}: {e}"))
    }
}

impl Drop for Stack {
    /// On a failed test, shows what every process said: the cause is usually in a log.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        eprintln!("real stack failed; logs in {}:", self.dir.path().display());
        eprintln!("{}", self.router.log_tail(80));
        eprintln!("{}", self.nginx.log_tail(20));
        for node in &self.nodes {
            eprintln!("{}", node.log_tails(20));
        }
    }
}
