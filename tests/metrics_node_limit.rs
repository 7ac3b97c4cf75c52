//! `metrics.node_series_limit` as Prometheus sees it: a pool with more nodes than the limit shows
//! its nodes' requests, in-flight requests and failures summed under `node="*"` and no series of
//! its own per node, while a pool within the limit keeps one series per node.

mod support;

use support::scrape::*;
use support::*;

#[tokio::test]
async fn a_pool_over_the_limit_is_summed_under_a_star_and_a_small_one_keeps_its_nodes() {
    let big = [
        FakeNode::start("a", Behaviour::Echo).await,
        FakeNode::start("b", Behaviour::Echo).await,
        FakeNode::start("c", Behaviour::Echo).await,
    ];
    let lone = FakeNode::start("lone", Behaviour::Echo).await;
    let router = start_router(&format!(
        "[metrics]\nlisten = \"127.0.0.1:0\"\nnode_series_limit = 2\n\n{}\
         [pools.small]\nnodes = [\"{}\"]\n[[routes]]\nhost = \"small.test\"\npool = \"small\"\n",
        pool_toml("round-robin", &[&big[0], &big[1], &big[2]]),
        lone.addr
    ))
    .await;
    let uwsgi = router.local_addrs()[0].clone();
    for _ in 0..6 {
        assert_eq!(send(&uwsgi, &get("h", "/"), b"").await.status, 200);
    }
    assert_eq!(send(&uwsgi, &get("small.test", "/"), b"").await.status, 200);

    let m = scrape(&router).await;
    let all = [("pool", "default"), ("node", "*")];
    let requests = |labels: &[(&str, &str)], outcome| {
        let mut l = labels.to_vec();
        l.push(("outcome", outcome));
        m.get("uwsgi_router_requests_total", &l)
    };
    assert_eq!(
        requests(&all, "2xx"),
        Some(6.0),
        "the 3 nodes' requests, summed"
    );
    assert_eq!(
        requests(&all, "502"),
        Some(0.0),
        "error ratios keep their 0"
    );
    assert_eq!(
        m.get("uwsgi_router_node_in_flight_requests", &all),
        Some(0.0)
    );
    assert_eq!(m.get("uwsgi_router_node_failures_total", &all), Some(0.0));
    let per_node: Vec<_> = m
        .samples
        .iter()
        .filter(|s| s.labels.get("pool").is_some_and(|p| p == "default"))
        .filter(|s| s.labels.get("node").is_some_and(|n| n != "*"))
        .collect();
    assert!(per_node.is_empty(), "no per-node series: {per_node:?}");
    let states: f64 = m
        .samples
        .iter()
        .filter(|s| s.name == "uwsgi_router_nodes")
        .filter(|s| s.labels.get("pool").is_some_and(|p| p == "default"))
        .map(|s| s.value)
        .sum();
    assert_eq!(states, 3.0, "the pool still counts its nodes by state");

    let node = lone.addr.to_string();
    let lone_labels = [("pool", "small"), ("node", node.as_str())];
    assert_eq!(requests(&lone_labels, "2xx"), Some(1.0));
    assert_eq!(m.get("uwsgi_router_node_weight", &lone_labels), Some(1.0));
    assert!(
        m.get(
            "uwsgi_router_node_in_flight_requests",
            &[("pool", "small"), ("node", "*")]
        )
        .is_none(),
        "a pool within the limit has no summed series"
    );
}
