//! The probes: `/healthz` answers 200 while routerd runs; `/readyz` answers 200 while it serves
//! and 503 as soon as shutdown begins, while routerd still accepts for `timeouts.shutdown_delay`
//! so that load balancers stop sending before it stops listening. With
//! `metrics.readyz_requires_nodes`, `/readyz` also waits for every pool that has nodes to have a
//! usable one.

mod support;

use std::time::Duration;

use support::binary::Routerd;
use support::scrape::*;
use support::*;
use tokio::time::Instant;

#[tokio::test]
async fn probes_and_metrics_answer_get() {
    let node = FakeNode::start("a", Behaviour::Echo).await;
    let router = start_router(&pool_toml("round-robin", &[&node])).await;
    let addr = metrics_addr(&router);
    assert!(addr.ip().is_loopback());

    for path in ["/healthz", "/readyz", "/metrics", "/metrics?name=x"] {
        let r = http_get(addr, path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.head);
        assert!(r.head.contains("Connection: close"), "{path}: {}", r.head);
    }
    let metrics = http_get(addr, "/metrics").await;
    assert!(
        metrics
            .head
            .contains("Content-Type: text/plain; version=0.0.4"),
        "{}",
        metrics.head
    );
    assert!(metrics
        .body
        .contains("# TYPE uwsgi_router_requests_total counter"));
    assert_eq!(http_get(addr, "/").await.status, 404);
}

#[tokio::test]
async fn metrics_listen_empty_disables_the_listener() {
    let router = start_router("[metrics]\nlisten = \"\"\n").await;
    assert_eq!(router.metrics_addr(), None);
}

/// Polls `/readyz` until it answers `status`; returns when that was first seen.
async fn wait_ready_status(addr: std::net::SocketAddr, status: u16) -> Instant {
    wait_for(format!("/readyz answering {status}"), STEP, async || {
        (http_get(addr, "/readyz").await.status == status).then(Instant::now)
    })
    .await
}

#[tokio::test]
async fn shutdown_fails_readiness_then_stops_accepting_after_the_delay() {
    let node = FakeNode::start("a", Behaviour::Echo).await;
    let body = format!(
        "{}[timeouts]\nshutdown_delay = \"1s\"\n",
        pool_toml("round-robin", &[&node])
    );
    let router = start_router(&body).await;
    let (ops, uwsgi) = (metrics_addr(&router), router.local_addrs()[0].clone());
    assert_eq!(http_get(ops, "/readyz").await.status, 200);

    let started = Instant::now();
    let shutdown = tokio::spawn(router.shutdown());
    let unready = wait_ready_status(ops, 503).await;
    assert!(
        unready - started < Duration::from_millis(500),
        "readiness fails at once, not after the delay"
    );
    // Still serving during the delay, and still alive.
    let r = send(&uwsgi, &get("h", "/during-delay"), b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(http_get(ops, "/healthz").await.status, 200);

    // Then the listener closes.
    wait_for("routerd to stop accepting", STEP, async || {
        tokio::net::TcpStream::connect(&uwsgi)
            .await
            .is_err()
            .then_some(())
    })
    .await;
    let closed_after = started.elapsed();
    assert!(
        closed_after >= Duration::from_millis(900),
        "stopped accepting {closed_after:?} after shutdown began, before the 1 s delay"
    );
    tokio::time::timeout(STEP, shutdown)
        .await
        .expect("shutdown completes")
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(ops).await.is_err(),
        "the metrics listener stops last"
    );
}

#[tokio::test]
async fn routerd_binary_fails_readiness_on_sigterm() {
    let node = FakeNode::start("a", Behaviour::Echo).await;
    let body = format!(
        "{}[timeouts]\nshutdown_delay = \"1s\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n",
        pool_toml("round-robin", &[&node])
    );
    let mut routerd = Routerd::start(&body).await;
    let ops = routerd.metrics_addr().await;
    assert_eq!(http_get(ops, "/readyz").await.status, 200);
    let metrics = http_get(ops, "/metrics").await;
    assert!(
        metrics.body.contains("uwsgi_router_build_info{"),
        "{}",
        metrics.body
    );

    routerd.signal("TERM");
    wait_ready_status(ops, 503).await;
    let r = send(&routerd.addr, &get("h", "/after-sigterm"), b"").await;
    assert_eq!(r.status, 200, "still accepting during shutdown_delay");
    let status = routerd
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("routerd exits after the delay");
    assert!(status.success(), "{status}:\n{}", routerd.stderr());
}

#[tokio::test]
async fn readyz_can_wait_for_a_usable_node_in_every_pool_with_nodes() {
    let web = FakeNode::start("web-1", Behaviour::Echo).await;
    let api = FakeNode::start("api-1", Behaviour::Echo).await;
    let pools = format!(
        "[pools.default]\nnodes = [\"{}\"]\n[pools.api]\nnodes = [\"{}\"]\n\
         [pools.api.ejection]\nconsecutive_failures = 1\nbase_time = \"1h\"\nmax_time = \"1h\"\n\
         [pools.empty]\n[[routes]]\nhost = \"api\"\npool = \"api\"\n",
        web.addr, api.addr
    );
    // Off (the default): ready whatever the pools hold.
    let plain = start_router(&pools).await;
    // On: ready while every pool with nodes has a usable one; `empty` has none and waits for none.
    let strict = start_router(&format!(
        "{pools}[metrics]\nlisten = \"127.0.0.1:0\"\nreadyz_requires_nodes = true\n"
    ))
    .await;
    let ops = metrics_addr(&strict);
    let r = http_get(ops, "/readyz").await;
    assert_eq!((r.status, r.body.as_str()), (200, "ready\n"));

    // api's only node stops answering; one failed request ejects it for an hour.
    api.stop();
    wait_for("api's node to be ejected", STEP, async || {
        let _ = send(&strict.local_addrs()[0], &get("api", "/"), b"").await;
        (http_get(ops, "/readyz").await.status == 503).then_some(())
    })
    .await;
    let r = http_get(ops, "/readyz").await;
    assert_eq!(r.body, "no usable node in pools: api\n");
    assert_eq!(http_get(ops, "/healthz").await.status, 200);
    assert_eq!(http_get(metrics_addr(&plain), "/readyz").await.status, 200);
}
