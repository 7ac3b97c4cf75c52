//! Safe retries and status-based ejection, at the level a client sees them: a request whose node
//! closed before answering is resent elsewhere when that is safe (an idempotent method, a body
//! kept whole) and never otherwise; resends stay within the retry budget; a node that answers
//! only 503 is ejected, one that answers 404 never is.

mod support;

use support::scrape::scrape;
use support::*;

/// `[pools.default]` over `nodes`, round robin without slow start, then `extra` keys.
fn pool(nodes: &[&FakeNode], extra: &str) -> String {
    format!(
        "{}slow_start = \"0s\"\nconnect_attempts = 2\n{extra}",
        pool_toml("round-robin", nodes)
    )
}

#[tokio::test]
async fn a_get_whose_node_closes_unanswered_is_resent_and_a_post_is_not() {
    let closer = FakeNode::start("closer", Behaviour::CloseSilently).await;
    let echo = FakeNode::start("echo", Behaviour::Echo).await;
    // Ejection off the table: every other request meets the closer first.
    let router = start_router(&pool(
        &[&closer, &echo],
        "[pools.default.ejection]\nconsecutive_failures = 1000\n",
    ))
    .await;
    let addr = router.local_addrs()[0].clone();
    for i in 0..10 {
        let r = send(&addr, &get("h", &format!("/{i}")), b"").await;
        assert_eq!(r.status, 200, "GET {i}: {}", r.text());
        assert_eq!(node_of(&r), "echo");
    }
    // A GET with a body is kept whole and resent whole.
    let body = b"0123456789".repeat(100);
    for _ in 0..4 {
        let r = send(&addr, &request("GET", "h", "/", body.len()), &body).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.text().contains("body_length=1000"), "{}", r.text());
    }
    let before = closer.served();
    let mut failed = 0;
    for _ in 0..10 {
        let r = send(&addr, &request("POST", "h", "/", 3), b"abc").await;
        if r.status == 502 {
            failed += 1;
        }
    }
    assert!(closer.served() > before, "the closer got POSTs too");
    assert_eq!(
        failed,
        closer.served() - before,
        "every POST that met the closer failed: a POST is never resent"
    );
    let m = scrape(&router).await;
    let resent = m.get(
        "uwsgi_router_retries_total",
        &[("pool", "default"), ("reason", "reset_before_response")],
    );
    assert!(resent.is_some_and(|n| n >= 5.0), "{resent:?}");
}

#[tokio::test]
async fn resends_stay_within_the_retry_budget() {
    let closer = FakeNode::start("closer", Behaviour::CloseSilently).await;
    let echo = FakeNode::start("echo", Behaviour::Echo).await;
    let router = start_router(&pool(
        &[&closer, &echo],
        "[pools.default.ejection]\nconsecutive_failures = 1000\n\
         [pools.default.retry]\nbudget_percent = 0\nmin_concurrency = 0\n",
    ))
    .await;
    let addr = router.local_addrs()[0].clone();
    let mut failed = 0;
    for i in 0..10 {
        let r = send(&addr, &get("h", &format!("/{i}")), b"").await;
        if r.status == 502 {
            failed += 1;
        }
    }
    assert_eq!(
        failed, 5,
        "no budget: the closer's half of the requests fail"
    );
    let m = scrape(&router).await;
    assert_eq!(
        m.get(
            "uwsgi_router_retry_budget_exhausted_total",
            &[("pool", "default")]
        ),
        Some(5.0)
    );
}

#[tokio::test]
async fn a_node_answering_only_503_is_ejected_and_one_answering_404_never_is() {
    let unavailable = FakeNode::start("unavailable", Behaviour::Status(503)).await;
    let missing = FakeNode::start("missing", Behaviour::Status(404)).await;
    let echo = FakeNode::start("echo", Behaviour::Echo).await;
    let router = start_router(&pool(
        &[&unavailable, &missing, &echo],
        "[pools.default.ejection]\nconsecutive_gateway_errors = 3\nbase_time = \"1m\"\nmax_time = \"1m\"\nmax_percent = 100\n",
    ))
    .await;
    let addr = router.local_addrs()[0].clone();
    for i in 0..60 {
        send(&addr, &get("h", &format!("/{i}")), b"").await;
    }
    assert_eq!(unavailable.served(), 3, "ejected after its third 503");
    assert!(
        missing.served() >= 20,
        "404s are the request's: the node keeps its share ({})",
        missing.served()
    );
    let pool = router.cluster().pool("default").unwrap();
    let ejected = |n: &FakeNode| {
        pool.node(&n.addr.to_string())
            .unwrap()
            .health()
            .ejected_until()
            .is_some()
    };
    assert!(ejected(&unavailable) && !ejected(&missing));
    let m = scrape(&router).await;
    let ejections = |reason: &str| {
        m.get(
            "uwsgi_router_ejections_total",
            &[("pool", "default"), ("reason", reason)],
        )
    };
    assert_eq!(ejections("consecutive_gateway_errors"), Some(1.0));
    let outcome = |n: &FakeNode, class: &str| {
        m.get(
            "uwsgi_router_requests_total",
            &[
                ("pool", "default"),
                ("node", &n.addr.to_string()),
                ("outcome", class),
            ],
        )
    };
    assert_eq!(outcome(&unavailable, "5xx"), Some(3.0));
    assert_eq!(outcome(&missing, "4xx"), Some(missing.served() as f64));
}

#[tokio::test]
async fn with_gateway_error_on_a_503_answer_is_resent_not_relayed() {
    let unavailable = FakeNode::start("unavailable", Behaviour::Status(503)).await;
    let echo = FakeNode::start("echo", Behaviour::Echo).await;
    let router = start_router(&pool(
        &[&unavailable, &echo],
        "[pools.default.ejection]\nconsecutive_gateway_errors = 0\n\
         [pools.default.retry]\non = [\"connect-failure\", \"reset-before-response\", \"gateway-error\"]\n",
    ))
    .await;
    let addr = router.local_addrs()[0].clone();
    for i in 0..10 {
        let r = send(&addr, &get("h", &format!("/{i}")), b"").await;
        assert_eq!(r.status, 200, "GET {i}: {}", r.text());
    }
    assert!(
        unavailable.served() >= 5,
        "it got its share, and each was resent: {}",
        unavailable.served()
    );
    // With no other node to take it, the node's own 503 is relayed as it is.
    echo.set_behaviour(Behaviour::Status(503));
    let r = send(&addr, &get("h", "/last"), b"").await;
    assert_eq!(r.status, 503);
    assert!(
        r.text().contains("node="),
        "the node's answer: {}",
        r.text()
    );
}
