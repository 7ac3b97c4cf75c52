//! The whole stack in a temp dir: nginx -> routerd (TCP and UNIX) -> three uWSGI nodes.

use std::net::SocketAddr;
use std::process::Command;

use tempfile::TempDir;

use crate::nginx::Nginx;
use crate::routerd::Routerd;
use crate::support::programs::{find_program, INSTALL_HINT};
use crate::uwsgi::Node;

/// Running processes; dropping the stack kills them all (fields drop in order: nginx, routerd,
/// nodes, then the temp dir).
pub(crate) struct Stack {
    /// nginx, whose first port passes to routerd over TCP and second over the UNIX socket.
    pub(crate) nginx: Nginx,
    /// The router under test.
    pub(crate) routerd: Routerd,
    /// The uWSGI nodes, named `node1`...
    pub(crate) nodes: Vec<Node>,
    dir: TempDir,
}

impl Stack {
    /// Starts `node_count` nodes, routerd over them, and nginx in front; returns once every
    /// part answers.
    pub(crate) fn start(node_count: usize) -> Stack {
        let dir = tempfile::Builder::new()
            .prefix("real-stack")
            .tempdir()
            .expect("create temp dir");
        require_tools(dir.path());
        // Start every node before waiting for any: Django loads in parallel.
        let mut nodes: Vec<Node> = (1..=node_count)
            .map(|i| Node::spawn(&format!("node{i}"), dir.path()))
            .collect();
        nodes.iter_mut().for_each(Node::wait_ready);
        let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.addr).collect();
        let routerd = Routerd::start(&addrs, dir.path());
        let upstreams = [
            routerd.tcp.to_string(),
            format!("unix:{}", routerd.unix.display()),
        ];
        let nginx = Nginx::start(&upstreams, dir.path());
        Stack {
            nginx,
            routerd,
            nodes,
            dir,
        }
    }

    /// nginx's HTTP entrances, labelled by how nginx reaches routerd.
    pub(crate) fn entrances(&self) -> [(&'static str, SocketAddr); 2] {
        [("tcp", self.nginx.ports[0]), ("unix", self.nginx.ports[1])]
    }

    /// The node called `name`.
    pub(crate) fn node_mut(&mut self, name: &str) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|n| n.name == name)
            .expect("no such node")
    }
}

impl Drop for Stack {
    /// On a failed test, shows what every process said: the cause is usually in a log.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        eprintln!(
            "real stack failed; logs from {}:",
            self.dir.path().display()
        );
        eprintln!("{}", self.routerd.log_tail(60));
        eprintln!("{}", self.nginx.log_tail(30));
        for node in &self.nodes {
            eprintln!("{}", node.log_tail(20));
        }
    }
}

/// Fails with the install hint unless nginx, uWSGI, its python3 plugin and Django are there.
fn require_tools(dir: &std::path::Path) {
    find_program("nginx");
    let uwsgi = find_program("uwsgi");
    // Django must be importable by the Python embedded in uWSGI's plugin, which is the
    // system's, not whichever python3 is first on PATH.
    let script = dir.join("check_django.py");
    std::fs::write(
        &script,
        "import django\nprint('django-version', django.get_version())\n",
    )
    .expect("write check script");
    let output = Command::new(uwsgi)
        .args(["--plugin", "python3", "--pyrun"])
        .arg(&script)
        .output()
        .unwrap_or_else(|e| panic!("cannot run uwsgi: {e}; {INSTALL_HINT}"));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        said.contains("django-version"),
        "uWSGI's python3 plugin cannot import Django: {INSTALL_HINT}\nuwsgi said:\n{said}"
    );
}
