//! Requests reach nodes byte for byte, bodies and responses stream both ways, half-closes and
//! UNIX sockets work, and routes send each host to its pool.

mod support;

use std::collections::HashMap;

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NGINX_GET: &[u8] = include_bytes!("fixtures/nginx-get.bin");
const NGINX_POST: &[u8] = include_bytes!("fixtures/nginx-post.bin");

#[tokio::test]
async fn nginx_packets_arrive_unchanged_but_for_the_request_id() {
    let node = FakeNode::start("a", Behaviour::Echo).await;
    let router = start_router(&pool_toml("round-robin", &[&node])).await;
    let addr = &router.local_addrs()[0];

    let r = send(addr, NGINX_GET, b"").await;
    assert_eq!(r.status, 200);
    let (original, id) = request_id::split_request_id(&node.last_request.lock().unwrap());
    assert_eq!(original, NGINX_GET, "every byte but the appended var");
    assert_eq!(id.len(), 32, "{id}");

    // The POST capture carries its 10,240-byte body after the vars.
    let r = send(addr, NGINX_POST, b"").await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("body_length=10240"), "{}", r.text());
    let (original, _) = request_id::split_request_id(&node.last_request.lock().unwrap());
    assert_eq!(original, NGINX_POST);
}

#[tokio::test]
async fn without_request_ids_nginx_packets_arrive_byte_for_byte() {
    let node = FakeNode::start("a", Behaviour::Echo).await;
    let toml = format!(
        "{}[request_id]\nenabled = false\n",
        pool_toml("round-robin", &[&node])
    );
    let router = start_router(&toml).await;
    let addr = &router.local_addrs()[0];
    for capture in [NGINX_GET, NGINX_POST] {
        let r = send(addr, capture, b"").await;
        assert_eq!(r.status, 200);
        assert_eq!(&node.last_request.lock().unwrap()[..], capture);
    }
}

#[tokio::test]
async fn large_bodies_stream_both_ways() {
    let up = FakeNode::start("up", Behaviour::Echo).await;
    let router = start_router(&pool_toml("round-robin", &[&up])).await;
    let addr = &router.local_addrs()[0];
    let body = vec![7u8; 32 * 1024 * 1024];
    let r = send(addr, &request("POST", "h", "/upload", body.len()), &body).await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("body_length=33554432"), "{}", r.text());

    up.set_behaviour(Behaviour::Stream(64 * 1024 * 1024));
    let r = send(addr, &get("h", "/download"), b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 64 * 1024 * 1024);
}

