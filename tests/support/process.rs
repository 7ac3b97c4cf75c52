//! A child process under test (routerd, router-agent, nginx, uWSGI, Prometheus, a script): it
//! runs in its own process group with stdout and stderr in one log file, is stopped the way an
//! operator or a crash stops it (a signal to it, SIGKILL to its whole group), and is killed with
//! its group when dropped, also when a test panics. Every wait on it is bounded.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use super::wait;

/// A running child process and its log.
pub struct Process {
    name: String,
    child: Child,
    log: PathBuf,
    stdout: Option<PathBuf>,
    exit: Option<ExitStatus>,
}

impl Process {
    /// Starts `cmd` as `name`, logging to `<dir>/<name>.log`.
    pub fn spawn(name: &str, cmd: Command, dir: &Path) -> Process {
        Self::spawn_logging_to(name, cmd, &dir.join(format!("{name}.log")))
    }

    /// Starts `cmd` as `name` in a new process group (so its workers go with it), stdin closed,
    /// stdout and stderr appended to `log`.
    pub fn spawn_logging_to(name: &str, cmd: Command, log: &Path) -> Process {
        Self::start(name, cmd, log, None)
    }

    /// Like [`Process::spawn`], with stdout apart in `<dir>/<name>.stdout` (for what a command
    /// prints as its result rather than logs).
    pub fn spawn_apart(name: &str, cmd: Command, dir: &Path) -> Process {
        let stdout = dir.join(format!("{name}.stdout"));
        Self::start(name, cmd, &dir.join(format!("{name}.log")), Some(stdout))
    }

    fn start(name: &str, mut cmd: Command, log: &Path, stdout: Option<PathBuf>) -> Process {
        let err = append(log);
        let out = match &stdout {
            Some(path) => append(path),
            None => err.try_clone().expect("clone the log file handle"),
        };
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        Process {
            name: name.to_owned(),
            child,
            log: log.to_owned(),
            stdout,
            exit: None,
        }
    }

