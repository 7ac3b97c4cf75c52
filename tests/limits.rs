//! `[limits]`: beyond `max_connections` clients wait (in the kernel backlog) instead of being
//! dropped, and a vars block over `max_vars_size` is refused before it reaches any node.

mod support;

use std::time::Duration;

use support::packet::{packet, request_vars};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use uwsgi_router::protocol::HEADER_LEN;

#[tokio::test]
async fn a_connection_over_the_limit_waits_until_one_finishes() {
    let node = FakeNode::start("n", Behaviour::Slow(Duration::from_secs(1))).await;
    let toml = format!(
        "[limits]\nmax_connections = 2\n{}",
        pool_toml("round-robin", &[&node])
    );
    let router = start_router(&toml).await;
    let addr = router.local_addrs()[0].clone();

    // Two slow requests hold both connection slots.
    let mut holders = Vec::new();
    for i in 0..2 {
        let addr = addr.clone();
        holders.push(tokio::spawn(async move {
            let r = send(&addr, &get("h", &format!("/hold{i}")), b"").await;
            (r, Instant::now())
        }));
    }
    node.wait_served(2).await;
    node.set_behaviour(Behaviour::Echo);

    // A third client connects (the kernel completes the handshake) and sends its request, but
    // routerd does not take it on while both slots are busy.
    let mut third = connect(&addr).await;
    third.write_all(&get("h", "/third")).await.unwrap();
    let mut raw = Vec::new();
    let waited =
        tokio::time::timeout(Duration::from_millis(300), third.read_to_end(&mut raw)).await;
    assert!(
        waited.is_err(),
        "the third connection was answered while two were in flight: {:?}",
        String::from_utf8_lossy(&raw)
    );
    assert_eq!(node.served(), 2, "the third request was not forwarded yet");
    assert!(
        holders.iter().all(|h| !h.is_finished()),
        "the first two are still in flight"
    );

    // Once the first two finish, it is served normally.
    tokio::time::timeout(STEP, third.read_to_end(&mut raw))
        .await
        .expect("the third connection is served once a slot frees")
        .unwrap();
    let served_at = Instant::now();
    let mut first_done = None;
    for h in holders {
        let (r, done) = h.await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        first_done = Some(first_done.map_or(done, |d: Instant| d.min(done)));
    }
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("node=n"), "{text}");
    assert!(
        served_at >= first_done.unwrap(),
        "the third was served before a slot was free"
    );
    assert_eq!(node.served(), 3);
}

/// A request packet whose vars block is exactly `size` bytes, padded with an `X_PAD` var.
fn packet_with_vars_size(size: usize) -> Vec<u8> {
    let base = get("h", "/").len() - HEADER_LEN;
    // An extra var costs 2 + key + 2 + value bytes.
    let pad = "p".repeat(size - base - 2 - "X_PAD".len() - 2);
    let mut vars = request_vars("GET", "h", "/", "");
    vars.push(("X_PAD", &pad));
    let p = packet(&vars);
    assert_eq!(p.len() - HEADER_LEN, size, "padding arithmetic");
    p
}

#[tokio::test]
async fn a_vars_block_over_max_vars_size_never_reaches_a_node() {
    let node = FakeNode::start("n", Behaviour::Echo).await;
    let toml = format!(
        "[limits]\nmax_vars_size = 512\n{}",
        pool_toml("round-robin", &[&node])
    );
    let router = start_router(&toml).await;
    let addr = router.local_addrs()[0].clone();

    let over = send_raw(&addr, &packet_with_vars_size(513)).await;
    assert!(
        over.is_empty(),
        "513 bytes of vars get no response, the connection is closed: {:?}",
        String::from_utf8_lossy(&over)
    );
    assert_eq!(node.served(), 0, "the node never saw it");

    for size in [511, 512] {
        let r = send(&addr, &packet_with_vars_size(size), b"").await;
        assert_eq!(
            r.status,
            200,
            "{size} bytes of vars are forwarded: {}",
            r.text()
        );
        assert!(r.text().contains("X_PAD=ppp"), "whole: {}", r.text());
    }
    assert_eq!(node.served(), 2);
}
