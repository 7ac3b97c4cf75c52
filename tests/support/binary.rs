//! The real `routerd` binary as an operator runs it: a config file and a UNIX listener in a temp
//! dir, stderr captured to a file, signals sent with `kill`. Readiness and exit are polled against
//! deadlines, never slept on.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use tempfile::TempDir;
use tokio::time::Instant;

/// Path of the binary under test.
pub const ROUTERD: &str = env!("CARGO_BIN_EXE_routerd");

/// How long routerd may take to start listening, or to exit when it should.
pub const STARTUP: Duration = Duration::from_secs(10);

/// Poll interval of every wait below.
const POLL: Duration = Duration::from_millis(10);

/// A running `routerd --config FILE`, killed when dropped.
pub struct Routerd {
    child: Child,
    dir: TempDir,
    /// The config file routerd was started with (rewrite it and send SIGHUP to reload).
    pub config_path: PathBuf,
    /// The uwsgi listener, as `unix:/path` for [`super::send`].
    pub addr: String,
    stderr_path: PathBuf,
    exit: Option<ExitStatus>,
}

impl Routerd {
    /// Starts routerd on `body` (pools, routes, ...; no `[listen]` table) plus a listener on a
    /// UNIX socket in a fresh temp dir, and waits until it accepts connections and handles signals.
    pub async fn start(body: &str) -> Self {
        let mut r = Self::start_accepting(body).await;
        r.wait_signals_caught().await;
        r
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
    /// one), and waits until it accepts.
    pub async fn start_with_ulimit(body: &str, ulimit: &[&str]) -> Self {
        let mut r = Self::spawn_with(body, Some(ulimit));
        r.wait_accepting().await;
        r.wait_signals_caught().await;
        r
    }

    /// Starts routerd as [`Routerd::start`] does, without waiting for anything.
    pub fn spawn(body: &str) -> Self {
        Self::spawn_with(body, None)
    }

    fn spawn_with(body: &str, ulimit: Option<&[&str]>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = dir.path().join("routerd.sock");
        let addr = format!("unix:{}", socket.display());
        let config_path = dir.path().join("routerd.toml");
        let stderr_path = dir.path().join("stderr.log");
        write_atomically(dir.path(), &config_path, &listen_last(body, &addr));
        Self {
            child: spawn(&config_path, &stderr_path, ulimit),
            dir,
            config_path,
            addr,
            stderr_path,
            exit: None,
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
        self.child.id()
    }

    /// Sends a signal by name (`HUP`, `USR1`, `TERM`, `INT`) with `kill`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {} failed", self.pid());
    }

    /// Everything routerd wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Waits until stderr holds `needle` at least `count` times; panics after `limit`.
    pub async fn wait_log(&mut self, needle: &str, count: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.stderr().matches(needle).count() < count {
            if let Some(status) = self.try_exit() {
                panic!(
                    "routerd exited ({status}) before logging {needle:?}:\n{}",
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "routerd did not log {needle:?} {count} time(s) within {limit:?}:\n{}",
                self.stderr()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// The exit status, if routerd has exited.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().expect("poll routerd");
        }
        self.exit
    }

    /// Waits up to `limit` for routerd to exit.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.try_exit() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the listener accepts connections.
    pub async fn wait_accepting(&mut self) {
        let deadline = Instant::now() + STARTUP;
        let path = self.addr.trim_start_matches("unix:").to_owned();
        while tokio::net::UnixStream::connect(&path).await.is_err() {
            self.assert_starting(deadline);
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until SIGHUP, SIGINT, SIGUSR1 and SIGTERM have handlers (before that, SIGHUP kills
    /// routerd).
    async fn wait_signals_caught(&mut self) {
        let deadline = Instant::now() + STARTUP;
        while !signals_caught(self.pid()).unwrap_or(true) {
            self.assert_starting(deadline);
            tokio::time::sleep(POLL).await;
        }
    }

    /// Panics if routerd exited, or if `deadline` passed.
    pub fn assert_starting(&mut self, deadline: Instant) {
        if let Some(status) = self.try_exit() {
            panic!(
                "routerd exited ({status}) while starting:\n{}",
                self.stderr()
            );
        }
        assert!(
            Instant::now() < deadline,
            "routerd was not ready within {STARTUP:?}:\n{}",
            self.stderr()
        );
    }
}

impl Drop for Routerd {
    fn drop(&mut self) {
        if self.try_exit().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
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

fn spawn(config: &Path, stderr: &Path, ulimit: Option<&[&str]>) -> Child {
    let log = std::fs::File::create(stderr).expect("create stderr log");
    let mut command = match ulimit {
        None => Command::new(ROUTERD),
        Some(args) => {
            // `exec` keeps the pid: signals and /proc reach routerd itself.
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("ulimit {} && exec \"$0\" \"$@\"", args.join(" ")))
                .arg(ROUTERD);
            c
        }
    };
    command
        .arg("--config")
        .arg(config)
        .env_remove("ROUTERD_CONFIG")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn routerd")
}

/// Whether SIGHUP, SIGINT, SIGUSR1 and SIGTERM all have handlers in process `pid`, from the `SigCgt` mask
/// of /proc/PID/status. `None` where there is no /proc to ask.
pub fn signals_caught(pid: u32) -> Option<bool> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())?;
    // Signal n is bit n-1: SIGHUP 1, SIGINT 2, SIGUSR1 10, SIGTERM 15.
    let wanted = (1 << 0) | (1 << 1) | (1 << 9) | (1 << 14);
    Some(mask & wanted == wanted)
}
