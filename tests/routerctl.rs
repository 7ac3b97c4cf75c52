//! routerctl against live routers, run as the operator runs it: every command as a table and as
//! JSON over static and registered nodes; drain --wait under load losing nothing; two routers
//! merged by node with writes applied to both; and the failures an operator meets (wrong token,
//! router down, unknown or ambiguous ids, a broken config on reload) with their exit codes.

mod routerctl_support;
mod support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use routerctl_support::*;
use serde_json::Value;
use support::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use uwsgi_router::cluster::NodeState;
use uwsgi_router::daemon::Daemon;

/// A router with one static node and two registered ones, `web-1` and `web-2`.
struct Fleet {
    router: Daemon,
    url: String,
    static_id: String,
    _nodes: Vec<FakeNode>,
    _registered: Vec<Registered>,
}

async fn fleet(algorithm: &str) -> Fleet {
    let s = FakeNode::start("static", Behaviour::Echo).await;
    let router = start_router(&format!(
        "{}slow_start = \"0s\"\n",
        pool_toml(algorithm, &[&s])
    ))
    .await;
    let (w1, w2) = (
        FakeNode::start("web-1", Behaviour::Echo).await,
        FakeNode::start("web-2", Behaviour::Echo).await,
    );
    let registered = vec![
        register(&router, "web-1", w1.addr).await,
        register(&router, "web-2", w2.addr).await,
    ];
    Fleet {
        url: control_url(&router),
        static_id: s.addr.to_string(),
        router,
        _nodes: vec![s, w1, w2],
        _registered: registered,
    }
}

fn state(router: &Daemon, id: &str) -> Option<NodeState> {
    router.cluster().find(id).map(|(_, n)| n.state())
}

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
        Some(NodeState::Draining | NodeState::Drained)
    ));
    ok_line(
        &routerctl(&routers, &["resume", id]).await,
        &format!("{id} active"),
    );
    assert_eq!(state(&f.router, id), Some(NodeState::Active));

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
    assert_eq!(state(&f.router, id), Some(NodeState::Drained));
}

#[tokio::test]
async fn drain_wait_under_load_loses_no_request() {
    let slow = FakeNode::start("slow", Behaviour::Slow(Duration::from_millis(150))).await;
    let fast = FakeNode::start("fast", Behaviour::Echo).await;
    let router =
        start_router("[pools.default]\nalgorithm = \"round-robin\"\nslow_start = \"0s\"\n").await;
    let _s = register(&router, "slow-1", slow.addr).await;
    let _f = register(&router, "fast-1", fast.addr).await;
    let addr = router.local_addrs()[0].clone();

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (addr, stop, done) = (addr.clone(), stop.clone(), done.clone());
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                while !stop.load(SeqCst) {
                    statuses.push(send(&addr, &get("h", "/"), b"").await.status);
                    done.fetch_add(1, SeqCst);
                }
                statuses
            })
        })
        .collect();
    let (_, slow_node) = router.cluster().find("slow-1").unwrap();
    wait_until("the slow node has requests in flight", || {
        slow_node.in_flight.load(SeqCst) > 0
    })
    .await;

    let run = routerctl(
        &[control_url(&router)],
        &["drain", "slow", "--wait", "--timeout", "15s"],
    )
    .await;
    let out = run.ok();
    assert!(out.contains("ok  slow-1 draining"), "{out}");
    assert!(
        out.lines()
            .last()
            .unwrap()
            .ends_with("ok  slow-1 drained and left"),
        "{out}"
    );
    assert!(
        router.cluster().find("slow-1").is_none(),
        "a drained registered node leaves"
    );
    assert_eq!(
        slow_node.in_flight.load(SeqCst),
        0,
        "returned only once nothing was in flight"
    );

    // Traffic goes on through the other node.
    let after = done.load(SeqCst);
    wait_until("more requests complete after the drain", || {
        done.load(SeqCst) >= after + 20
    })
    .await;
    stop.store(true, SeqCst);
    let mut statuses = Vec::new();
    for c in clients {
        statuses.extend(c.await.unwrap());
    }
    assert!(slow.served() > 0);
    assert!(
        statuses.iter().all(|s| *s == 200),
        "every request succeeded: {statuses:?}"
    );
}

#[tokio::test]
async fn drain_wait_gives_up_at_the_timeout_with_exit_1() {
    let stuck = FakeNode::start("stuck", Behaviour::Hang).await;
    let router = start_router(&format!(
        "{}slow_start = \"0s\"\n",
        pool_toml("round-robin", &[&stuck])
    ))
    .await;
    let id = stuck.addr.to_string();
    let addr = router.local_addrs()[0].clone();
    let hanging = tokio::spawn(async move { send(&addr, &get("h", "/"), b"").await });
    let (_, node) = router.cluster().find(&id).unwrap();
    wait_until("a request is in flight", || node.in_flight.load(SeqCst) > 0).await;

    let run = routerctl(
        &[control_url(&router)],
        &["drain", &id, "--wait", "--timeout", "300ms"],
    )
    .await;
    let msg = run.fails(1);
    assert!(
        msg.contains(&format!(
            "{id} is still draining after 0.3s on {} (1 in flight)",
            control_url(&router)
        )),
        "{msg}"
    );
    assert!(
        run.stdout.contains(&format!("ok  {id} draining")),
        "{run:?}"
    );
    assert_eq!(state(&router, &id), Some(NodeState::Draining));
    hanging.abort();
}

