//! The real `routerd` binary as an operator runs it: a config file and a UNIX listener in a temp
//! dir, its log captured, signals sent with `kill`. Readiness and exit are waited on (a socket
//! that accepts, signal handlers in place, a log line), never slept on.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use tempfile::TempDir;

use super::process::Process;
use super::wait;

/// Path of the binary under test.
pub const ROUTERD: &str = env!("CARGO_BIN_EXE_routerd");

/// How long routerd may take to start listening, or to exit when it should.
pub const STARTUP: Duration = Duration::from_secs(10);

/// `routerd --config CONFIG`, logging at info without colours, blind to `ROUTERD_CONFIG`.
pub fn routerd_command(config: &Path) -> Command {
    let mut cmd = Command::new(ROUTERD);
    add_routerd_args(&mut cmd, config);
    cmd
}

/// Gives `cmd` (routerd, or a wrapper that execs it) the arguments and environment above.
pub fn add_routerd_args(cmd: &mut Command, config: &Path) {
    cmd.arg("--config")
        .arg(config)
        .env_remove("ROUTERD_CONFIG")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1");
}

/// The first TCP address logged on a line of `log` holding `marker`, from its `address=` field
/// (routerd logs `listening for uwsgi clients`, `control plane listening` and `serving /metrics`
/// so; a UNIX listener's `unix:/path` is passed over).
pub fn logged_addr(log: &str, marker: &str) -> Option<SocketAddr> {
    log.lines().filter(|l| l.contains(marker)).find_map(|line| {
        let at = line.find("address=")? + "address=".len();
        line[at..].split_whitespace().next()?.parse().ok()
    })
}

/// Blocking: waits until `routerd`, run as a [`Process`], has logged a TCP address on a line
/// holding `marker` (its listeners are bound by then, so it accepts); returns the address.
pub fn wait_logged_addr(routerd: &mut Process, marker: &str) -> SocketAddr {
    let what = format!("routerd logging {marker:?}");
    routerd.poll_log(&what, STARTUP, |log| logged_addr(log, marker))
}

/// A running `routerd --config FILE`, killed when dropped.
pub struct Routerd {
    // Dropped first: routerd goes before its temp dir.
    process: Process,
    dir: TempDir,
    /// The config file routerd was started with (rewrite it and send SIGHUP to reload).
    pub config_path: PathBuf,
    /// The uwsgi listener, as `unix:/path` for [`super::send`].
    pub addr: String,
}

impl Routerd {
    /// Starts routerd on `body` (pools, routes, ...; no `[listen]` table) plus a listener on a
    /// UNIX socket in a fresh temp dir, and waits until it accepts connections and handles signals.
    pub async fn start(body: &str) -> Self {
        Self::start_with_ulimit(body, &[]).await
    }

    /// Like [`Routerd::start`], but returns as soon as the listener accepts a connection, which
    /// is all an operator's script (or systemd) can observe from outside.
    pub async fn start_accepting(body: &str) -> Self {
        let mut r = Self::spawn(body);
        r.wait_accepting().await;
        r
    }

    /// Starts routerd as [`Routerd::start`] does, under a shell's `ulimit` arguments (e.g.
    /// `["-n", "256"]` for soft and hard open file limits of 256, `["-Sn", "256"]` for the soft
    /// one; none for no limit), and waits until it accepts and handles signals.
    pub async fn start_with_ulimit(body: &str, ulimit: &[&str]) -> Self {
        let mut r = Self::spawn_with(body, ulimit);
        r.wait_accepting().await;
        r.wait_signals_caught().await;
        r
    }

    /// Starts routerd as [`Routerd::start`] does, without waiting for anything.
    pub fn spawn(body: &str) -> Self {
        Self::spawn_with(body, &[])
    }

    fn spawn_with(body: &str, ulimit: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = dir.path().join("routerd.sock");
        let addr = format!("unix:{}", socket.display());
        let config_path = dir.path().join("routerd.toml");
        write_atomically(dir.path(), &config_path, &listen_last(body, &addr));
        let mut cmd = if ulimit.is_empty() {
            Command::new(ROUTERD)
        } else {
            // `exec` keeps the pid: signals and /proc reach routerd itself.
            let mut shell = Command::new("sh");
            let script = format!("ulimit {} && exec \"$0\" \"$@\"", ulimit.join(" "));
            shell.arg("-c").arg(script).arg(ROUTERD);
            shell
        };
        add_routerd_args(&mut cmd, &config_path);
        Self {
            process: Process::spawn("routerd", cmd, dir.path()),
            dir,
            config_path,
            addr,
        }
    }

