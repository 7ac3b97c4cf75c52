//! nginx (`include uwsgi_params; uwsgi_pass`) and routerd's HTTP listener in front of one
//! capturing node, and a raw request sent to either.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use tempfile::TempDir;

use crate::capture::{CaptureNode, Captured};
use crate::http::Response;
use crate::nginx::Nginx;
use crate::routerd_http::RouterdHttp;
use crate::support;

/// nginx and routerd in front of one capturing node.
pub(crate) struct Fronts {
    /// nginx, passing to the node with `uwsgi_pass`.
    pub(crate) nginx: Nginx,
    /// routerd, whose HTTP listener passes to the node.
    pub(crate) routerd: RouterdHttp,
    node: CaptureNode,
    dir: TempDir,
}

impl Fronts {
    /// Starts the node, then routerd and nginx in front of it.
    pub(crate) fn start() -> Fronts {
        let dir = tempfile::Builder::new()
            .prefix("http-front-vars")
            .tempdir()
            .expect("create temp dir");
        let node = CaptureNode::start();
        let routerd = RouterdHttp::start(&[node.addr], dir.path());
        let nginx = Nginx::start(&[node.addr.to_string()], dir.path());
        Fronts {
            nginx,
            routerd,
            node,
            dir,
        }
    }

    /// Sends `raw` to `addr` and returns the vars the node got for it.
    pub(crate) fn vars_via(&self, via: &str, addr: SocketAddr, name: &str, raw: &[u8]) -> Captured {
        let reply = exchange(addr, raw);
        assert_eq!(reply.head.status, 200, "{name} via {via}: {}", reply.text());
        self.node.take_one(&format!("{name} via {via}"))
    }
}

impl Drop for Fronts {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("logs from {}:", self.dir.path().display());
            eprintln!("{}", self.routerd.log_tail(40));
            eprintln!("{}", self.nginx.log_tail(20));
        }
    }
}

/// Sends a whole request (which asks for the connection's close) and reads the response.
pub(crate) fn exchange(addr: SocketAddr, raw: &[u8]) -> Response {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    s.set_read_timeout(Some(support::wait::STEP)).unwrap();
    s.write_all(raw).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got)
        .unwrap_or_else(|e| panic!("read the response from {addr}: {e}"));
    Response::parse(&got).unwrap_or_else(|e| {
        panic!(
            "response from {addr}: {e}: {:?}",
            String::from_utf8_lossy(&got)
        )
    })
}
