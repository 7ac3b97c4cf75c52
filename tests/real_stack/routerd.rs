//! The `routerd` binary under test, listening on loopback TCP and on a UNIX socket.

use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::procs::{self, Proc};

/// A running routerd.
pub(crate) struct Routerd {
    /// Its TCP uwsgi listener.
    pub(crate) tcp: SocketAddr,
    /// Its UNIX uwsgi listener.
    pub(crate) unix: PathBuf,
    proc: Proc,
}

impl Routerd {
    /// Starts routerd with one round-robin pool over `nodes` and waits until both listeners
    /// accept connections.
    pub(crate) fn start(nodes: &[SocketAddr], dir: &Path) -> Routerd {
        let tcp = SocketAddr::from(([127, 0, 0, 1], procs::free_port()));
        let unix = dir.join("router.sock");
        let conf = dir.join("routerd.toml");
        std::fs::write(&conf, config(tcp, &unix, nodes)).expect("write routerd.toml");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_routerd"));
        // Debug logs show each session and connect attempt; no colours, the log is a file.
        cmd.arg("--config")
            .arg(&conf)
            .env("RUST_LOG", "info,uwsgi_router=debug")
            .env("NO_COLOR", "1");
        let mut proc = Proc::spawn("routerd", cmd, dir);
        let timeout = Duration::from_secs(10);
        procs::poll_until(&mut proc, &format!("routerd on {tcp}"), timeout, || {
            procs::accepts(tcp).then_some(())
        });
        let what = format!("routerd on unix:{}", unix.display());
        procs::poll_until(&mut proc, &what, timeout, || {
            UnixStream::connect(&unix).ok()
        });
        Routerd { tcp, unix, proc }
    }

    /// The end of routerd's stderr, for failure messages.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        self.proc.log_tail(lines)
    }
}

/// routerd.toml: both listeners and a round-robin default pool. Slow start is off so that
/// every node takes its share from the first request; retries and ejection keep defaults.
/// Requests for `edge.test` go to pool `edge`, the last node alone, so a test can tell which
/// host a request was routed by.
/// The control and metrics listeners stay on, as deployed, but on free ports: their default
/// ports would clash between tests running at once.
fn config(tcp: SocketAddr, unix: &Path, nodes: &[SocketAddr]) -> String {
    let nodes: Vec<String> = nodes.iter().map(|n| format!("\"{n}\"")).collect();
    format!(
        "[listen]
uwsgi = [\"{tcp}\", \"unix:{unix}\"]

[control]
listen = \"127.0.0.1:{control}\"

[metrics]
listen = \"127.0.0.1:{metrics}\"

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
        control = procs::free_port(),
        metrics = procs::free_port(),
        edge = nodes.last().cloned().unwrap_or_default(),
        nodes = nodes.join(", "),
    )
}
