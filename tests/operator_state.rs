//! Operators' overrides outlive a restart: drains, weights and ejections set with routerctl are
//! kept in `state_file` and hold again when routerd starts (static nodes) or when a registered
//! node comes back; a resume ends them for good.

mod routerctl_support;
mod support;

use std::time::Duration;

use routerctl_support::{register_at, routerctl};
use support::*;
use tempfile::TempDir;

fn toml(nodes: &[&FakeNode], state: &std::path::Path) -> String {
    let list: Vec<String> = nodes.iter().map(|n| format!("\"{}\"", n.addr)).collect();
    format!(
        "state_file = \"{}\"\n[pools.default]\nalgorithm = \"round-robin\"\nnodes = [{}]\n",
        state.display(),
        list.join(", ")
    )
}

/// `routerctl node ID --json` on `router`.
async fn node_json(router: &uwsgi_router::daemon::Daemon, id: &str) -> serde_json::Value {
    routerctl(&[control_url(router)], &["node", id, "--json"])
        .await
        .json()
}

#[tokio::test]
async fn static_nodes_keep_their_overrides_across_a_restart_until_resumed() {
    let dir = TempDir::new().unwrap();
    let state = dir.path().join("state.json");
    let a = FakeNode::start("a", Behaviour::Echo).await;
    let b = FakeNode::start("b", Behaviour::Echo).await;
    let c = FakeNode::start("c", Behaviour::Echo).await;
    let (ia, ib, ic) = (a.addr.to_string(), b.addr.to_string(), c.addr.to_string());
    let cfg = toml(&[&a, &b, &c], &state);

    let router = start_router(&cfg).await;
    let url = [control_url(&router)];
    routerctl(&url, &["weight", &ia, "7"]).await.ok();
    routerctl(&url, &["drain", &ib]).await.ok();
    routerctl(&url, &["eject", &ic, "--for", "10m"]).await.ok();
    router.shutdown().await;
    let saved = std::fs::read_to_string(&state).expect("the state file is written");
    for id in [&ia, &ib, &ic] {
        assert!(saved.contains(id.as_str()), "{id} in {saved}");
    }

    // A new process on the same config: the overrides hold before any request.
    let router = start_router(&cfg).await;
    assert_eq!(node_json(&router, &ia).await["weight_override"], 7);
    assert!(
        ["draining", "drained"].contains(&node_json(&router, &ib).await["state"].as_str().unwrap()),
        "b stays out of rotation"
    );
    let ejected = node_json(&router, &ic).await["ejected_for_ms"]
        .as_u64()
        .unwrap();
    assert!(
        ejected > Duration::from_secs(500).as_millis() as u64,
        "c's ejection runs on, not restarted from zero nor lost: {ejected} ms left"
    );
    let addr = router.local_addrs()[0].clone();
    for _ in 0..10 {
        assert_eq!(node_of(&send(&addr, &get("h", "/"), b"").await), "a");
    }
    assert_eq!(
        (b.served(), c.served()),
        (0, 0),
        "no request to the drained or ejected node"
    );

    // Resumed, they are back, and stay back after the next restart.
    let url = [control_url(&router)];
    for id in [&ia, &ib, &ic] {
        routerctl(&url, &["resume", id]).await.ok();
    }
    routerctl(&url, &["weight", &ia, "--clear"]).await.ok();
    router.shutdown().await;
    let router = start_router(&cfg).await;
    for id in [&ia, &ib, &ic] {
        let n = node_json(&router, id).await;
        let state = n["state"].as_str().unwrap();
        assert!(
            ["active", "joining"].contains(&state),
            "{id} is in rotation: {n}"
        );
        assert_eq!(n["weight_override"], 0, "{id}: {n}");
    }
}

#[tokio::test]
async fn a_registered_node_drained_before_a_restart_comes_back_drained() {
    let dir = TempDir::new().unwrap();
    let state = dir.path().join("state.json");
    let cfg = format!("state_file = \"{}\"\n[pools.default]\n", state.display());
    let node = FakeNode::start("reg", Behaviour::Echo).await;
    let router = start_router(&cfg).await;
    let reg = register_at(router.control_addr().unwrap(), "reg-1", node.addr).await;
    routerctl(&[control_url(&router)], &["weight", "reg-1", "9"])
        .await
        .ok();
    drop(reg);
    router.shutdown().await;

    let router = start_router(&cfg).await;
    let _reg = register_at(router.control_addr().unwrap(), "reg-1", node.addr).await;
    assert_eq!(
        node_json(&router, "reg-1").await["weight_override"],
        9,
        "the weight set before the restart applies when the node registers again"
    );
}

#[tokio::test]
async fn a_state_file_that_is_not_routerd_s_stops_the_start_with_advice() {
    let dir = TempDir::new().unwrap();
    let state = dir.path().join("state.json");
    std::fs::write(&state, "not json").unwrap();
    let config = uwsgi_router::config::Config::parse(&format!(
        "state_file = \"{}\"\n[listen]\nuwsgi = [\"127.0.0.1:0\"]\n[control]\nlisten = \"\"\n[metrics]\nlisten = \"\"\n",
        state.display()
    ))
    .unwrap();
    let err = uwsgi_router::daemon::Daemon::start(config, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot read the state file") && err.contains("fix or remove it"),
        "{err}"
    );
    let err = uwsgi_router::config::Config::parse("state_file = \"relative.json\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("state_file: use an absolute path"), "{err}");
}

#[tokio::test]
async fn routerctl_writes_are_attributed_to_the_caller_with_their_reason() {
    use tokio::io::AsyncBufReadExt;
    let dir = TempDir::new().unwrap();
    let tokens = dir.path().join("admin.tokens");
    std::fs::write(
        &tokens,
        "first-admin-token-0123456789\nsecond-admin-token-0123456789\n",
    )
    .unwrap();
    let token_file = dir.path().join("mine");
    std::fs::write(&token_file, "second-admin-token-0123456789\n").unwrap();
    let a = FakeNode::start("a", Behaviour::Echo).await;
    let id = a.addr.to_string();
    let router = start_router(&format!(
        "[pools.default]\nnodes = [\"{id}\"]\n[control]\nlisten = \"127.0.0.1:0\"\nadmin_token_files = [\"{}\"]\n",
        tokens.display()
    ))
    .await;
    let url = control_url(&router);
    let tf = token_file.display().to_string();
    let mut watch = tokio::process::Command::new(routerctl_support::ROUTERCTL)
        .args(["--router", &url, "--token-file", &tf, "watch", "--json"])
        .env_remove("ROUTERCTL_ROUTER")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(watch.stdout.take().unwrap()).lines();
    // The watch stream opens asynchronously: act until an attributed event comes through.
    let mut seen = None;
    for _ in 0..50 {
        let run = routerctl(
            std::slice::from_ref(&url),
            &[
                "--token-file",
                &tf,
                "drain",
                &id,
                "--reason",
                "disk swap, ticket 42",
            ],
        )
        .await;
        run.ok();
        while let Ok(Ok(Some(line))) =
            tokio::time::timeout(Duration::from_millis(200), lines.next_line()).await
        {
            let e: serde_json::Value = serde_json::from_str(&line).unwrap();
            if e["kind"] == "operator_action" {
                seen = Some(e);
                break;
            }
        }
        if seen.is_some() {
            break;
        }
    }
    let e = seen.expect("watch shows the operator's action");
    assert_eq!(e["node"], id.as_str());
    assert_eq!(
        e["detail"], "drain by token admin.tokens#2: disk swap, ticket 42",
        "who (the second token of the file) and why"
    );
}
