//! A client that stops reading the response, or stops sending the body it announced, is cut after
//! `timeouts.idle` like a silent node: it cannot keep its session, its node connection and its
//! `max_connections` permit for as long as it likes, and the node is not blamed for it.

mod support;

use std::time::Duration;

use support::scrape::scrape;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `big.test` streams 64 MiB, far more than the socket buffers between router and client hold;
/// anything else is echoed. Two client connections at most.
async fn router_with_a_big_response(
    stream: &FakeNode,
    echo: &FakeNode,
) -> uwsgi_router::daemon::Daemon {
    start_router(&format!(
        "default_pool = \"echo\"\n[limits]\nmax_connections = 2\n[timeouts]\nidle = \"500ms\"\n\
         [pools.big]\nnodes = [\"{}\"]\n[pools.echo]\nnodes = [\"{}\"]\n\
         [[routes]]\nhost = \"big.test\"\npool = \"big\"\n",
        stream.addr, echo.addr
    ))
    .await
}

#[tokio::test]
async fn clients_that_stop_reading_are_cut_and_free_their_connection_slots() {
    let stream = FakeNode::start("big", Behaviour::Stream(64 << 20)).await;
    let echo = FakeNode::start("echo", Behaviour::Echo).await;
    let router = router_with_a_big_response(&stream, &echo).await;
    let addr = router.local_addrs()[0].clone();

    // Both slots taken by clients that ask for the big response and never read it.
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let mut c = connect(&addr).await;
        c.write_all(&get("big.test", "/")).await.unwrap();
        stalled.push(c);
    }

    // A third client waits in the backlog until a slot frees: it is served once the stalled
    // ones are cut (before the fix it waited for ever).
    let r = send(&addr, &get("other.test", "/"), b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(node_of(&r), "echo");

    // The other stalled session is cut at about the same time: wait for its count (a read on
    // its connection before then would make it a reader again).
    let big = stream.addr.to_string();
    let cut = [
        ("pool", "big"),
        ("node", big.as_str()),
        ("outcome", "client_timeout"),
    ];
    let m = wait_for("both stalled clients to be cut", STEP, async || {
        let m = scrape(&router).await;
        (m.get("uwsgi_router_requests_total", &cut) == Some(2.0)).then_some(m)
    })
    .await;
    assert_eq!(
        m.get(
            "uwsgi_router_node_failures_total",
            &[("pool", "big"), ("node", &big)]
        ),
        Some(0.0),
        "a client that does not read says nothing about the node"
    );

    // Their connections were closed by the router: reading now ends (after what the buffers
    // held) instead of blocking, and far short of the whole response.
    for mut c in stalled {
        let mut sink = Vec::new();
        let read = tokio::time::timeout(STEP, c.read_to_end(&mut sink)).await;
        assert!(
            read.is_ok(),
            "the router closed the stalled client's connection"
        );
        assert!(sink.len() < 64 << 20, "the response was cut, not delivered");
    }
}

#[tokio::test]
async fn a_client_that_stops_sending_its_body_is_cut_without_blaming_the_node() {
    let echo = FakeNode::start("echo", Behaviour::Echo).await;
    let router = start_router(&format!(
        "[timeouts]\nidle = \"300ms\"\nfirst_byte = \"60s\"\n{}",
        pool_toml("round-robin", &[&echo])
    ))
    .await;
    let addr = router.local_addrs()[0].clone();

    let mut c = connect(&addr).await;
    c.write_all(&request("POST", "h", "/upload", 10_000))
        .await
        .unwrap();
    c.write_all(&[b'x'; 100]).await.unwrap();
    // ... and nothing more. The router gives up on the client after `idle`, not on the node
    // after `first_byte`.
    let mut raw = Vec::new();
    tokio::time::timeout(STEP, c.read_to_end(&mut raw))
        .await
        .expect("cut within the idle timeout, not after first_byte")
        .unwrap();
    assert!(
        raw.is_empty(),
        "no 504 for a client that stalled: {:?}",
        String::from_utf8_lossy(&raw)
    );

    let m = scrape(&router).await;
    let node = echo.addr.to_string();
    let labels = |outcome| {
        [
            ("pool", "default"),
            ("node", node.as_str()),
            ("outcome", outcome),
        ]
    };
    assert_eq!(
        m.get("uwsgi_router_requests_total", &labels("client_timeout")),
        Some(1.0)
    );
    assert_eq!(
        m.get("uwsgi_router_requests_total", &labels("504")),
        Some(0.0)
    );
    assert_eq!(
        m.get(
            "uwsgi_router_node_failures_total",
            &[("pool", "default"), ("node", &node)]
        ),
        Some(0.0)
    );
}

#[tokio::test]
async fn a_slow_but_steady_reader_gets_the_whole_response() {
    let stream = FakeNode::start("big", Behaviour::Stream(4 << 20)).await;
    let router = start_router(&format!(
        "[timeouts]\nidle = \"500ms\"\n{}",
        pool_toml("round-robin", &[&stream])
    ))
    .await;
    let mut c = connect(&router.local_addrs()[0]).await;
    c.write_all(&get("h", "/")).await.unwrap();
    // Reads 64 KiB every 20 ms: slow, but never idle for 500 ms.
    let mut got = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    let read_all = async {
        loop {
            let n = c.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got += n;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(STEP, read_all)
        .await
        .expect("done within the step");
    assert!(got > 4 << 20, "head and all 4 MiB of body arrived: {got}");
}
