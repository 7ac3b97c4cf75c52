//! The operations endpoint as curl, Prometheus and load balancer probes use it: `HEAD` answered
//! with the head a `GET` gets and no body, several requests on one kept-alive connection, and the
//! limits on what a client may send.

mod support;

use support::http_client::HttpConn;
use support::scrape::{http_raw, metrics_addr, Scrape};
use support::*;

#[tokio::test]
async fn head_metrics_is_200_with_no_body() {
    let router = start_router("[pools.default]\n").await;
    let addr = metrics_addr(&router);
    // What `curl -I` sends; the reply is read until routerd closes, so any body would show.
    let head = http_raw(
        addr,
        b"HEAD /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(head.status, 200, "{}", head.head);
    assert_eq!(head.body, "", "HEAD has no body");
    assert!(
        head.head
            .contains("Content-Type: text/plain; version=0.0.4"),
        "{}",
        head.head
    );
    let length: usize = head
        .head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("HEAD tells the length a GET gets")
        .parse()
        .unwrap();
    assert!(length > 1000, "the metrics body is {length} bytes");
    for path in ["/healthz", "/readyz"] {
        let request = format!("HEAD {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let r = http_raw(addr, request.as_bytes()).await;
        assert_eq!((r.status, r.body.as_str()), (200, ""), "{path}: {}", r.head);
    }
}

#[tokio::test]
async fn one_connection_carries_several_requests() {
    let router = start_router("[pools.default]\n").await;
    let addr = metrics_addr(&router).to_string();
    let mut conn = HttpConn::connect(&addr).await;
    let health = conn
        .request(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await;
    assert_eq!((health.status, health.text().as_str()), (200, "ok\n"));
    assert_eq!(health.header("connection"), None, "kept alive");
    let head = conn
        .request(b"HEAD /readyz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await;
    assert_eq!(head.status, 200);
    let metrics = conn
        .request(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
        .await;
    assert_eq!(metrics.status, 200);
    let m = Scrape::parse(&metrics.text());
    assert!(m.get("process_open_fds", &[]).is_some(), "{}", m.text);
    // Two requests sent at once (pipelined) are answered in order.
    conn.send(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET /nope HTTP/1.1\r\nHost: t\r\n\r\n")
        .await;
    assert_eq!(conn.response(false).await.status, 200);
    assert_eq!(conn.response(false).await.status, 404);
    // The client's `Connection: close` is honoured.
    let last = conn
        .request(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(last.header("connection"), Some("close"));
    assert!(conn.is_closed().await, "closed after Connection: close");
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed() {
    let router = start_router("[pools.default]\n").await;
    let mut conn = HttpConn::connect(&metrics_addr(&router).to_string()).await;
    let r = conn
        .request(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await;
    assert_eq!(r.status, 200);
    // No next request: routerd closes it (after the head timeout), so idle probes cannot pile up.
    assert!(conn.is_closed().await, "an idle connection is closed");
}

#[tokio::test]
async fn other_methods_big_heads_and_garbage_are_refused() {
    let router = start_router("[pools.default]\n").await;
    let addr = metrics_addr(&router);
    let post = http_raw(
        addr,
        b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(post.status, 405);
    assert!(post.head.contains("Allow: GET, HEAD"), "{}", post.head);
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "x".repeat(20_000)
    );
    assert_eq!(http_raw(addr, huge.as_bytes()).await.status, 431);
    assert_eq!(http_raw(addr, b"hello\r\n\r\n").await.status, 400);
}
