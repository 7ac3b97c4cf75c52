//! The `routerd` binary with its control plane on: a uwsgi listener for nginx and a gRPC control
//! listener for the agents, and a pool with no static nodes, filled only by agents.

use std::net::SocketAddr;
use std::path::Path;

use crate::support::binary::{routerd_command, wait_logged_addr};
use crate::support::process::Process;

/// A running routerd.
pub(crate) struct Router {
    /// Its uwsgi listener, nginx's upstream.
    pub(crate) uwsgi: SocketAddr,
    /// Its control listener (Registry for agents, Admin for routerctl).
    pub(crate) control: SocketAddr,
    process: Process,
}

impl Router {
    /// Starts routerd on ephemeral ports, and waits until it has logged both listeners (they
    /// are bound, so they accept, by then).
    pub(crate) fn start(dir: &Path) -> Router {
        Self::start_at(dir, "routerd", "127.0.0.1:0", "127.0.0.1:0")
    }

    /// Starts routerd as `name` (its config `NAME.toml` and log `NAME.log` in `dir`) with its
    /// uwsgi and control listeners on `uwsgi` and `control`, and waits until it has logged both.
    pub(crate) fn start_at(dir: &Path, name: &str, uwsgi: &str, control: &str) -> Router {
        let conf = dir.join(format!("{name}.toml"));
        let text = CONFIG
            .replacen("127.0.0.1:0", uwsgi, 1)
            .replacen("127.0.0.1:0", control, 1);
        std::fs::write(&conf, text).expect("write routerd's config");
        let mut cmd = routerd_command(&conf);
        // Debug logs show each session and connect attempt.
        cmd.env("RUST_LOG", "info,uwsgi_router=debug");
        let mut process = Process::spawn(name, cmd, dir);
        let uwsgi = wait_logged_addr(&mut process, "listening for uwsgi clients");
        let control = wait_logged_addr(&mut process, "control plane listening");
        Router {
            uwsgi,
            control,
            process,
        }
    }

    /// SIGTERMs routerd (it stops accepting, lets its sessions finish and exits) and waits for it.
    pub(crate) fn stop(&mut self) -> std::process::ExitStatus {
        self.process
            .stop("TERM", std::time::Duration::from_secs(15))
    }

    /// Fails with routerd's log if it has exited.
    pub(crate) fn assert_running(&mut self) {
        self.process.assert_running();
    }

    /// routerd's whole log so far.
    pub(crate) fn log_text(&self) -> String {
        self.process.log()
    }

    /// The end of routerd's log, for failure messages.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        self.process.log_tail(lines)
    }
}

/// routerd.toml: the default pool balances with `least-load` (which uses the agents' reports)
/// over registered nodes only, ramping new ones in over 1 s. A request that gets no first byte
/// within 5 s is answered 504 rather than hanging a load client. No metrics listener.
const CONFIG: &str = "[listen]
uwsgi = [\"127.0.0.1:0\"]

[control]
listen = \"127.0.0.1:0\"

[metrics]
listen = \"\"

[timeouts]
first_byte = \"5s\"

[pools.default]
algorithm = \"least-load\"
slow_start = \"1s\"
";
