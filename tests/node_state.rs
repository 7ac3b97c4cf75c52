//! One node, one state: what routerctl (the Admin API) shows and what `uwsgi_router_node_state`
//! says agree for every mix of drain and ejection; an operator's ejection is logged and counted as
//! an operator's, not as passive health checks'.

mod support;

use std::time::Duration;

use support::binary::Routerd;
use support::scrape::{http_get, Scrape};
use support::*;
use tonic::Request;
use uwsgi_router::api::admin_client::AdminClient;
use uwsgi_router::api::{EjectRequest, NodeRequest};

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn routerctl_and_metrics_show_the_same_state_and_operator_ejections_say_so() {
    let nodes = [
        FakeNode::start("a", Behaviour::Echo).await,
        FakeNode::start("b", Behaviour::Echo).await,
        FakeNode::start("c", Behaviour::Echo).await,
    ];
    let (metrics, control) = (free_port(), free_port());
    let list: Vec<String> = nodes.iter().map(|n| format!("\"{}\"", n.addr)).collect();
    let mut router = Routerd::start(&format!(
        "[metrics]\nlisten = \"127.0.0.1:{metrics}\"\n[control]\nlisten = \"127.0.0.1:{control}\"\n\
         [pools.default]\nslow_start = \"0s\"\nnodes = [{}]\n",
        list.join(", ")
    ))
    .await;
    let mut admin = AdminClient::connect(format!("http://127.0.0.1:{control}"))
        .await
        .unwrap();
    let [a, b, _c] = nodes.each_ref().map(|n| n.addr.to_string());
    let eject = |id: &str| {
        Request::new(EjectRequest {
            id: id.to_owned(),
            duration_ms: 600_000,
            ..Default::default()
        })
    };
    let node = |id: &str| {
        Request::new(NodeRequest {
            id: id.to_owned(),
            ..Default::default()
        })
    };
    // a: drained by an operator, then ejected by one. b: ejected only. c: untouched.
    admin.drain_node(node(&a)).await.unwrap();
    admin.eject_node(eject(&a)).await.unwrap();
    admin.eject_node(eject(&b)).await.unwrap();

    let m = Scrape::parse(
        &http_get(format!("127.0.0.1:{metrics}").parse().unwrap(), "/metrics")
            .await
            .body,
    );
    for n in &nodes {
        let id = n.addr.to_string();
        let shown = admin.get_node(node(&id)).await.unwrap().into_inner().state;
        let metric = |state: &str| {
            m.get(
                "uwsgi_router_node_state",
                &[("pool", "default"), ("node", &id), ("state", state)],
            )
        };
        assert_eq!(metric(&shown), Some(1.0), "{id}: routerctl says {shown}");
        let ones: f64 = ["active", "joining", "ejected", "draining", "drained"]
            .iter()
            .filter_map(|s| metric(s))
            .sum();
        assert_eq!(ones, 1.0, "{id} is in exactly one state");
    }
    let shown = |id: &str| {
        m.matching("uwsgi_router_node_state", &[("node", id)])
            .find(|s| s.value == 1.0)
            .and_then(|s| s.labels.get("state").cloned())
    };
    assert!(
        matches!(shown(&a).as_deref(), Some("draining" | "drained")),
        "a drain wins over an ejection: {:?}",
        shown(&a)
    );
    assert_eq!(shown(&b).as_deref(), Some("ejected"));

    let ejections = |reason: &str| {
        m.get(
            "uwsgi_router_ejections_total",
            &[("pool", "default"), ("reason", reason)],
        )
    };
    assert_eq!(ejections("operator"), Some(2.0));
    assert_eq!(ejections("consecutive_failures"), Some(0.0));
    router
        .wait_log("node ejected by an operator", 2, Duration::from_secs(5))
        .await;
    assert!(
        !router.stderr().contains("after consecutive failures"),
        "{}",
        router.stderr()
    );
    router.signal("TERM");
    router.wait_exit(Duration::from_secs(10)).await;
}