    /// The config text routerd gets for `body`: `body` and a `[listen]` table on the socket.
    pub fn config_text(&self, body: &str) -> String {
        listen_last(body, &self.addr)
    }

    /// Replaces the config file atomically (write, then rename), as an editor or deploy tool does,
    /// so a reload never reads half a file.
    pub fn rewrite(&self, body: &str) {
        self.rewrite_raw(&self.config_text(body));
    }

    /// Replaces the config file with exactly `text` (for broken configs).
    pub fn rewrite_raw(&self, text: &str) {
        write_atomically(self.dir.path(), &self.config_path, text);
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Sends a signal by name (`HUP`, `USR1`, `TERM`, `INT`) with `kill`.
    pub fn signal(&self, name: &str) {
        self.process.signal(name);
    }

    /// Everything routerd logged so far.
    pub fn stderr(&self) -> String {
        self.process.log()
    }

    /// Waits until the log holds `needle` at least `count` times; panics after `limit`.
    pub async fn wait_log(&mut self, needle: &str, count: usize, limit: Duration) {
        self.process.wait_log(needle, count, limit).await;
    }

    /// The TCP address routerd logged on a line holding `marker`, once it has logged it.
    pub async fn logged_addr(&mut self, marker: &str) -> SocketAddr {
        self.wait_log(marker, 1, STARTUP).await;
        logged_addr(&self.stderr(), marker)
            .unwrap_or_else(|| panic!("no TCP address on a {marker:?} line:\n{}", self.stderr()))
    }

    /// The metrics listener (`serving /metrics ... address=`).
    pub async fn metrics_addr(&mut self) -> SocketAddr {
        self.logged_addr("serving /metrics").await
    }

    /// The control listener (`control plane listening address=`).
    pub async fn control_addr(&mut self) -> SocketAddr {
        self.logged_addr("control plane listening").await
    }

    /// The exit status, if routerd has exited.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        self.process.try_exit()
    }

    /// Waits up to `limit` for routerd to exit.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        self.process.exited_within(limit).await
    }

    /// Waits until the listener accepts connections.
    pub async fn wait_accepting(&mut self) {
        let path = self.addr.trim_start_matches("unix:").to_owned();
        self.wait_starting("the uwsgi listener to accept", async || {
            tokio::net::UnixStream::connect(&path).await.ok()
        })
        .await;
    }

    /// Waits until SIGHUP, SIGINT, SIGUSR1 and SIGTERM have handlers (before that, SIGHUP kills
    /// routerd).
    async fn wait_signals_caught(&mut self) {
        let pid = self.pid();
        self.wait_starting("signal handlers", async || {
            super::process::signals_caught(pid)
                .unwrap_or(true)
                .then_some(())
        })
        .await;
    }

    /// Waits within [`STARTUP`] for `probe`; fails the test with the log if routerd exits first.
    async fn wait_starting<T>(&mut self, what: &str, mut probe: impl AsyncFnMut() -> Option<T>) {
        let ready = wait::within(STARTUP, async || {
            if let Some(found) = probe().await {
                return Some(Some(found));
            }
            self.try_exit().map(|_| None)
        })
        .await;
        match ready {
            Ok(Some(_)) => {}
            Ok(None) => panic!(
                "routerd exited ({:?}) while starting, before {what}:\n{}",
                self.try_exit(),
                self.stderr()
            ),
            Err(e) => panic!("routerd starting, {what}: {e}:\n{}", self.stderr()),
        }
    }

    /// Panics if routerd exited, or if `deadline` passed (for tests polling in a tight loop).
    pub fn assert_starting(&mut self, deadline: tokio::time::Instant) {
        if let Some(status) = self.try_exit() {
            panic!(
                "routerd exited ({status}) while starting:\n{}",
                self.stderr()
            );
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "routerd was not ready within {STARTUP:?}:\n{}",
            self.stderr()
        );
    }
}

/// `body`, then the uwsgi listener and (unless `body` has its own) ephemeral control and metrics
/// ports: tests never take fixed ports. The tables go last so top-level keys in `body` stay top-level.
fn listen_last(body: &str, addr: &str) -> String {
    let mut text = format!("{body}\n[listen]\nuwsgi = [\"{addr}\"]\n");
    if !body.contains("[control]") {
        text.push_str("[control]\nlisten = \"127.0.0.1:0\"\n");
    }
    if !body.contains("[metrics]") {
        text.push_str("[metrics]\nlisten = \"127.0.0.1:0\"\n");
    }
    text
}

fn write_atomically(dir: &Path, path: &Path, text: &str) {
    let tmp = dir.join("routerd.toml.new");
    std::fs::write(&tmp, text).expect("write config");
    std::fs::rename(&tmp, path).expect("rename config into place");
}
