//! The `routerd` binary under test, listening on loopback TCP and on a UNIX socket.

use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use crate::http;
use crate::support::binary::{routerd_command, wait_logged_addr, STARTUP};
use crate::support::process::Process;
use crate::support::scrape::Scrape;

/// A running routerd.
pub(crate) struct Routerd {
    /// Its TCP uwsgi listener.
    pub(crate) tcp: SocketAddr,
    /// Its UNIX uwsgi listener.
    pub(crate) unix: PathBuf,
    /// Its `/metrics` listener.
    pub(crate) metrics: SocketAddr,
    process: Process,
}

impl Routerd {
    /// Starts routerd with one round-robin pool over `nodes` and waits until both listeners
    /// accept connections.
    pub(crate) fn start(nodes: &[SocketAddr], dir: &Path) -> Routerd {
        let unix = dir.join("router.sock");
        let conf = dir.join("routerd.toml");
        std::fs::write(&conf, config(&unix, nodes)).expect("write routerd.toml");
        let mut cmd = routerd_command(&conf);
        // Debug logs show each session and connect attempt.
        cmd.env("RUST_LOG", "info,uwsgi_router=debug");
        let mut process = Process::spawn("routerd", cmd, dir);
        let tcp = wait_logged_addr(&mut process, "listening for uwsgi clients");
        let metrics = wait_logged_addr(&mut process, "serving /metrics");
        let what = format!("routerd on unix:{}", unix.display());
        process.poll_while_running(&what, STARTUP, || UnixStream::connect(&unix).ok());
        Routerd {
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

/// routerd.toml: both listeners and a round-robin default pool. Slow start is off so that
/// every node takes its share from the first request; retries and ejection keep defaults.
/// Requests for `edge.test` go to pool `edge`, the last node alone, so a test can tell which
/// host a request was routed by.
/// Every listener takes an ephemeral port (the control and metrics listeners stay on, as
/// deployed): fixed ports would clash between tests running at once.
fn config(unix: &Path, nodes: &[SocketAddr]) -> String {
    let nodes: Vec<String> = nodes.iter().map(|n| format!("\"{n}\"")).collect();
    format!(
        "[listen]
uwsgi = [\"127.0.0.1:0\", \"unix:{unix}\"]

[control]
listen = \"127.0.0.1:0\"

[metrics]
listen = \"127.0.0.1:0\"

[pools.default]
algorithm = \"round-robin\"
slow_start = \"0s\"
nodes = [{nodes}]

[pools.edge]
slow_start = \"0s\"
nodes = [{edge}]

[[routes]]
host = \"edge.test\"
pool = \"edge\"
",
        unix = unix.display(),
        edge = nodes.last().cloned().unwrap_or_default(),
        nodes = nodes.join(", "),
    )
}
