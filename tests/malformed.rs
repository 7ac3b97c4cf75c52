//! Malformed packets and slow clients: the connection is closed without a response, and the
//! router keeps serving everyone else.

mod support;

use std::time::Duration;

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

const NGINX_GET: &[u8] = include_bytes!("fixtures/nginx-get.bin");

async fn router_with_node() -> (FakeNode, uwsgi_router::daemon::Daemon) {
    let node = FakeNode::start("a", Behaviour::Echo).await;
    let toml = format!(
        "[limits]\nmax_vars_size = 1024\n[timeouts]\nheader = \"300ms\"\n{}",
        pool_toml("round-robin", &[&node])
    );
    (node, start_router(&toml).await)
}

#[tokio::test]
async fn malformed_packets_are_dropped_and_others_still_served() {
    let (node, router) = router_with_node().await;
    let addr = &router.local_addrs()[0];
    let mut lying_key = NGINX_GET.to_vec();
    lying_key[4] = 0xff; // first key length now runs past the vars block
    let mut lying_value = NGINX_GET.to_vec();
    lying_value[4 + 2 + 12] = 0xff;
    let mut short_vars = NGINX_GET[..4].to_vec();
    short_vars.extend_from_slice(&[3, 0, b'a']); // datasize says 390, then EOF
    let oversize = [0u8, 0x10, 0x27, 0]; // datasize 10000 > max_vars_size 1024
    let mut random = vec![0u8; 3000];
    let mut x: u32 = 0x9e37_79b9;
    for b in random.iter_mut() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    random[1] = 0x00;
    random[2] = 0x02; // datasize 512: a block of random bytes that cannot parse as vars
    let cases: [(&str, &[u8]); 6] = [
        ("truncated header", &[0, 1]),
        ("oversize datasize", &oversize),
        ("vars shorter than datasize", &short_vars),
        ("key length past the block", &lying_key),
        ("value length past the block", &lying_value),
        ("random bytes", &random),
    ];
    for (what, bytes) in cases {
        let reply = send_raw(addr, bytes).await;
        assert!(
            !reply.starts_with(b"HTTP/1.1 200"),
            "{what}: must not be forwarded"
        );
        let r = send(addr, NGINX_GET, b"").await;
        assert_eq!(
            r.status, 200,
            "after {what}, the next good request is served"
        );
    }
    assert_eq!(node.served(), 6, "no malformed packet reached the node");
}

#[tokio::test]
async fn a_slow_client_is_cut_off_without_holding_up_others() {
    let (_node, router) = router_with_node().await;
    let addr = router.local_addrs()[0].clone();
    let mut slow = connect(&addr).await;
    slow.write_all(&NGINX_GET[..10]).await.unwrap();
    let started = Instant::now();
    // Meanwhile others are served.
    for _ in 0..5 {
        assert_eq!(send(&addr, NGINX_GET, b"").await.status, 200);
    }
    let mut rest = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut rest)).await;
    assert!(
        matches!(n, Ok(Ok(0)) | Ok(Err(_))),
        "the stalled client is disconnected"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "but only after the header timeout"
    );
}