    /// The process id (also its process group's).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`TERM`, `INT`, `HUP`...) to the process itself, not to its group.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args(["-s", signal, &self.pid().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -s {signal} {} failed", self.name);
    }

    /// The exit status, if the process has exited (it is reaped then).
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().expect("poll a child process");
        }
        self.exit
    }

    /// Fails the test with the log if the process has exited: it was meant to keep running.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.try_exit() {
            panic!("{} exited with {status}:\n{}", self.name, self.log_tail(40));
        }
    }

    /// Blocking: waits at most `limit` for the process to exit.
    pub fn poll_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        wait::poll_within(limit, || self.try_exit()).ok()
    }

    /// Blocking: waits at most `limit` for the process to exit; fails the test with the log
    /// when it still runs.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        wait::poll_within(limit, || self.try_exit()).unwrap_or_else(|e| {
            panic!(
                "{} did not exit: {e}; it still runs:\n{}",
                self.name,
                self.log_tail(40)
            )
        })
    }

    /// Blocking: polls `probe` until it returns `Some`, for at most `limit`; fails the test with
    /// the log if the process exits first (a crash fails fast) or the limit passes.
    pub fn poll_while_running<T>(
        &mut self,
        what: &str,
        limit: Duration,
        mut probe: impl FnMut() -> Option<T>,
    ) -> T {
        let found = wait::poll_within(limit, || {
            probe().or_else(|| {
                self.assert_running();
                None
            })
        });
        found.unwrap_or_else(|e| panic!("{what}: {e}:\n{}", self.log_tail(40)))
    }

    /// Blocking: waits until `find` finds what it looks for in the log (a line, an address);
    /// fails the test with the log if the process exits first or `limit` passes.
    pub fn poll_log<T>(
        &mut self,
        what: &str,
        limit: Duration,
        mut find: impl FnMut(&str) -> Option<T>,
    ) -> T {
        let log = self.log.clone();
        self.poll_while_running(what, limit, || {
            find(&std::fs::read_to_string(&log).unwrap_or_default())
        })
    }

    /// Blocking: sends `signal` and waits at most `limit` for the process to exit; fails the
    /// test with the log when it still runs.
    pub fn stop(&mut self, signal: &str, limit: Duration) -> ExitStatus {
        self.signal(signal);
        self.wait_exit(limit)
    }

    /// Like [`Process::stop`], without blocking the runtime's thread.
    pub async fn stop_async(&mut self, signal: &str, limit: Duration) -> ExitStatus {
        self.signal(signal);
        let exited = self.exited_within(limit).await;
        exited.unwrap_or_else(|| {
            panic!(
                "{} still runs {limit:?} after SIG{signal}:\n{}",
                self.name,
                self.log_tail(40)
            )
        })
    }

    /// Waits at most `limit` for the process to exit, without blocking the runtime's thread.
    pub async fn exited_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        wait::within(limit, async || self.try_exit()).await.ok()
    }

    /// Waits until the log holds `needle` at least `count` times; fails the test if the process
    /// exits first or `limit` passes.
    pub async fn wait_log(&mut self, needle: &str, count: usize, limit: Duration) {
        let found = wait::within(limit, async || {
            if self.log().matches(needle).count() >= count {
                return Some(true);
            }
            self.try_exit().map(|_| false)
        })
        .await;
        match found {
            Ok(true) => {}
            Ok(false) => panic!(
                "{} exited ({:?}) before logging {needle:?}:\n{}",
                self.name,
                self.exit,
                self.log()
            ),
            Err(e) => panic!(
                "{} did not log {needle:?} {count} time(s): {e}:\n{}",
                self.name,
                self.log()
            ),
        }
    }

    /// SIGKILLs the whole process group (a master and its workers) and reaps the leader.
    pub fn kill_group(&mut self) {
        // An unreaped leader keeps its pid, so the group id cannot have been reused yet.
        if self.exit.is_some() {
            return;
        }
        // std signals the leader only; `kill -KILL -- -PGID` reaches its workers too.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.pid())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        self.exit = self.child.wait().ok();
    }

    /// Whether SIGHUP, SIGINT and SIGTERM all have handlers (before that, SIGHUP kills a
    /// daemon); `None` where there is no /proc to ask.
    pub fn signals_caught(&self) -> Option<bool> {
        signals_caught(self.pid())
    }

    /// The whole log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// What it printed on stdout, when started with [`Process::spawn_apart`].
    pub fn stdout(&self) -> String {
        let path = self.stdout.as_ref().expect("stdout kept apart");
        std::fs::read_to_string(path).unwrap_or_default()
    }

    /// The last `lines` lines of the log under a header naming the process, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        format!(
            "--- {} ({}) ---\n{}",
            self.name,
            self.log.display(),
            file_tail(&self.log, lines)
        )
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill_group();
    }
}

fn append(path: &Path) -> File {
    File::options()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

/// The last `lines` lines of the file at `path` (nothing if it cannot be read).
pub fn file_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The live processes (zombies left out) of process group `pgid`, from /proc/PID/stat; none
/// where there is no /proc to ask.
pub fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // `pid (comm) state ppid pgrp ...`; comm may hold spaces and parentheses.
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
            fields.first().is_some_and(|state| *state != "Z")
                && fields.get(2).and_then(|g| g.parse::<u32>().ok()) == Some(pgid)
        })
        .collect()
}

/// Whether SIGHUP, SIGINT and SIGTERM all have handlers in process `pid`, from the `SigCgt` mask
/// of /proc/PID/status. `None` where there is no /proc to ask.
pub fn signals_caught(pid: u32) -> Option<bool> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())?;
    // Signal n is bit n-1: SIGHUP 1, SIGINT 2, SIGTERM 15.
    let wanted = (1 << 0) | (1 << 1) | (1 << 14);
    Some(mask & wanted == wanted)
}
