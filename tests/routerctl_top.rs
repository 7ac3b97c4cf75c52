//! `routerctl top` in a real terminal: run inside a detached tmux session of fixed size, it shows
//! a row per node, redraws as states change, quits on q or Ctrl-C with exit status 0, and leaves
//! the terminal as it found it.

mod routerctl_support;
mod support;

use std::time::Duration;

use routerctl_support::*;
use support::*;

/// A private tmux server (its own socket in a temp dir), killed when dropped.
struct Tmux {
    dir: tempfile::TempDir,
}

impl Tmux {
    /// Starts the shell command `command` in session `top`, 160x40.
    async fn start(command: &str) -> Self {
        let t = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        let size = ["-x", "160", "-y", "40"];
        let mut args = vec!["new-session", "-d", "-s", "top"];
        args.extend(size);
        args.push(command);
        t.tmux(&args).await;
        t
    }

    fn socket(&self) -> std::path::PathBuf {
        self.dir.path().join("tmux.sock")
    }

    async fn tmux(&self, args: &[&str]) -> String {
        let out = tokio::process::Command::new("tmux")
            .arg("-S")
            .arg(self.socket())
            .args(["-f", "/dev/null"])
            .args(args)
            .kill_on_drop(true)
            .output()
            .await
            .expect("tmux must be installed (apt-get install -y tmux; tests/run.sh does it)");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// What the pane shows now.
    async fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "top"]).await
    }

    /// Polls the pane until `cond` holds on what it shows; panics with the screen after `STEP`.
    async fn wait_screen(&self, what: &str, cond: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        let every = Duration::from_millis(50);
        let shown = wait::within_every(every, STEP, async || {
            last = self.screen().await;
            cond(&last).then(|| last.clone())
        })
        .await;
        shown.unwrap_or_else(|e| panic!("the pane showing {what}: {e}:\n{last}"))
    }

    /// Waits for routerctl to exit and returns its exit status, as the shell in the pane prints
    /// it on the normal screen: it shows only once the alternate screen is left. (tmux's own
    /// `pane_dead_status` is sometimes empty when the pane's pty closes before the exit is
    /// reaped, and a dead pane's text cannot be relied on.)
    async fn wait_exit(&self) -> String {
        let screen = self
            .wait_screen("routerctl's exit", |s| s.contains(EXITED))
            .await;
        let status = screen.split(EXITED).nth(1).unwrap_or_default();
        status
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned()
    }
}

/// What the pane's shell prints after routerctl, followed by its exit status.
const EXITED: &str = "routerctl exited with status";

/// The pane's command: `routerctl ARGS`, then its exit status.
fn top(args: &str) -> String {
    // `exec cat` keeps the pane open (reading a pty nobody types into) so it can be read.
    format!("'{ROUTERCTL}' {args}; echo \"{EXITED} $?\"; exec cat")
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = std::process::Command::new("tmux")
            .arg("-S")
            .arg(self.socket())
            .arg("kill-server")
            .output();
    }
}

/// The line of `screen` that shows node `id`.
fn node_line<'a>(screen: &'a str, id: &str) -> Option<&'a str> {
    screen
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(id))
}

#[tokio::test]
async fn top_shows_nodes_live_and_quits_on_q() {
    let s = FakeNode::start("static", Behaviour::Echo).await;
    let w = FakeNode::start("web-1", Behaviour::Echo).await;
    let router = start_router(&format!(
        "{}slow_start = \"0s\"\n",
        pool_toml("round-robin", &[&s])
    ))
    .await;
    let _r = register(&router, "web-1", w.addr).await;
    let sid = s.addr.to_string();
    let tmux = Tmux::start(&top(&format!(
        "--router {} top --interval 200ms",
        control_url(&router)
    )))
    .await;

    let screen = tmux
        .wait_screen("both nodes", |s| {
            node_line(s, &sid).is_some() && node_line(s, "web-1").is_some()
        })
        .await;
    assert!(
        screen
            .lines()
            .any(|l| l.starts_with("POOL") && l.contains("REQ/S")),
        "{screen}"
    );
    for id in [sid.as_str(), "web-1"] {
        let line = node_line(&screen, id).unwrap();
        assert!(
            line.starts_with("default ") && line.contains(" active "),
            "{line}"
        );
    }

    // It redraws: a drain shows up, and request rates appear from the second frame on.
    router.cluster().drain(&sid);
    for _ in 0..10 {
        send(&router.local_addrs()[0], &get("h", "/"), b"").await;
    }
    tmux.wait_screen("the drained node", |s| {
        node_line(s, &sid).is_some_and(|l| l.contains(" drained "))
    })
    .await;
    tmux.wait_screen("a request rate for web-1", |s| {
        node_line(s, "web-1").is_some_and(|l| l.split_whitespace().nth(5).is_some_and(|r| r != "-"))
    })
    .await;

    tmux.tmux(&["send-keys", "-t", "top", "q"]).await;
    assert_eq!(tmux.wait_exit().await, "0");
    let after = tmux.screen().await;
    assert!(
        !after.contains("REQ/S"),
        "the alternate screen was left:\n{after}"
    );
}

#[tokio::test]
async fn top_quits_on_ctrl_c_and_shows_unreachable_routers() {
    let s = FakeNode::start("static", Behaviour::Echo).await;
    let router = start_router(&pool_toml("round-robin", &[&s])).await;
    let sid = s.addr.to_string();
    let down = closed_port().await;
    let tmux = Tmux::start(&top(&format!(
        "--router {},{down} top --interval 200ms",
        control_url(&router)
    )))
    .await;
    let screen = tmux
        .wait_screen("the node and the unreachable router", |s| {
            node_line(s, &sid).is_some() && s.contains("cannot reach router")
        })
        .await;
    assert!(screen.contains(&down), "{screen}");
    tmux.tmux(&["send-keys", "-t", "top", "C-c"]).await;
    assert_eq!(tmux.wait_exit().await, "0");
}
