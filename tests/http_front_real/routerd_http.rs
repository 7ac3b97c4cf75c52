//! The `routerd` binary with HTTP listeners only (loopback TCP and a UNIX socket), in front of a
//! round-robin pool.

use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use crate::http;
use crate::support::binary::{routerd_command, wait_logged_addr, STARTUP};
use crate::support::process::Process;
use crate::support::scrape::Scrape;

/// A running routerd.
pub(crate) struct RouterdHttp {
    /// Its TCP HTTP listener.
    pub(crate) tcp: SocketAddr,
    /// Its UNIX HTTP listener.
    pub(crate) unix: PathBuf,
    metrics: SocketAddr,
    process: Process,
}

impl RouterdHttp {
    /// Starts routerd with HTTP listeners (`[http]` at its defaults) and one round-robin pool
    /// over `nodes`; waits until both listeners accept connections.
    pub(crate) fn start(nodes: &[SocketAddr], dir: &Path) -> RouterdHttp {
        let unix = dir.join("router-http.sock");
        let conf = dir.join("routerd-http.toml");
        std::fs::write(&conf, config(&unix, nodes)).expect("write routerd-http.toml");
        let mut cmd = routerd_command(&conf);
        cmd.env("RUST_LOG", "info,uwsgi_router=debug");
        let mut process = Process::spawn("routerd-http", cmd, dir);
        let tcp = wait_logged_addr(&mut process, "listening for HTTP clients");
        let metrics = wait_logged_addr(&mut process, "serving /metrics");
        let what = format!("routerd on unix:{}", unix.display());
        process.poll_while_running(&what, STARTUP, || UnixStream::connect(&unix).ok());
        RouterdHttp {
            tcp,
            unix,
            metrics,
            process,
        }
    }

    /// Scrapes `/metrics`, as Prometheus does.
    pub(crate) fn scrape(&self) -> Scrape {
        let reply = http::request(self.metrics, "GET", "/metrics", "routerd", &[])
            .unwrap_or_else(|e| panic!("GET /metrics on {}: {e}", self.metrics));
        assert_eq!(reply.head.status, 200, "GET /metrics: {}", reply.text());
        Scrape::parse(&reply.text())
    }

    /// The end of routerd's log, for failure messages.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        self.process.log_tail(lines)
    }
}

/// routerd.toml: no uwsgi listener, HTTP on an ephemeral port and on `unix`, ephemeral control
/// and metrics ports, and slow start off so every node takes its share from the first request.
fn config(unix: &Path, nodes: &[SocketAddr]) -> String {
    let nodes: Vec<String> = nodes.iter().map(|n| format!("\"{n}\"")).collect();
    format!(
        "[listen]
uwsgi = []
http = [\"127.0.0.1:0\", \"unix:{unix}\"]

[control]
listen = \"127.0.0.1:0\"

[metrics]
listen = \"127.0.0.1:0\"

[pools.default]
algorithm = \"round-robin\"
slow_start = \"0s\"
nodes = [{nodes}]
",
        unix = unix.display(),
        nodes = nodes.join(", "),
    )
}
