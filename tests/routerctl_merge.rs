//! routerctl over two routers: their nodes merged by id, and writes applied to both.

mod routerctl_support;
mod support;

use routerctl_support::*;
use support::*;
use uwsgi_router::node::AdminState;

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
            Some(AdminState::Draining | AdminState::Drained)
        ));
    }
    // Resumed on one only: states are shown per router.
    routerctl(std::slice::from_ref(&ua), &["resume", &sid])
        .await
        .ok();
    wait_until("b's drain completes", || {
        state(&b, &sid) == Some(AdminState::Drained)
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
    assert_eq!(
        run.code, 4,
        "applied where reachable, the rest unreachable: {run:?}"
    );
    assert!(
        run.stdout.starts_with(&format!("{ub}  ok  only-b active")),
        "{run:?}"
    );
    assert!(
        run.stderr.contains(&format!("cannot reach router {down}")),
        "{run:?}"
    );

    // Reads with one router down show what the other says, name the missing one, exit 4.
    let run = routerctl(&[ua.clone(), down.clone()], &["nodes"]).await;
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stdout.contains(&sid), "a's nodes are shown: {run:?}");
    assert!(
        run.stderr.contains(&format!("cannot reach router {down}"))
            && run.stderr.contains("1 of 2 routers could not be reached"),
        "{run:?}"
    );
    let run = routerctl(&[ua.clone(), down.clone()], &["pools", "--json"]).await;
    assert_eq!(run.code, 4, "{run:?}");
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["routers_unreachable"][0], down.as_str(), "{json}");
    assert!(
        json["pools"].as_array().is_some_and(|p| !p.is_empty()),
        "{json}"
    );
    // With every router down it is unreachable, as before.
    let run = routerctl(std::slice::from_ref(&down), &["nodes"]).await;
    assert_eq!(run.code, 3, "{run:?}");
}
