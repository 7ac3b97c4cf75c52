//! A hosts file of the test's own, seen as `/etc/hosts` by one agent process: the agent runs in a
//! mount namespace of its own (`unshare --mount`, the same step `ip netns exec` takes for
//! `/etc/netns/NAME/hosts`) where the file is bind-mounted over `/etc/hosts`, sharing the test's
//! network. The agent then resolves names with the system resolver, as in production, and the
//! test changes what a name gives by rewriting the file. An `nsswitch.conf` saying `hosts: files`
//! is mounted too, so no query for the test's names leaves the machine and a name missing from
//! the file fails at once. Needs root (a mount namespace).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::AGENT;
use crate::support::process::Process;

/// The test's hosts file.
pub struct HostsFile {
    path: PathBuf,
    nsswitch: PathBuf,
}

impl HostsFile {
    /// Creates `hosts` in `dir` listing `name` at `ips`; fails the test with a clear message when
    /// this machine cannot make a mount namespace.
    pub fn new(dir: &Path, name: &str, ips: &[&str]) -> Self {
        require_mount_namespaces();
        let hosts = Self {
            path: dir.join("hosts"),
            nsswitch: dir.join("nsswitch.conf"),
        };
        std::fs::write(&hosts.nsswitch, "hosts: files\n").expect("write nsswitch.conf");
        hosts.set(name, ips);
        hosts
    }

    /// Makes `name` resolve to `ips` from now on. The file is rewritten in place: the bind mount
    /// holds its inode, so a renamed new file would not be seen.
    pub fn set(&self, name: &str, ips: &[&str]) {
        let mut text = String::from("127.0.0.1 localhost\n");
        for ip in ips {
            text.push_str(&format!("{ip} {name}\n"));
        }
        std::fs::write(&self.path, text).expect("write the hosts file");
    }

    /// Runs the router-agent binary with `args`, the hosts file as its `/etc/hosts`, logging at
    /// info to `agent.log` in `dir`. `ip netns exec` would also do it, but needs a name for the
    /// test's own network namespace and a file under /etc/netns: state left on the machine.
    pub fn spawn_agent(&self, dir: &Path, args: &[String]) -> Process {
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(concat!(
                r#"mount --bind "$0" /etc/hosts && "#,
                r#"{ [ ! -e /etc/nsswitch.conf ] || mount --bind "$1" /etc/nsswitch.conf; } && "#,
                r#"shift && exec "$@""#
            ))
            .arg(&self.path)
            .arg(&self.nsswitch)
            .arg(AGENT)
            .args(args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1");
        Process::spawn("agent", cmd, dir)
    }
}

fn require_mount_namespaces() {
    let out = Command::new("unshare")
        .args(["--mount", "true"])
        .stdin(Stdio::null())
        .output();
    let ok = out.as_ref().is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "this test runs the agent in a mount namespace of its own (unshare --mount, from \
         util-linux) and must run as root (bash tests/run.sh as root, or sudo): {out:?}"
    );
}
