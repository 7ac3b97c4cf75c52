//! The `routerd` binary with its control plane on: a uwsgi listener for nginx and a gRPC control
//! listener for the agents, and a pool with no static nodes, filled only by agents.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::procs::{self, Proc};

/// A running routerd.
pub(crate) struct Router {
    /// Its uwsgi listener, nginx's upstream.
    pub(crate) uwsgi: SocketAddr,
    /// Its control listener (Registry for agents, Admin for routerctl).
    pub(crate) control: SocketAddr,
    /// Its log (stdout and stderr).
    pub(crate) log: PathBuf,
    proc: Proc,
}

impl Router {
    /// Starts routerd and waits until both listeners accept connections.
    pub(crate) fn start(dir: &Path) -> Router {
        let uwsgi = SocketAddr::from(([127, 0, 0, 1], procs::free_port()));
        let control = SocketAddr::from(([127, 0, 0, 1], procs::free_port()));
        let conf = dir.join("routerd.toml");
        std::fs::write(&conf, config(uwsgi, control)).expect("write routerd.toml");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_routerd"));
        // Debug logs show each session and connect attempt; no colours, the log is a file.
        cmd.arg("--config")
            .arg(&conf)
            .env("RUST_LOG", "info,uwsgi_router=debug")
            .env("NO_COLOR", "1");
        let mut proc = Proc::spawn("routerd", cmd, dir);
        let timeout = Duration::from_secs(10);
        for addr in [uwsgi, control] {
            procs::poll_until(&mut proc, &format!("routerd on {addr}"), timeout, || {
                procs::accepts(addr).then_some(())
            });
        }
        Router {
            uwsgi,
            control,
            log: dir.join("routerd.log"),
            proc,
        }
    }

    /// Fails with routerd's log if it has exited.
    pub(crate) fn assert_running(&mut self) {
        self.proc.assert_running();
    }

    /// routerd's whole log so far.
    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The end of routerd's log, for failure messages.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        self.proc.log_tail(lines)
    }
}

/// routerd.toml: the default pool balances with `least-load` (which uses the agents' reports)
/// over registered nodes only, ramping new ones in over 1 s. A request that gets no first byte
/// within 5 s is answered 504 rather than hanging a load client. No metrics listener.
fn config(uwsgi: SocketAddr, control: SocketAddr) -> String {
    format!(
        "[listen]
uwsgi = [\"{uwsgi}\"]

[control]
listen = \"{control}\"

[metrics]
listen = \"\"

[timeouts]
first_byte = \"5s\"

[pools.default]
algorithm = \"least-load\"
slow_start = \"1s\"
"
    )
}
