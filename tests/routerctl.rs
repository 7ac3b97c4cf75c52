//! routerctl against a live router, run as the operator runs it: every read command as a table
//! and as JSON over static and registered nodes, the actions with their per-router report, and
//! `watch` printing each event as one line.

mod routerctl_support;
mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use routerctl_support::*;
use serde_json::Value;
use support::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use uwsgi_router::node::AdminState;

#[tokio::test]
async fn reads_show_every_node_as_a_table_and_as_json() {
    let f = fleet("round-robin").await;
    let routers = [f.url.clone()];
    for _ in 0..6 {
        assert_eq!(
            send(&f.router.local_addrs()[0], &get("h", "/"), b"")
                .await
                .status,
            200
        );
    }

    let pools = routerctl(&routers, &["pools"]).await;
    let table = pools.ok();
    assert!(table.starts_with("POOL "), "{table}");
    let p = row(table, "POOL", "default");
    assert_eq!(
        (p["ALGORITHM"].as_str(), p["NODES"].as_str()),
        ("round-robin", "3")
    );
    assert_eq!(p["REQUESTS"], "6");
    let json = routerctl(&routers, &["pools", "--json"]).await.json();
    let p = &json["pools"][0];
    assert_eq!(
        (p["name"].as_str(), p["nodes"].as_u64()),
        (Some("default"), Some(3))
    );
    assert_eq!(p["requests_total"], 6);
    assert_eq!(p["routers"], serde_json::json!([f.url]));

    let nodes = routerctl(&routers, &["nodes"]).await;
    let table = nodes.ok();
    let ids: BTreeSet<String> = column(table, "NODE").into_iter().collect();
    assert_eq!(
        ids,
        BTreeSet::from([f.static_id.clone(), "web-1".into(), "web-2".into()])
    );
    assert_eq!(row(table, "NODE", &f.static_id)["SOURCE"], "static");
    assert_eq!(row(table, "NODE", "web-1")["SOURCE"], "registered");
    assert!(
        column(table, "STATE").iter().all(|s| s == "active"),
        "{table}"
    );
    assert!(!table.contains("ROUTERS"), "one router: no ROUTERS column");
    let json = routerctl(&routers, &["nodes", "--json"]).await.json();
    let list = json["nodes"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    let total: u64 = list
        .iter()
        .map(|n| n["requests_total"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 6);
    for field in [
        "id",
        "pool",
        "address",
        "state",
        "source",
        "weight",
        "in_flight",
        "latency_ms",
        "report_age_ms",
        "routers",
    ] {
        assert!(list[0].get(field).is_some(), "field {field} in {}", list[0]);
    }
    let one_pool = routerctl(&routers, &["nodes", "--pool", "default"]).await;
    assert_eq!(
        column(one_pool.ok(), "NODE"),
        column(table, "NODE"),
        "one pool: the same nodes"
    );
    let missing = routerctl(&routers, &["nodes", "--pool", "nope"]).await;
    assert!(missing.fails(1).contains("no pool named \"nope\""));

    // One node, by exact id and by unique prefix (the static node is the only "127...").
    let detail = routerctl(&routers, &["node", "web-2"]).await;
    let text = detail.ok();
    assert!(
        text.lines()
            .any(|l| l.starts_with("id:") && l.ends_with(" web-2")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("source:") && l.ends_with(" registered")),
        "{text}"
    );
    let n = routerctl(&routers, &["node", "127", "--json"]).await.json();
    assert_eq!(n["id"].as_str(), Some(f.static_id.as_str()));
    assert_eq!(n["routers"], serde_json::json!([f.url]));

    let status = routerctl(&routers, &["status"]).await;
    let s = row(status.ok(), "ROUTER", &f.url);
    assert_eq!(s["VERSION"], env!("CARGO_PKG_VERSION"));
    let json = routerctl(&routers, &["status", "--json"]).await.json();
    let s = &json["routers"][0];
    assert_eq!(s["router"].as_str(), Some(f.url.as_str()));
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(s["listeners"], serde_json::json!(f.router.local_addrs()));
}

#[tokio::test]
async fn actions_change_nodes_and_report_per_router() {
    let f = fleet("round-robin").await;
    let routers = [f.url.clone()];
    let ok_line = |run: &Run, what: &str| {
        let out = run.ok();
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(out.starts_with(&format!("{}  ok  {what}", f.url)), "{out}");
    };

    let id = f.static_id.as_str();
    let drained = routerctl(&routers, &["drain", id]).await;
    assert!(
        drained.ok().contains(&format!("ok  {id} drain")),
        "{drained:?}"
    );
    assert!(matches!(
        state(&f.router, id),
        Some(AdminState::Draining | AdminState::Drained)
    ));
    ok_line(
        &routerctl(&routers, &["resume", id]).await,
        &format!("{id} active"),
    );
    assert_eq!(state(&f.router, id), Some(AdminState::Active));

    ok_line(
        &routerctl(&routers, &["weight", "web-1", "7"]).await,
        "web-1 weight 7 (override)",
    );
    let n = routerctl(&routers, &["node", "web-1", "--json"])
        .await
        .json();
    assert_eq!(
        (n["weight"].as_u64(), n["weight_override"].as_u64()),
        (Some(7), Some(7))
    );
    let table = routerctl(&routers, &["nodes"]).await;
    assert_eq!(
        row(table.ok(), "NODE", "web-1")["WEIGHT"],
        "7*",
        "overrides are starred"
    );
    ok_line(
        &routerctl(&routers, &["weight", "web-1", "--clear"]).await,
        "web-1 weight 1 (override cleared)",
    );

    ok_line(
        &routerctl(&routers, &["eject", "web-2", "--for", "30s"]).await,
        "web-2 ejected for",
    );
    let n = routerctl(&routers, &["node", "web-2", "--json"])
        .await
        .json();
    assert_eq!(n["state"], "ejected");
    assert!(n["ejected_for_ms"].as_u64().unwrap() > 20_000, "{n}");
    let json = routerctl(&routers, &["resume", "web-2", "--json"])
        .await
        .json();
    let r = &json["results"][0];
    assert_eq!(
        (r["router"].as_str(), r["ok"].as_bool()),
        (Some(f.url.as_str()), Some(true))
    );
    assert_eq!(r["node"]["state"], "active");

    ok_line(
        &routerctl(&routers, &["remove", "web-2"]).await,
        "web-2 removed",
    );
    assert!(f.router.cluster().find("web-2").is_none());

    // A static node drains and stays, drained.
    let run = routerctl(&routers, &["drain", id, "--wait", "--timeout", "10s"]).await;
    assert!(
        run.ok()
            .lines()
            .last()
            .unwrap()
            .ends_with(&format!("ok  {id} drained")),
        "{run:?}"
    );
    assert_eq!(state(&f.router, id), Some(AdminState::Drained));
}

#[tokio::test]
async fn watch_prints_each_event_as_one_line_until_the_router_stops() {
    let f = fleet("round-robin").await;
    let mut watching = Vec::new();
    for json in [false, true] {
        let mut cmd = tokio::process::Command::new(ROUTERCTL);
        cmd.args(["--router", &f.url, "watch"])
            .env_remove("ROUTERCTL_ROUTER")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        if json {
            cmd.arg("--json");
        }
        let mut child = cmd.spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Events before the stream is open are not shown: eject until one comes through.
        let mut first = None;
        for _ in 0..100 {
            f.router
                .cluster()
                .eject("web-1", Some(Duration::from_millis(1)));
            if let Ok(line) =
                tokio::time::timeout(Duration::from_millis(200), lines.next_line()).await
            {
                first = line.unwrap();
                break;
            }
        }
        let line = first.expect("watch printed an event");
        if json {
            let e: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(
                (e["kind"].as_str(), e["node"].as_str()),
                (Some("node_ejected"), Some("web-1"))
            );
            assert_eq!(
                (e["pool"].as_str(), e["router"].as_str()),
                (Some("default"), Some(f.url.as_str()))
            );
            assert!(e["time_unix_ms"].as_u64().unwrap() > 0);
        } else {
            assert!(
                line.contains("  node_ejected     default/web-1  by an operator for 1 ms"),
                "{line}"
            );
        }
        assert!(child.try_wait().unwrap().is_none(), "watch keeps running");
        // Its stdout stays open: a closed pipe would end it quietly, as `| head` does.
        watching.push((child, lines));
    }

    // The router stops: each watch says so and exits 3.
    let Fleet { router, url, .. } = f;
    router.shutdown().await;
    for (child, _stdout) in watching {
        let out = tokio::time::timeout(STEP, child.wait_with_output())
            .await
            .expect("watch exits when the router stops")
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{out:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(
            stderr.contains(&format!(
                "cannot reach router {url}: it closed the event stream"
            )),
            "{stderr}"
        );
    }
}
