//! Child processes of the real-stack test: each in its own process group, logging to a file,
//! and killed with its whole group when dropped, also when a test panics.

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// What the test prints when a required program is missing.
pub(crate) const INSTALL_HINT: &str =
    "run the test command `bash tests/run.sh`, which installs nginx-light, uwsgi-core, \
     uwsgi-plugin-python3 and python3-django";

/// Pause between two readiness probes: short, because the probes themselves are the signal.
const POLL_PAUSE: Duration = Duration::from_millis(20);

/// A running child process and its log file.
pub(crate) struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
    reaped: bool,
}

impl Proc {
    /// Starts `cmd` in a new process group (so its workers can be killed with it), with stdout
    /// and stderr going to `<dir>/<name>.log`.
    pub(crate) fn spawn(name: &str, mut cmd: Command, dir: &Path) -> Proc {
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
        Proc {
            name: name.to_owned(),
            child,
            log,
            reaped: false,
        }
    }

    /// Fails the test if the process has already exited: it was meant to keep running.
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

    /// SIGKILLs the whole process group (master and workers) and reaps the leader.
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

    /// The last `lines` lines of the log, for failure messages.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
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

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill_group();
    }
}

/// A loopback port that was free a moment ago (bound to port 0, then released).
pub(crate) fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// Calls `probe` until it returns `Some`, for at most `timeout`; between attempts checks that
/// `proc` is still alive, so a crashed child fails fast with its log instead of timing out.
pub(crate) fn poll_until<T>(
    proc: &mut Proc,
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    let max_attempts = timeout.as_millis() / POLL_PAUSE.as_millis() + 1;
    for _ in 0..max_attempts {
        if let Some(value) = probe() {
            return value;
        }
        proc.assert_running();
        if Instant::now() >= deadline {
            break;
        }
        thread::sleep(POLL_PAUSE);
    }
    panic!(
        "{what}: not ready after {timeout:?}; log:\n{}",
        proc.log_tail(40)
    );
}

/// Whether a TCP connect to `addr` succeeds now.
pub(crate) fn accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// Finds a program on PATH or in the sbin directories, where Debian puts nginx.
pub(crate) fn find_program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = ["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from);
    std::env::split_paths(&path)
        .chain(extra)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("`{name}` is not installed: {INSTALL_HINT}"))
}
