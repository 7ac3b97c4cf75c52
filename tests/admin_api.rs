//! The Admin API against a live router: reads reflect the cluster, actions take effect at once,
//! its credentials are separate from the registry's, and Watch streams what happens.

mod support;

use std::time::Duration;

use support::*;
use tonic::Request;
use uwsgi_router::api::admin_client::AdminClient;
use uwsgi_router::api::*;

async fn admin(router: &uwsgi_router::daemon::Daemon) -> AdminClient<tonic::transport::Channel> {
    AdminClient::connect(control_url(router)).await.unwrap()
}

fn req<T>(t: T) -> Request<T> {
    Request::new(t)
}

#[tokio::test]
async fn reads_and_actions() {
    let a = FakeNode::start("a", Behaviour::Echo).await;
    let b = FakeNode::start("b", Behaviour::Echo).await;
    let router = start_router(&pool_toml("round-robin", &[&a, &b])).await;
    let mut c = admin(&router).await;
    let (ida, idb) = (a.addr.to_string(), b.addr.to_string());

    let status = c.status(req(StatusRequest {})).await.unwrap().into_inner();
    assert_eq!(status.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(status.listeners, router.local_addrs());

    for _ in 0..10 {
        send(&router.local_addrs()[0], &get("h", "/"), b"").await;
    }
    let pools = c
        .list_pools(req(ListPoolsRequest {}))
        .await
        .unwrap()
        .into_inner()
        .pools;
    assert_eq!(pools.len(), 1);
    assert_eq!(
        (
            pools[0].name.as_str(),
            pools[0].algorithm.as_str(),
            pools[0].nodes,
            pools[0].requests_total
        ),
        ("default", "round-robin", 2, 10)
    );

    let nodes = c
        .list_nodes(req(ListNodesRequest {
            pool: String::new(),
        }))
        .await
        .unwrap()
        .into_inner()
        .nodes;
    assert_eq!(nodes.iter().map(|n| n.requests_total).sum::<u64>(), 10);
    assert!(nodes.iter().all(|n| n.source == "static"));

    // Drain a: b takes everything; a static node stays, drained.
    let n = c
        .drain_node(req(NodeRequest {
            id: ida.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(n.address, ida);
    for _ in 0..6 {
        assert_eq!(
            node_of(&send(&router.local_addrs()[0], &get("h", "/"), b"").await),
            "b"
        );
    }
    let n = c
        .get_node(req(NodeRequest {
            id: ida.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(n.state == "drained" || n.state == "draining", "{}", n.state);
    c.resume_node(req(NodeRequest {
        id: ida.clone(),
        ..Default::default()
    }))
    .await
    .unwrap();
    let served = a.served();
    for _ in 0..6 {
        send(&router.local_addrs()[0], &get("h", "/"), b"").await;
    }
    assert!(a.served() > served, "resumed node takes traffic again");

    // Eject b for a while.
    let n = c
        .eject_node(req(EjectRequest {
            id: idb.clone(),
            duration_ms: 60_000,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(n.state, "ejected");
    assert!(n.ejected_for_ms > 50_000);
    c.resume_node(req(NodeRequest {
        id: idb.clone(),
        ..Default::default()
    }))
    .await
    .unwrap();

    // Weight override.
    let n = c
        .set_weight(req(SetWeightRequest {
            id: idb.clone(),
            weight: 7,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((n.weight, n.weight_override, n.weight_reported), (7, 7, 1));
    let n = c
        .set_weight(req(SetWeightRequest {
            id: idb.clone(),
            weight: 0,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((n.weight, n.weight_override), (1, 0));
    assert_eq!(
        c.set_weight(req(SetWeightRequest {
            id: idb.clone(),
            weight: 5000,
            ..Default::default()
        }))
        .await
        .unwrap_err()
        .code(),
        tonic::Code::InvalidArgument
    );

    // Remove, and unknown ids.
    c.remove_node(req(NodeRequest {
        id: idb.clone(),
        ..Default::default()
    }))
    .await
    .unwrap();
    let err = c
        .get_node(req(NodeRequest {
            id: idb.clone(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    assert!(err.message().contains("no node with id"));
}

#[tokio::test]
async fn watch_streams_events() {
    let a = FakeNode::start("a", Behaviour::Echo).await;
    let router = start_router(&pool_toml("round-robin", &[&a])).await;
    let mut c = admin(&router).await;
    let mut events = c.watch(req(WatchRequest {})).await.unwrap().into_inner();
    let id = a.addr.to_string();
    c.drain_node(req(NodeRequest {
        id: id.clone(),
        ..Default::default()
    }))
    .await
    .unwrap();
    let mut kinds = Vec::new();
    while kinds.len() < 3 {
        let e = tokio::time::timeout(Duration::from_secs(5), events.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(e.node, id);
        kinds.push(e.kind);
    }
    // The drain, who asked for it (the maintenance tick may announce drained in between).
    assert_eq!(kinds[0], "node_draining");
    kinds.sort();
    assert_eq!(kinds, ["node_drained", "node_draining", "operator_action"]);
}

#[tokio::test]
async fn a_watcher_that_falls_behind_is_sent_the_current_state() {
    let a = FakeNode::start("a", Behaviour::Echo).await;
    let b = FakeNode::start("b", Behaviour::Echo).await;
    let router = start_router(&pool_toml("round-robin", &[&a, &b])).await;
    let mut c = admin(&router).await;
    // A watcher with a small receive window, so that the transport holds few events for it.
    let small = tonic::transport::Endpoint::from_shared(control_url(&router))
        .unwrap()
        .initial_stream_window_size(16 * 1024)
        .initial_connection_window_size(16 * 1024)
        .connect()
        .await
        .unwrap();
    let mut events = AdminClient::new(small)
        .watch(req(WatchRequest {}))
        .await
        .unwrap()
        .into_inner();
    let (ida, idb) = (a.addr.to_string(), b.addr.to_string());
    let node = |id: &str| {
        req(NodeRequest {
            id: id.to_owned(),
            ..Default::default()
        })
    };
    // Thousands of events while the watcher reads none: more than the router keeps for it.
    for _ in 0..1_000 {
        c.drain_node(node(&ida)).await.unwrap();
        c.resume_node(node(&ida)).await.unwrap();
    }
    c.drain_node(node(&idb)).await.unwrap();

    // Read until the stream is quiet; keep what the last resync said.
    let (mut lagged, mut seen) = (0, 0);
    let mut state = Vec::new();
    let mut resynced = None;
    for _ in 0..50_000 {
        let Ok(e) = tokio::time::timeout(Duration::from_secs(2), events.message()).await else {
            break;
        };
        let e = e.unwrap().unwrap();
        seen += 1;
        match e.kind.as_str() {
            "lagged" => {
                lagged += 1;
                state.clear();
            }
            "node_state" => state.push((e.node, e.detail)),
            "resynced" => resynced = Some(e.detail),
            _ => {}
        }
    }
    assert!(
        lagged > 0,
        "the watcher was told it missed events ({seen} read)"
    );
    assert_eq!(resynced.as_deref(), Some("2 nodes in 1 pools"));
    assert_eq!(state.len(), 2, "{state:?}");
    let of = |id: &str| {
        let found = state.iter().find(|(n, _)| n == id);
        found.map(|(_, d)| d.as_str()).unwrap_or_default()
    };
    // The resync came once the watcher read again, after every action: a resumed, b drained.
    // (A resumed node ramps up through slow start: joining.)
    assert!(
        [format!("active {ida}"), format!("joining {ida}")].contains(&of(&ida).to_owned()),
        "{state:?} ({lagged} lags, {seen} read)"
    );
    assert!(
        [format!("draining {idb}"), format!("maintenance {idb}")].contains(&of(&idb).to_owned()),
        "{state:?}"
    );
}

#[tokio::test]
async fn admin_and_registry_credentials_are_separate() {
    let dir = tempfile::tempdir().unwrap();
    let (reg, adm) = (dir.path().join("reg"), dir.path().join("adm"));
    std::fs::write(&reg, "registry-token-registry-token\n").unwrap();
    std::fs::write(&adm, "admin-token-admin-token-admin\n").unwrap();
    let toml = format!(
        "[pools.default]\n[control]\nlisten = \"127.0.0.1:0\"\nregistry_token_files = [\"{}\"]\nadmin_token_files = [\"{}\"]\n",
        reg.display(),
        adm.display()
    );
    let router = start_router(&toml).await;
    let mut c = admin(&router).await;
    let with = |token: &str| {
        let mut r = req(ListPoolsRequest {});
        r.metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        r
    };
    assert_eq!(
        c.list_pools(req(ListPoolsRequest {}))
            .await
            .unwrap_err()
            .code(),
        tonic::Code::Unauthenticated
    );
    assert_eq!(
        c.list_pools(with("registry-token-registry-token"))
            .await
            .unwrap_err()
            .code(),
        tonic::Code::Unauthenticated,
        "a node's token cannot steer the fleet"
    );
    assert!(c
        .list_pools(with("admin-token-admin-token-admin"))
        .await
        .is_ok());
}

#[tokio::test]
async fn reload_reports_config_errors_and_keeps_the_old_config() {
    let a = FakeNode::start("a", Behaviour::Echo).await;
    let good = pool_toml("round-robin", &[&a]);
    let (router, file) = start_router_from_file(&good).await;
    let mut c = admin(&router).await;
    file.write(&format!(
        "{good}[[routes]]\nhost = \"x.test\"\npool = \"missing\"\n"
    ));
    let err = c.reload(req(ReloadRequest {})).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    assert!(
        err.message().contains("routes[0].pool"),
        "{}",
        err.message()
    );
    assert_eq!(
        send(&router.local_addrs()[0], &get("h", "/"), b"")
            .await
            .status,
        200,
        "old config still serves"
    );
    file.write(&good);
    assert_eq!(
        c.reload(req(ReloadRequest {}))
            .await
            .unwrap()
            .into_inner()
            .pools,
        1
    );
}