#[tokio::test]
async fn two_routers_merge_by_node_and_writes_apply_to_both() {
    let s = FakeNode::start("static", Behaviour::Echo).await;
    let web = FakeNode::start("web-1", Behaviour::Echo).await;
    let only = FakeNode::start("only-b", Behaviour::Echo).await;
    let config = format!("{}slow_start = \"0s\"\n", pool_toml("round-robin", &[&s]));
    let (a, b) = (start_router(&config).await, start_router(&config).await);
    let _regs = [
        register(&a, "web-1", web.addr).await,
        register(&b, "web-1", web.addr).await,
        register(&b, "only-b", only.addr).await,
    ];
    let (ua, ub) = (control_url(&a), control_url(&b));
    let both = [ua.clone(), ub.clone()];
    for _ in 0..3 {
        assert_eq!(
            send(&a.local_addrs()[0], &get("h", "/"), b"").await.status,
            200
        );
    }
    for _ in 0..2 {
        assert_eq!(
            send(&b.local_addrs()[0], &get("h", "/"), b"").await.status,
            200
        );
    }
    let sid = s.addr.to_string();

    let json = routerctl(&both, &["nodes", "--json"]).await.json();
    let nodes = json["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3, "one row per node id: {json}");
    let by_id = |id: &str| nodes.iter().find(|n| n["id"] == id).unwrap().clone();
    assert_eq!(by_id(&sid)["routers"], serde_json::json!([ua, ub]));
    assert_eq!(by_id("web-1")["routers"], serde_json::json!([ua, ub]));
    assert_eq!(by_id("only-b")["routers"], serde_json::json!([ub]));
    let total: u64 = nodes
        .iter()
        .map(|n| n["requests_total"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 5, "counters summed over routers");
    let pools = routerctl(&both, &["pools", "--json"]).await.json();
    assert_eq!(pools["pools"][0]["requests_total"], 5);
    assert_eq!(pools["pools"].as_array().unwrap().len(), 1);

    // A comma list works as well as a repeated flag.
    let comma = [format!("{ua},{ub}")];
    let table = routerctl(&comma, &["nodes"]).await;
    let hostport = |u: &str| u.trim_start_matches("http://").to_owned();
    assert_eq!(row(table.ok(), "NODE", "only-b")["ROUTERS"], hostport(&ub));
    assert_eq!(
        row(table.ok(), "NODE", "web-1")["ROUTERS"],
        format!("{},{}", hostport(&ua), hostport(&ub))
    );

    // Writes go to both, one line each.
    let run = routerctl(&both, &["drain", &sid]).await;
    let lines: Vec<&str> = run.ok().lines().collect();
    assert_eq!(lines.len(), 2, "{run:?}");
    assert!(
        lines[0].starts_with(&format!("{ua}  ok  {sid} drain")),
        "{run:?}"
    );
    assert!(
        lines[1].starts_with(&format!("{ub}  ok  {sid} drain")),
        "{run:?}"
    );
    for r in [&a, &b] {
        assert!(matches!(
            state(r, &sid),
            Some(NodeState::Draining | NodeState::Drained)
        ));
    }
    // Resumed on one only: states are shown per router.
    routerctl(std::slice::from_ref(&ua), &["resume", &sid])
        .await
        .ok();
    wait_until("b's drain completes", || {
        state(&b, &sid) == Some(NodeState::Drained)
    })
    .await;
    let table = routerctl(&both, &["nodes"]).await;
    assert_eq!(row(table.ok(), "NODE", &sid)["STATE"], "active,drained");
    let json = routerctl(&both, &["node", &sid, "--json"]).await.json();
    assert_eq!(json["state"], "active,drained");

    // One router down: the other is still steered, and the exit code says something failed.
    let down = closed_port().await;
    let run = routerctl(&[ua.clone(), down.clone()], &["resume", "only"]).await;
    assert_eq!(run.code, 1, "only-b is unknown to a: {run:?}");
    let run = routerctl(&[ub.clone(), down.clone()], &["resume", "only"]).await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stdout.starts_with(&format!("{ub}  ok  only-b active")),
        "{run:?}"
    );
    assert!(
        run.stderr.contains(&format!("cannot reach router {down}")),
        "{run:?}"
    );
}

/// A URL on which nothing listens.
async fn closed_port() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}

