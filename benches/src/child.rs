//! Processes the benchmark starts: each in its own process group, logging to a file, and killed
//! (group and all) when its guard drops, so nothing outlives the run even on error or panic.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context as _};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::time::Instant;

/// A running child process; dropping it kills its whole process group.
#[derive(Debug)]
pub struct Child {
    name: String,
    inner: std::process::Child,
    log: PathBuf,
}

impl Child {
    /// Starts `cmd` with stdout and stderr going to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> anyhow::Result<Self> {
        let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        cmd.stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            // Its own group, so that killing it also kills whatever it forked (uWSGI's workers).
            .process_group(0);
        let inner = cmd
            .spawn()
            .with_context(|| format!("starting {name}: {cmd:?}"))?;
        Ok(Self {
            name: name.to_owned(),
            inner,
            log: log.to_owned(),
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.inner.id()
    }

    /// Fails, with the end of the log, if the process has exited.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.inner.try_wait()? {
            bail!(
                "{} exited ({status}); last log lines:\n{}",
                self.name,
                self.log_tail(20)
            );
        }
        Ok(())
    }

    /// SIGKILLs the whole process group now, as a crash would, without waiting for it.
    pub fn kill_group(&self) -> anyhow::Result<()> {
        killpg(Pid::from_raw(self.inner.id() as i32), Signal::SIGKILL)
            .with_context(|| format!("killing {}", self.name))
    }

    /// The last `n` lines of the process's log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Waits until `addr` accepts connections (the real readiness signal), failing if the
    /// process exits or `limit` passes first.
    pub async fn wait_listening(
        &mut self,
        addr: SocketAddr,
        limit: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            self.ensure_running()?;
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} not listening on {addr} after {limit:?}; log:\n{}",
                    self.name,
                    self.log_tail(20)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // The group id is the child's pid (process_group(0)). ESRCH just means it is gone already.
        let _ = killpg(Pid::from_raw(self.inner.id() as i32), Signal::SIGKILL);
        let _ = self.inner.wait();
    }
}

/// A loopback TCP port that was free a moment ago (the OS picks it; tiny reuse race accepted).
pub fn free_port() -> anyhow::Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(l.local_addr()?)
}
