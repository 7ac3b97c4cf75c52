//! Test support for routerctl: runs the real binary against routers (bounded in time) and reads
//! its tables; registers nodes as an agent would and keeps their leases alive.
#![allow(dead_code, unreachable_pub, unused_imports)]

use std::net::SocketAddr;

use uwsgi_router::daemon::Daemon;

pub use crate::support::registry_client::{register as register_at, Registered};
use crate::support::STEP;

/// A router with static and registered nodes.
mod fleet;

pub use fleet::{closed_port, fleet, state, Fleet};

/// The binary under test.
pub const ROUTERCTL: &str = env!("CARGO_BIN_EXE_routerctl");

/// What one routerctl run did.
#[derive(Debug)]
pub struct Run {
    /// Exit code.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts exit 0 and returns stdout.
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "routerctl failed: {self:#?}");
        &self.stdout
    }

    /// Asserts exit 0 and parses stdout as one JSON document.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.ok()).unwrap_or_else(|e| panic!("not JSON ({e}): {self:#?}"))
    }

    /// Asserts exit `code` with exactly one line on stderr, and returns that line.
    pub fn fails(&self, code: i32) -> &str {
        assert_eq!(self.code, code, "{self:#?}");
        assert_eq!(
            self.stderr.lines().count(),
            1,
            "one line on stderr: {self:#?}"
        );
        assert!(self.stderr.starts_with("routerctl: "), "{self:#?}");
        self.stderr.trim_end()
    }
}

/// Runs `routerctl --router R... ARGS` with no ROUTERCTL_* variables from the environment.
pub async fn routerctl(routers: &[String], args: &[&str]) -> Run {
    routerctl_env(routers, args, &[]).await
}

/// Like [`routerctl`], with these environment variables set.
pub async fn routerctl_env(routers: &[String], args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = tokio::process::Command::new(ROUTERCTL);
    for r in routers {
        cmd.arg("--router").arg(r);
    }
    cmd.args(args).kill_on_drop(true);
    for var in [
        "ROUTERCTL_ROUTER",
        "ROUTERCTL_TOKEN_FILE",
        "ROUTERCTL_TLS_CA",
        "ROUTERCTL_TLS_CERT",
        "ROUTERCTL_TLS_KEY",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    let out = tokio::time::timeout(STEP, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("routerctl {args:?} did not finish within {STEP:?}"))
        .expect("run routerctl");
    Run {
        code: out.status.code().expect("routerctl exited, not killed"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// The cells of column `name` of a table, read at the header's offset: a left-aligned column
/// only reads right if every row is padded to the same width.
pub fn column(table: &str, name: &str) -> Vec<String> {
    let mut lines = table.lines();
    let header = lines.next().expect("a header row");
    let at = header
        .find(&format!("{name} "))
        .or_else(|| header.strip_suffix(name).map(str::len))
        .unwrap_or_else(|| panic!("no column {name} in {header:?}"));
    assert!(
        at == 0 || header[..at].ends_with(' '),
        "column {name} in {header:?}"
    );
    lines
        .map(|l| {
            assert!(at == 0 || l[..at].ends_with(' '), "misaligned: {l:?}");
            l[at..].split(' ').next().unwrap_or_default().to_owned()
        })
        .collect()
}

/// The row of `table` whose column `key` is `value`, as column name -> cell.
pub fn row(table: &str, key: &str, value: &str) -> std::collections::HashMap<String, String> {
    let header = table.lines().next().unwrap();
    let names: Vec<&str> = header.split_whitespace().collect();
    let keys = column(table, key);
    let i = keys
        .iter()
        .position(|k| k == value)
        .unwrap_or_else(|| panic!("no row with {key} = {value} in\n{table}"));
    let cells: Vec<&str> = table
        .lines()
        .nth(i + 1)
        .unwrap()
        .split_whitespace()
        .collect();
    names
        .iter()
        .zip(cells)
        .map(|(n, c)| ((*n).to_owned(), c.to_owned()))
        .collect()
}

/// Registers node `id` at `addr` in pool `default` with `router`'s control listener.
pub async fn register(router: &Daemon, id: &str, addr: SocketAddr) -> Registered {
    register_at(router.control_addr().unwrap(), id, addr).await
}
