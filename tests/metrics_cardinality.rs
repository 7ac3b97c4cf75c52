//! Nodes that come and go leave no series behind: after 1,000 nodes join a pool and leave again,
//! `/metrics` has exactly the series it had before.

mod support;

use std::time::Duration;

use support::scrape::*;
use support::*;
use uwsgi_router::clock::now_ms;
use uwsgi_router::cluster::LeaveReason;
use uwsgi_router::node::{LoadReport, Node, Source};

const NODES: usize = 1000;

fn id(i: usize) -> String {
    format!("churn-{i}")
}

#[tokio::test]
async fn a_thousand_nodes_joining_and_leaving_leave_no_series() {
    let web = FakeNode::start("web", Behaviour::Echo).await;
    let router = start_router(&format!(
        "{}[pools.churn]\nmax_nodes = {NODES}\n",
        pool_toml("round-robin", &[&web])
    ))
    .await;
    // Some traffic first, so that the baseline has request series too.
    let r = send(&router.local_addrs()[0], &get("h", "/"), b"").await;
    assert_eq!(r.status, 200);
    let baseline = scrape(&router).await;
    let cluster = router.cluster();

    for i in 0..NODES {
        let addr = format!("10.1.{}.{}:3031", i / 250, i % 250 + 1);
        let node = Node::new(id(i), addr.parse().unwrap(), Source::Registered, 1);
        let node = cluster
            .join("churn", node, Duration::from_secs(600))
            .expect("the pool takes 1,000 nodes");
        if i % 2 == 0 {
            // Half of them report their load, as agents do.
            let report = LoadReport {
                capacity: 4,
                ..LoadReport::default()
            };
            node.record_report(&report, now_ms(), Duration::from_secs(600));
        }
    }
    // Joins in a burst reach the pool's snapshot, and the scrape, within one membership window.
    let pool = cluster.pool("churn").expect("the pool exists");
    pool.published().await;
    let full = scrape(&router).await;
    let per_node = |m: &Scrape| {
        m.samples
            .iter()
            .filter(|s| {
                s.labels
                    .get("node")
                    .is_some_and(|n| n.starts_with("churn-"))
            })
            .count()
    };
    let last = id(NODES - 1);
    assert!(
        full.get(
            "uwsgi_router_node_in_flight_requests",
            &[("pool", "churn"), ("node", &last)]
        ) == Some(0.0),
        "joined nodes are exported"
    );
    assert!(
        per_node(&full) >= NODES * 10,
        "{} series for {NODES} nodes",
        per_node(&full)
    );
    // Just joined, in their slow start.
    assert_eq!(
        full.get(
            "uwsgi_router_nodes",
            &[("pool", "churn"), ("state", "joining")]
        ),
        Some(NODES as f64)
    );

    for i in 0..NODES {
        assert!(cluster
            .leave(&id(i), LeaveReason::RemovedByOperator)
            .is_some());
    }
    pool.published().await;
    let after = scrape(&router).await;
    assert_eq!(per_node(&after), 0, "no series of a removed node is left");
    // Only per-pool series may have been added: the pool's registrations counter, once.
    let pool_level = |m: &support::scrape::Scrape| {
        m.samples
            .iter()
            .filter(|s| s.name != "uwsgi_router_registrations_total")
            .count()
    };
    assert_eq!(
        pool_level(&after),
        pool_level(&baseline),
        "the series count returns to its baseline"
    );
    assert_eq!(
        after.get(
            "uwsgi_router_registrations_total",
            &[("pool", "churn"), ("source", "registered")]
        ),
        Some(NODES as f64),
        "every join is counted once, on the pool"
    );
    assert_eq!(
        after.get(
            "uwsgi_router_nodes",
            &[("pool", "churn"), ("state", "active")]
        ),
        Some(0.0)
    );
}