#[tokio::test]
async fn a_client_half_close_still_gets_the_response() {
    let node = FakeNode::start("a", Behaviour::Echo).await;
    let router = start_router(&pool_toml("least-load", &[&node])).await;
    let mut s = connect(&router.local_addrs()[0]).await;
    s.write_all(&get("h", "/")).await.unwrap();
    s.shutdown().await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(STEP, s.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    assert!(
        raw.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
}

#[tokio::test]
async fn unix_and_ipv6_listeners_serve() {
    let node = FakeNode::start("a", Behaviour::Echo).await;
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("router.sock");
    let toml = format!(
        "[listen]\nuwsgi = [\"unix:{}\", \"[::1]:0\"]\n{}",
        sock.display(),
        pool_toml("round-robin", &[&node])
    );
    let router = start_router(&toml).await;
    let addrs = router.local_addrs();
    assert_eq!(addrs[0], format!("unix:{}", sock.display()));
    for addr in addrs {
        let r = send(addr, &get("h", "/"), b"").await;
        assert_eq!(r.status, 200, "via {addr}");
        assert_eq!(node_of(&r), "a");
    }
}

#[tokio::test]
async fn hosts_are_routed_to_their_pools() {
    let shop = FakeNode::start("shop", Behaviour::Echo).await;
    let api = FakeNode::start("api", Behaviour::Echo).await;
    let fallback = FakeNode::start("fallback", Behaviour::Echo).await;
    let toml = format!(
        r#"
[pools.default]
nodes = ["{}"]
[pools.shop]
nodes = ["{}"]
[pools.api]
nodes = ["{}"]
[[routes]]
host = "*.shop.test"
pool = "shop"
[[routes]]
host = "www.shop.test"
path_prefix = "/api/"
pool = "api"
"#,
        fallback.addr, shop.addr, api.addr
    );
    let router = start_router(&toml).await;
    let addr = &router.local_addrs()[0];
    for (host, path, want) in [
        ("www.shop.test", "/", "shop"),
        ("WWW.Shop.Test:8443", "/cart", "shop"),
        ("www.shop.test", "/api/items", "api"),
        ("other.test", "/", "fallback"),
    ] {
        let r = send(addr, &get(host, path), b"").await;
        assert_eq!(node_of(&r), want, "{host}{path}");
    }
}

#[tokio::test]
async fn requests_spread_over_every_node() {
    let nodes = [
        FakeNode::start("a", Behaviour::Echo).await,
        FakeNode::start("b", Behaviour::Echo).await,
        FakeNode::start("c", Behaviour::Echo).await,
    ];
    for alg in [
        "round-robin",
        "weighted-round-robin",
        "least-connections",
        "random",
    ] {
        let router = start_router(&pool_toml(alg, &nodes.iter().collect::<Vec<_>>())).await;
        let mut seen: HashMap<String, usize> = HashMap::new();
        for _ in 0..60 {
            let r = send(&router.local_addrs()[0], &get("h", "/"), b"").await;
            assert_eq!(r.status, 200);
            *seen.entry(node_of(&r)).or_default() += 1;
        }
        assert_eq!(seen.len(), 3, "{alg}: {seen:?}");
        router.shutdown().await;
    }
}

#[tokio::test]
async fn least_load_tries_every_node_even_one_at_a_time() {
    // Sub-millisecond nodes, one request at a time: least-load prefers the nodes it has measured,
    // and a node it never tried starts at the 30 ms default. That default decays while the node
    // is idle, so every node still gets requests within a few seconds.
    let nodes = [
        FakeNode::start("a", Behaviour::Echo).await,
        FakeNode::start("b", Behaviour::Echo).await,
        FakeNode::start("c", Behaviour::Echo).await,
    ];
    let router = start_router(&pool_toml("least-load", &nodes.iter().collect::<Vec<_>>())).await;
    let mut seen: HashMap<String, usize> = HashMap::new();
    let every_node = wait::within(std::time::Duration::from_secs(10), async || {
        let r = send(&router.local_addrs()[0], &get("h", "/"), b"").await;
        assert_eq!(r.status, 200);
        *seen.entry(node_of(&r)).or_default() += 1;
        (seen.len() == 3).then_some(())
    })
    .await;
    if let Err(e) = every_node {
        panic!("every node to get a request: {e}: {seen:?}");
    }
}

#[tokio::test]
async fn hash_pools_are_sticky_on_their_var() {
    let nodes = [
        FakeNode::start("a", Behaviour::Echo).await,
        FakeNode::start("b", Behaviour::Echo).await,
        FakeNode::start("c", Behaviour::Echo).await,
    ];
    let mut toml = pool_toml("hash", &nodes.iter().collect::<Vec<_>>());
    toml.push_str("hash_var = \"HTTP_HOST\"\n");
    let router = start_router(&toml).await;
    let addr = &router.local_addrs()[0];
    let mut homes = HashMap::new();
    for i in 0..30 {
        let host = format!("user{}.test", i % 10);
        let node = node_of(&send(addr, &get(&host, "/"), b"").await);
        assert_eq!(homes.entry(host).or_insert_with(|| node.clone()), &node);
    }
    let distinct: std::collections::HashSet<_> = homes.values().collect();
    assert!(
        distinct.len() >= 2,
        "ten keys should not all land on one node: {homes:?}"
    );
}

#[tokio::test]
async fn a_node_answering_while_the_body_still_streams_does_not_deadlock() {
    // The node echoes the body as it arrives: both directions stay busy at once, well past what
    // socket buffers hold, so a router that moved one direction at a time would stall.
    let node = FakeNode::start("duplex", Behaviour::Duplex).await;
    let router = start_router(&pool_toml("round-robin", &[&node])).await;
    let len = 16 * 1024 * 1024;
    let body: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let mut s = connect(&router.local_addrs()[0]).await;
    s.write_all(&request("POST", "h", "/echo", len))
        .await
        .unwrap();
    let (mut rd, mut wr) = tokio::io::split(s);
    let writer = tokio::spawn(async move {
        wr.write_all(&body).await.unwrap();
        wr
    });
    let mut raw = Vec::new();
    tokio::time::timeout(STEP, rd.read_to_end(&mut raw))
        .await
        .expect("no deadlock")
        .unwrap();
    writer.await.unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(raw.len() - split, len);
    assert!(
        raw[split..]
            .iter()
            .enumerate()
            .all(|(i, &b)| b == (i % 251) as u8),
        "the echo is intact"
    );
}