#[tokio::test]
async fn a_wrong_or_missing_token_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let (good, bad) = (dir.path().join("admin"), dir.path().join("wrong"));
    std::fs::write(&good, "\nadmin-token-admin-token-admin\n").unwrap();
    std::fs::write(&bad, "not-the-admin-token-at-all\n").unwrap();
    let toml = format!(
        "[pools.default]\n[control]\nlisten = \"127.0.0.1:0\"\nadmin_token_files = [\"{}\"]\n",
        good.display()
    );
    let router = start_router(&toml).await;
    let routers = [control_url(&router)];

    let run = routerctl(&routers, &["pools"]).await;
    let msg = run.fails(3);
    assert!(
        msg.contains("refused the credentials") && msg.contains("--token-file"),
        "{msg}"
    );
    let bad = bad.to_str().unwrap();
    let run = routerctl(&routers, &["--token-file", bad, "drain", "x"]).await;
    assert!(run.fails(3).contains("invalid token"), "{run:?}");
    let env = [("ROUTERCTL_TOKEN_FILE", good.to_str().unwrap())];
    let run = routerctl_env(&routers, &["pools", "--json"], &env).await;
    assert_eq!(run.json()["pools"][0]["name"], "default");
}

#[tokio::test]
async fn a_router_that_is_down_exits_3_with_advice() {
    let down = closed_port().await;
    for args in [&["nodes"][..], &["drain", "web-1"], &["reload"]] {
        let run = routerctl(std::slice::from_ref(&down), args).await;
        let msg = run.fails(3);
        assert!(
            msg.contains(&format!("cannot reach router {down}: connection refused")),
            "{msg}"
        );
        assert!(msg.contains("ROUTERCTL_ROUTER"), "{msg}");
    }
    // The default comes from the environment.
    let run = routerctl_env(&[], &["status"], &[("ROUTERCTL_ROUTER", &down)]).await;
    assert!(run.fails(3).contains(&down));
}

#[tokio::test]
async fn unknown_ids_exit_1_and_ambiguous_prefixes_list_the_candidates() {
    let f = fleet("round-robin").await;
    let extra = FakeNode::start("web-10", Behaviour::Echo).await;
    let _r = register(&f.router, "web-10", extra.addr).await;
    let routers = [f.url.clone()];

    for args in [&["node", "nosuch"][..], &["drain", "nosuch"]] {
        let run = routerctl(&routers, args).await;
        assert!(
            run.fails(1).contains("no node matches \"nosuch\""),
            "{run:?}"
        );
    }
    let run = routerctl(&routers, &["drain", "web"]).await;
    let msg = run.fails(1);
    assert!(
        msg.contains("ambiguous") && msg.contains("web-1, web-10, web-2"),
        "{msg}"
    );
    assert_eq!(
        state(&f.router, "web-1"),
        Some(NodeState::Active),
        "nothing drained"
    );
    // An exact id wins over being a prefix of another.
    let n = routerctl(&routers, &["node", "web-1", "--json"])
        .await
        .json();
    assert_eq!(n["id"], "web-1");
}

#[tokio::test]
async fn reload_with_a_broken_config_names_the_key_and_keeps_the_old_one() {
    let a = FakeNode::start("a", Behaviour::Echo).await;
    let good = pool_toml("round-robin", &[&a]);
    let (router, file) = start_router_from_file(&good).await;
    let routers = [control_url(&router)];
    file.write(&format!(
        "{good}[[routes]]\nhost = \"x.test\"\npool = \"missing\"\n"
    ));

    let run = routerctl(&routers, &["reload"]).await;
    let msg = run.fails(1);
    assert!(
        msg.contains("reload failed") && msg.contains("routes[0].pool"),
        "{msg}"
    );
    assert!(msg.contains("old config stays in force"), "{msg}");
    let pools = routerctl(&routers, &["pools"]).await;
    assert_eq!(column(pools.ok(), "POOL"), ["default"]);
    let r = send(&router.local_addrs()[0], &get("h", "/"), b"").await;
    assert_eq!(r.status, 200, "the old config still serves");

    file.write(&good);
    let run = routerctl(&routers, &["reload"]).await;
    assert_eq!(
        run.ok(),
        format!("{}  ok  reloaded: 1 pool(s)\n", routers[0])
    );
    let json = routerctl(&routers, &["reload", "--json"]).await.json();
    assert_eq!(json["results"][0]["pools"], 1);
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
                line.contains("  node_ejected     default/web-1  for 1 ms"),
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

#[tokio::test]
async fn completions_and_usage_errors() {
    for shell in ["bash", "zsh", "fish"] {
        let run = routerctl(&[], &["completions", shell]).await;
        assert!(
            run.ok().contains("routerctl") && run.ok().contains("drain"),
            "{shell}"
        );
    }
    for args in [
        &["weight", "web-1", "0"][..],
        &["weight", "web-1"],
        &["drain", "web-1", "--timeout", "5s"],
        &["eject", "web-1", "--for", "soon"],
        &["frobnicate"],
    ] {
        let run = routerctl(&[], args).await;
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
    }
}
