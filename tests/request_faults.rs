//! Failures caused by one request are not evidence against the node. A healthy uWSGI drops a
//! request it refuses (a vars block over its `buffer-size`) by closing the connection; a stream
//! of such requests must not eject it. A node that is really gone (its connections refused) is
//! still ejected as before.

mod support;

use support::scrape::scrape;
use support::*;

/// A GET whose vars block is `size` bytes or more: one big header, as a browser with a large
/// cookie sends.
fn big_get(host: &str, size: usize) -> Vec<u8> {
    let cookie = "c".repeat(size);
    support::packet::packet(&[
        ("REQUEST_METHOD", "GET"),
        ("REQUEST_URI", "/"),
        ("PATH_INFO", "/"),
        ("HTTP_HOST", host),
        ("HTTP_COOKIE", &cookie),
    ])
}

/// Pool `name` over `nodes`, the default pool, ejecting after 3 failures for 30 s. Each test
/// names its own pool: the per-pool series of the process's recorder are shared by the tests.
fn pool(name: &str, attempts: u32, nodes: &[&FakeNode]) -> String {
    let list: Vec<String> = nodes.iter().map(|n| format!("\"{}\"", n.addr)).collect();
    format!(
        "default_pool = \"{name}\"\n[pools.{name}]\nalgorithm = \"round-robin\"\n\
         connect_attempts = {attempts}\nnodes = [{}]\n[pools.{name}.ejection]\n\
         consecutive_failures = 3\nbase_time = \"30s\"\nmax_time = \"60s\"\nmax_percent = 100\n",
        list.join(", ")
    )
}

#[tokio::test]
async fn requests_a_node_refuses_do_not_eject_it() {
    let node = FakeNode::start("a", Behaviour::DropVarsOver(4096)).await;
    let router = start_router(&pool("refuses", 1, &[&node])).await;
    let addr = router.local_addrs()[0].clone();
    for i in 0..20 {
        let r = send(&addr, &big_get("h", 8192), b"").await;
        assert_eq!(
            r.status, 502,
            "request {i}: the node closed without answering"
        );
    }
    // Still in: a normal request is served (an ejected single node would give a 503).
    let r = send(&addr, &get("h", "/"), b"").await;
    assert_eq!(r.status, 200, "{}", r.text());

    let m = scrape(&router).await;
    let id = node.addr.to_string();
    let refuses = [("pool", "refuses")];
    assert_eq!(
        m.sum("uwsgi_router_ejections_total", &refuses),
        0.0,
        "{}",
        m.text
    );
    assert_eq!(
        m.get("uwsgi_router_request_drops_total", &refuses),
        Some(20.0)
    );
    assert_eq!(
        m.get(
            "uwsgi_router_node_failures_total",
            &[("pool", "refuses"), ("node", &id)]
        ),
        Some(0.0)
    );
}

#[tokio::test]
async fn a_node_that_is_gone_is_still_ejected() {
    let gone = FakeNode::start("gone", Behaviour::CloseSilently).await;
    let ok = FakeNode::start("ok", Behaviour::Echo).await;
    let router = start_router(&pool("dies", 2, &[&gone, &ok])).await;
    let addr = router.local_addrs()[0].clone();
    // It dies: requests it had taken are dropped and it refuses every new connection, as a
    // SIGKILLed uWSGI does.
    gone.stop();
    for i in 0..6 {
        let r = send(&addr, &get("h", &format!("/{i}")), b"").await;
        assert_eq!(r.status, 200, "request {i} fails over: {}", r.text());
        assert_eq!(node_of(&r), "ok");
    }
    let m = scrape(&router).await;
    assert_eq!(
        m.get(
            "uwsgi_router_ejections_total",
            &[("pool", "dies"), ("reason", "consecutive_failures")]
        ),
        Some(1.0),
        "{}",
        m.text
    );
}
