//! A child process that the test stops the way an operator or a crash does: a signal to its
//! leader (SIGTERM, as systemd sends) and its exit status, or SIGKILL to its whole process group.
//! Each child runs in its own process group, logs to a file, and is killed with its group when
//! dropped, also when a test panics.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use std::os::unix::process::CommandExt;

use crate::procs::INSTALL_HINT;

/// Pause between two probes of a bounded wait.
const POLL_PAUSE: Duration = Duration::from_millis(10);

/// A running child process and its log file.
pub(crate) struct Child {
    name: String,
    child: std::process::Child,
    log: PathBuf,
    reaped: bool,
}

impl Child {
    /// Starts `cmd` in a new process group, stdout and stderr going to `<dir>/<name>.log`.
    pub(crate) fn spawn(name: &str, mut cmd: Command, dir: &Path) -> Child {
        let log = dir.join(format!("{name}.log"));
        let out = File::create(&log).expect("create log file");
        let err = out.try_clone().expect("clone log file handle");
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}; {INSTALL_HINT}"));
        Child {
            name: name.to_owned(),
            child,
            log,
            reaped: false,
        }
    }

    /// Sends `signal` (`TERM`, `INT`, ...) to the process itself, not to its group.
    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -s {signal} {} failed", self.name);
    }

    /// Waits at most `timeout` for the process to exit and returns its status.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let max_attempts = timeout.as_millis() / POLL_PAUSE.as_millis() + 1;
        for _ in 0..max_attempts {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.reaped = true;
                return status;
            }
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(POLL_PAUSE);
        }
        panic!(
            "{} still running {timeout:?} after being asked to stop; log:\n{}",
            self.name,
            self.log_tail(40)
        );
    }

    /// Fails with the log if the process has exited: it was meant to keep running.
    pub(crate) fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            self.reaped = true;
            panic!(
                "{} exited early with {status}; its log:\n{}",
                self.name,
                self.log_tail(40)
            );
        }
    }

    /// SIGKILLs the whole process group (a master and its workers) and reaps the leader.
    pub(crate) fn kill_group(&mut self) {
        if self.reaped {
            return;
        }
        // std can only signal the leader; `kill -KILL -- -PGID` reaches its workers too.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.reaped = true;
    }

    /// The whole log so far.
    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `lines` lines of the log, for failure messages.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        let text = self.log_text();
        let all: Vec<&str> = text.lines().collect();
        let start = all.len().saturating_sub(lines);
        format!(
            "--- {} ({}) ---\n{}",
            self.name,
            self.log.display(),
            all[start..].join("\n")
        )
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill_group();
    }
}
