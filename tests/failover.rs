//! Dead nodes: connect failures are retried elsewhere, failing nodes are ejected (within the cap)
//! and come back, and when nothing works the router answers 502, 503 or 504 itself.

mod support;

use std::time::Duration;

use support::ports::free_addr;
use support::*;
use tokio::time::Instant;

fn fast_ejection() -> &'static str {
    "[pools.default.ejection]\nconsecutive_failures = 3\nbase_time = \"300ms\"\nmax_time = \"1s\"\n"
}

#[tokio::test]
async fn connect_failures_are_retried_on_another_node() {
    let a = FakeNode::start("a", Behaviour::Echo).await;
    let b = FakeNode::start("b", Behaviour::Echo).await;
    let dead = free_addr();
    let toml = format!(
        "[pools.default]\nalgorithm = \"round-robin\"\nnodes = [\"{dead}\", \"{}\", \"{}\"]\n",
        a.addr, b.addr
    );
    let router = start_router(&toml).await;
    for _ in 0..30 {
        let r = send(&router.local_addrs()[0], &get("h", "/"), b"").await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(
        a.served() + b.served(),
        30,
        "each request reached exactly one node once"
    );
}

#[tokio::test]
async fn a_failing_node_is_ejected_then_returns() {
    let a = FakeNode::start("a", Behaviour::Echo).await;
    let b = FakeNode::start("b", Behaviour::Echo).await;
    let b_addr = b.addr;
    let toml = format!("{}{}", pool_toml("round-robin", &[&a, &b]), fast_ejection());
    let router = start_router(&toml).await;
    let addr = router.local_addrs()[0].clone();
    b.stop();
    drop(b);
    for _ in 0..10 {
        assert_eq!(send(&addr, &get("h", "/"), b"").await.status, 200);
    }
    let pool = router.cluster().pool("default").unwrap();
    let b_node = pool
        .snapshot()
        .nodes
        .iter()
        .find(|n| n.addr().to_string() == b_addr.to_string())
        .unwrap()
        .clone();
    assert!(
        b_node.health().ejected_until().is_some(),
        "b must be ejected after failing"
    );
    let failures_when_ejected = b_node.failures_total();
    for _ in 0..10 {
        assert_eq!(send(&addr, &get("h", "/"), b"").await.status, 200);
    }
    assert!(
        b_node.failures_total() <= failures_when_ejected + 1,
        "an ejected node is not tried again before its backoff ends"
    );

    // b comes back on its old port: after the backoff a probe finds it and it takes traffic again.
    let b = FakeNode::start_at("b", b_addr, Behaviour::Echo).await;
    wait_for(
        "b to get traffic back",
        Duration::from_secs(10),
        async || {
            assert_eq!(send(&addr, &get("h", "/"), b"").await.status, 200);
            (b.served() > 0).then_some(())
        },
    )
    .await;
    assert!(
        b_node.health().ejected_until().is_none(),
        "a successful probe ends the ejection"
    );
}

#[tokio::test]
async fn ejections_never_exceed_the_cap() {
    let dead: Vec<String> = futures_dead(4).await;
    let toml = format!(
        "[pools.default]\nconnect_attempts = 1\nnodes = [{}]\n[pools.default.ejection]\nconsecutive_failures = 1\nbase_time = \"30s\"\nmax_time = \"30s\"\nmax_percent = 50\n",
        dead.iter().map(|a| format!("\"{a}\"")).collect::<Vec<_>>().join(",")
    );
    let router = start_router(&toml).await;
    for _ in 0..20 {
        assert_eq!(
            send(&router.local_addrs()[0], &get("h", "/"), b"")
                .await
                .status,
            502
        );
    }
    let pool = router.cluster().pool("default").unwrap();
    let ejected = pool
        .snapshot()
        .nodes
        .iter()
        .filter(|n| n.health().ejected_until().is_some())
        .count();
    assert_eq!(ejected, 2, "50% of 4 nodes");
}

async fn futures_dead(n: usize) -> Vec<String> {
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(free_addr().to_string());
    }
    v
}

#[tokio::test]
async fn the_router_answers_503_502_504_itself() {
    let hang = FakeNode::start("hang", Behaviour::Hang).await;
    let silent = FakeNode::start("silent", Behaviour::CloseSilently).await;
    let dead = free_addr();
    let toml = format!(
        r#"
default_pool = ""
[timeouts]
first_byte = "300ms"
[pools.empty]
[pools.dead]
nodes = ["{dead}"]
[pools.hang]
nodes = ["{}"]
[pools.silent]
nodes = ["{}"]
[[routes]]
host = "empty.test"
pool = "empty"
[[routes]]
host = "dead.test"
pool = "dead"
[[routes]]
host = "hang.test"
pool = "hang"
[[routes]]
host = "silent.test"
pool = "silent"
"#,
        hang.addr, silent.addr
    );
    let router = start_router(&toml).await;
    let addr = &router.local_addrs()[0];
    for (host, status, reason) in [
        ("nowhere.test", 503, "no pool for host \"nowhere.test\""),
        ("empty.test", 503, "no usable node in pool \"empty\""),
        (
            "dead.test",
            502,
            "could not connect to any node of pool \"dead\"",
        ),
        ("hang.test", 504, "sent no response within"),
        ("silent.test", 502, "sent no response"),
    ] {
        let r = send(addr, &get(host, "/"), b"").await;
        assert_eq!(r.status, status, "{host}: {}", r.text());
        assert!(r.text().contains(reason), "{host}: {}", r.text());
        let len: usize = r
            .head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(len, r.body.len(), "a complete response nginx can pass on");
    }
}

#[tokio::test]
async fn node_statuses_pass_through_untouched() {
    let node = FakeNode::start("a", Behaviour::Status(404)).await;
    let router = start_router(&pool_toml("least-load", &[&node])).await;
    let r = send(&router.local_addrs()[0], &get("h", "/missing"), b"").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.text(), "node=a\n");
}

#[tokio::test]
async fn a_stalled_response_is_cut_after_the_idle_timeout_without_a_router_reply() {
    let node = FakeNode::start("a", Behaviour::StallAfterHead).await;
    let toml = format!(
        "[timeouts]\nidle = \"300ms\"\n{}",
        pool_toml("round-robin", &[&node])
    );
    let router = start_router(&toml).await;
    let started = Instant::now();
    let r = send(&router.local_addrs()[0], &get("h", "/"), b"").await;
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert_eq!(r.status, 200, "the node's own status line");
    assert_eq!(
        r.body, b"partial",
        "nothing of the router's is appended after node bytes"
    );
}
