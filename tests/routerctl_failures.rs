//! The failures an operator meets with routerctl, with their exit codes: a wrong or missing
//! token, a router that is down, unknown or ambiguous ids, a broken config on reload, and usage
//! errors.

mod routerctl_support;
mod support;

use routerctl_support::*;
use support::*;
use uwsgi_router::node::AdminState;

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
        Some(AdminState::Active),
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
