//! The real stack over HTTP keep-alive: nginx `proxy_pass` to routerd's HTTP listener, in
//! front of uWSGI nodes running the test Django site.

use std::net::SocketAddr;

use tempfile::TempDir;

use crate::nginx::Nginx;
use crate::routerd_http::RouterdHttp;
use crate::uwsgi::Node;

/// The real stack over HTTP: nginx `proxy_pass` to routerd's HTTP listener (one nginx server
/// over TCP, one over the UNIX socket), with upstream keep-alive, in front of uWSGI nodes.
pub(crate) struct HttpStack {
    /// nginx, whose first port passes to routerd over TCP and second over the UNIX socket.
    pub(crate) nginx: Nginx,
    /// The router under test.
    pub(crate) routerd: RouterdHttp,
    nodes: Vec<Node>,
    dir: TempDir,
}

impl HttpStack {
    /// Starts `node_count` nodes, routerd over them, and nginx in front.
    pub(crate) fn start(node_count: usize) -> HttpStack {
        let dir = tempfile::Builder::new()
            .prefix("http-front-stack")
            .tempdir()
            .expect("create temp dir");
        let mut nodes: Vec<Node> = (1..=node_count)
            .map(|i| Node::spawn(&format!("node{i}"), dir.path()))
            .collect();
        nodes.iter_mut().for_each(Node::wait_ready);
        let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.addr).collect();
        let routerd = RouterdHttp::start(&addrs, dir.path());
        // As deploy/nginx/uwsgi-router-http.conf: idle connections kept to each upstream.
        let upstreams: String = [
            ("routerd_tcp", routerd.tcp.to_string()),
            ("routerd_unix", format!("unix:{}", routerd.unix.display())),
        ]
        .iter()
        .map(|(name, server)| {
            format!(
                "    upstream {name} {{\n        server {server};\n        keepalive 16;\n    }}\n"
            )
        })
        .collect();
        let locations = ["routerd_tcp", "routerd_unix"].map(proxy_location);
        let nginx = Nginx::start_with(&locations, &upstreams, dir.path());
        HttpStack {
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
}

impl Drop for HttpStack {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("logs from {}:", self.dir.path().display());
            eprintln!("{}", self.routerd.log_tail(60));
            eprintln!("{}", self.nginx.log_tail(30));
            for node in &self.nodes {
                eprintln!("{}", node.log_tail(20));
            }
        }
    }
}

/// A `location /` proxying to `upstream` with keep-alive, as deploy/nginx/uwsgi-router-http.conf
/// does, and request buffering off, so a chunked body reaches routerd chunked.
fn proxy_location(upstream: &str) -> String {
    format!(
        "proxy_pass http://{upstream};
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_request_buffering off;"
    )
}
