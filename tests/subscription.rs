//! uWSGI subscriptions, in process: datagrams as uWSGI's `--subscribe-to` sends them put nodes in
//! the pool their key routes to (or in one made for the key), renew their lease, take them out on
//! unsubscribe or silence, and give their requests the announced modifiers. Signed subscriptions
//! are checked; broken, oversized and flooding datagrams are refused, counted and bounded, and the
//! router keeps serving.

mod support;

use std::path::Path;
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::RsaPrivateKey;
use support::scrape::scrape;
use support::*;
use tokio::net::{UdpSocket, UnixDatagram};
use tokio::time::Instant;
use uwsgi_router::daemon::Daemon;
use uwsgi_router::node::Source;
use uwsgi_router::protocol::{encode_packet, encode_vars};

const PACKETS: &str = "uwsgi_router_subscription_packets_total";
const SUBSCRIBE: u8 = 0;
const UNSUBSCRIBE: u8 = 1;

/// The vars uWSGI 2.0 sends, in its order.
fn announce(key: &str, address: &str) -> Vec<(&'static str, Vec<u8>)> {
    [
        ("key", key),
        ("address", address),
        ("modifier1", "0"),
        ("modifier2", "0"),
        ("cores", "2"),
        ("load", "0"),
        ("weight", "0"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.as_bytes().to_vec()))
    .collect()
}

fn with(
    mut vars: Vec<(&'static str, Vec<u8>)>,
    name: &'static str,
    value: &str,
) -> Vec<(&'static str, Vec<u8>)> {
    match vars.iter_mut().find(|(k, _)| *k == name) {
        Some(var) => var.1 = value.as_bytes().to_vec(),
        None => vars.push((name, value.as_bytes().to_vec())),
    }
    vars
}

fn packet(action: u8, vars: &[(&str, Vec<u8>)]) -> Vec<u8> {
    encode_packet(
        224,
        action,
        vars.iter().map(|(k, v)| (k.as_bytes(), &v[..])),
    )
    .unwrap()
    .to_vec()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Signs as uWSGI does: `unix`, then an RSA-SHA1 signature over every var before `sign`.
fn signed(
    action: u8,
    vars: Vec<(&'static str, Vec<u8>)>,
    key: &RsaPrivateKey,
    unix: u64,
) -> Vec<u8> {
    let mut vars = with(vars, "unix", &unix.to_string());
    let mut block = bytes::BytesMut::new();
    encode_vars(vars.iter().map(|(k, v)| (k.as_bytes(), &v[..])), &mut block).unwrap();
    let signature = SigningKey::<sha1::Sha1>::new(key.clone()).sign(&block);
    vars.push(("sign", signature.to_vec()));
    packet(action, &vars)
}

fn test_key() -> RsaPrivateKey {
    let pem = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/subscription-test-key.pem"
    ))
    .unwrap();
    RsaPrivateKey::from_pkcs8_pem(&pem).unwrap()
}

/// Sends datagrams to the router's first subscription socket from one UDP socket, as a node does.
struct Node {
    socket: UdpSocket,
    router: String,
}

impl Node {
    async fn new(router: &Daemon) -> Self {
        Self::from_host(router, "127.0.0.1").await
    }

    /// A sender on another loopback address: on this machine, another host.
    async fn from_host(router: &Daemon, ip: &str) -> Self {
        Self {
            socket: UdpSocket::bind((ip, 0)).await.unwrap(),
            router: router.subscription_addrs()[0].clone(),
        }
    }

    async fn send(&self, datagram: &[u8]) {
        self.socket.send_to(datagram, &self.router).await.unwrap();
    }
}

/// Fails the test once `limit` has passed; otherwise pauses briefly. For bounded polling loops.
struct Deadline {
    until: Instant,
    what: String,
}

impl Deadline {
    fn new(what: impl Into<String>) -> Self {
        Self {
            until: Instant::now() + STEP,
            what: what.into(),
        }
    }

    async fn tick(&self) {
        assert!(Instant::now() < self.until, "timed out: {}", self.what);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn counted(router: &Daemon, outcome: &str) -> f64 {
    scrape(router)
        .await
        .get(PACKETS, &[("outcome", outcome)])
        .unwrap_or(0.0)
}

/// Waits until the counter of `outcome` exceeds `before`: the datagram was handled.
async fn wait_counted(router: &Daemon, outcome: &str, before: f64) {
    let d = Deadline::new(format!("a datagram counted as {outcome}"));
    while counted(router, outcome).await <= before {
        d.tick().await;
    }
}

fn pool_nodes(router: &Daemon, pool: &str) -> Vec<String> {
    router.cluster().pool(pool).map_or_else(Vec::new, |p| {
        p.snapshot()
            .nodes
            .iter()
            .map(|n| n.addr().to_string())
            .collect()
    })
}

/// Waits until a request for `host` is answered by `node` (the route was rebuilt).
async fn wait_served_by(router: &Daemon, host: &str, node: &str) {
    let d = Deadline::new(format!("{host} served by {node}"));
    loop {
        let r = send(&router.local_addrs()[0], &get(host, "/"), b"").await;
        if r.status == 200 && node_of(&r) == node {
            return;
        }
        d.tick().await;
    }
}

/// Returns once `router` has handled every datagram `from` sent before: it handles them one at a
/// time in arrival order, so once a node announced after them has joined, they are done with.
/// (The outcome counters cannot tell: they are the process's, shared with the other tests.)
/// Signed, for a router with a key directory: `key_dir` puts `sync.test.pem` in it.
async fn sync(router: &Daemon, from: &Node, signed_with_key: bool) {
    static NEXT_PORT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(30000);
    let port = NEXT_PORT.fetch_add(1, SeqCst);
    let vars = announce("sync.test", &format!("127.0.0.1:{port}"));
    let datagram = if signed_with_key {
        signed(SUBSCRIBE, vars, &test_key(), unix_now())
    } else {
        packet(SUBSCRIBE, &vars)
    };
    from.send(&datagram).await;
    let id = format!("127.0.0.1:{port}@sync.test");
    let d = Deadline::new(format!("{id} to join"));
    while router.cluster().find(&id).is_none() {
        d.tick().await;
    }
}

async fn start(subscription: &str) -> Daemon {
    start_router(&format!(
        "default_pool = \"\"\n[subscription]\nlisten = [\"127.0.0.1:0\"]\n{subscription}"
    ))
    .await
}

#[tokio::test]
async fn subscribed_nodes_get_the_traffic_of_their_key_and_no_other() {
    let a = FakeNode::start("a", Behaviour::Echo).await;
    let b = FakeNode::start("b", Behaviour::Echo).await;
    let router = start("").await;
    let node = Node::new(&router).await;
    node.send(&packet(
        SUBSCRIBE,
        &announce("alpha.test", &a.addr.to_string()),
    ))
    .await;
    node.send(&packet(
        SUBSCRIBE,
        &announce("Beta.Test", &b.addr.to_string()),
    ))
    .await;
    wait_served_by(&router, "alpha.test", "a").await;
    wait_served_by(&router, "beta.test", "b").await;
    let addr = &router.local_addrs()[0];
    for _ in 0..10 {
        assert_eq!(
            node_of(&send(addr, &get("alpha.test", "/"), b"").await),
            "a"
        );
        assert_eq!(
            node_of(&send(addr, &get("BETA.test:80", "/"), b"").await),
            "b"
        );
    }
    let other = send(addr, &get("gamma.test", "/"), b"").await;
    assert_eq!(other.status, 503, "{}", other.text());
    assert!(
        other.text().contains("no pool for host"),
        "{}",
        other.text()
    );

    let (pool, n) = router
        .cluster()
        .find(&format!("{}@alpha.test", a.addr))
        .unwrap();
    assert_eq!(&*pool.name, "alpha.test", "a pool named after the key");
    assert_eq!(n.source(), Source::Subscribed);
    assert_eq!(pool_nodes(&router, "beta.test"), [b.addr.to_string()]);
    assert!(counted(&router, "joined").await >= 2.0);
}

#[tokio::test]
async fn a_node_leaves_on_unsubscribe_and_an_emptied_key_pool_goes() {
    let a = FakeNode::start("a", Behaviour::Echo).await;
    let b = FakeNode::start("b", Behaviour::Echo).await;
    let router = start("").await;
    let node = Node::new(&router).await;
    let (va, vb) = (
        announce("alpha.test", &a.addr.to_string()),
        announce("alpha.test", &b.addr.to_string()),
    );
    node.send(&packet(SUBSCRIBE, &va)).await;
    node.send(&packet(SUBSCRIBE, &vb)).await;
    let d = Deadline::new("both nodes in alpha.test");
    while pool_nodes(&router, "alpha.test").len() < 2 {
        d.tick().await;
    }
    // Routed (least-load then picks whichever node is cheaper).
    let d = Deadline::new("alpha.test routed");
    while send(&router.local_addrs()[0], &get("alpha.test", "/"), b"")
        .await
        .status
        != 200
    {
        d.tick().await;
    }

    node.send(&packet(UNSUBSCRIBE, &va)).await;
    let d = Deadline::new("a out of alpha.test");
    while pool_nodes(&router, "alpha.test") != [b.addr.to_string()] {
        d.tick().await;
    }
    let served_by_a = a.served();
    let addr = &router.local_addrs()[0];
    for _ in 0..20 {
        let r = send(addr, &get("alpha.test", "/"), b"").await;
        assert_eq!(
            (r.status, node_of(&r)),
            (200, "b".to_owned()),
            "{}",
            r.text()
        );
    }
    assert_eq!(
        a.served(),
        served_by_a,
        "an unsubscribed node gets no request"
    );

    node.send(&packet(UNSUBSCRIBE, &vb)).await;
    let d = Deadline::new("the emptied pool and its route dropped");
    loop {
        let r = send(addr, &get("alpha.test", "/"), b"").await;
        if router.cluster().pool("alpha.test").is_none() && r.text().contains("no pool for host") {
            break;
        }
        d.tick().await;
    }
    // The key can come back.
    node.send(&packet(SUBSCRIBE, &vb)).await;
    wait_served_by(&router, "alpha.test", "b").await;
}

#[tokio::test]
async fn a_silent_node_leaves_after_the_tolerance_while_an_announcing_one_stays() {
    let a = FakeNode::start("a", Behaviour::Echo).await;
    let b = FakeNode::start("b", Behaviour::Echo).await;
    let router = start("tolerance = \"600ms\"\n").await;
    let node = Node::new(&router).await;
    let vb = announce("beta.test", &b.addr.to_string());
    node.send(&packet(
        SUBSCRIBE,
        &announce("alpha.test", &a.addr.to_string()),
    ))
    .await;
    node.send(&packet(SUBSCRIBE, &vb)).await;
    let joined = Instant::now();
    wait_served_by(&router, "alpha.test", "a").await;
    let d = Deadline::new("the silent node to leave");
    while !pool_nodes(&router, "alpha.test").is_empty() {
        node.send(&packet(SUBSCRIBE, &vb)).await;
        tokio::time::sleep(Duration::from_millis(90)).await;
        d.tick().await;
    }
    let silent_for = joined.elapsed();
    assert!(
        silent_for >= Duration::from_millis(500),
        "left after {silent_for:?}, before the tolerance"
    );
    assert!(
        silent_for < Duration::from_secs(3),
        "left only after {silent_for:?}"
    );
    assert_eq!(
        pool_nodes(&router, "beta.test"),
        [b.addr.to_string()],
        "renewed leases hold"
    );
    let r = send(&router.local_addrs()[0], &get("beta.test", "/"), b"").await;
    assert_eq!(node_of(&r), "b");
}

#[tokio::test]
async fn announcements_feed_weight_capacity_and_listen_queue_to_the_balancer() {
    let a = FakeNode::start("a", Behaviour::Echo).await;
    let router = start("").await;
    let node = Node::new(&router).await;
    let vars = announce("alpha.test", &a.addr.to_string());
    let busy = with(
        with(with(vars.clone(), "cores", "8"), "load", "3"),
        "weight",
        "5",
    );
    node.send(&packet(SUBSCRIBE, &busy)).await;
    let d = Deadline::new("a joined");
    let n = loop {
        if let Some((_, n)) = router.cluster().find(&format!("{}@alpha.test", a.addr)) {
            break n;
        }
        d.tick().await;
    };
    assert_eq!(n.weight(), 5);
    assert_eq!(n.capacity(), 8);
    assert_eq!(n.reported_load().map_or(0, |l| l.queue), 3);
    let renewed = counted(&router, "renewed").await;
    node.send(&packet(SUBSCRIBE, &vars)).await;
    wait_counted(&router, "renewed", renewed).await;
    let (_, same) = router
        .cluster()
        .find(&format!("{}@alpha.test", a.addr))
        .unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&n, &same),
        "a renewal keeps the node and its counters"
    );
    assert_eq!(n.weight(), 1, "weight 0 means 1, as in uWSGI");
    assert_eq!(n.reported_load().map_or(0, |l| l.queue), 0);
    assert_eq!(pool_nodes(&router, "alpha.test").len(), 1);
}

#[tokio::test]
async fn keys_follow_configured_routes_and_unrouted_ones_can_be_refused() {
    let a = FakeNode::start("a", Behaviour::Echo).await;
    let router = start_router(
        "default_pool = \"\"\n[pools.shop]\n[[routes]]\nhost = \"*.shop.test\"\npool = \"shop\"\n[subscription]\nlisten = [\"127.0.0.1:0\"]\ncreate_pools = false\n",
    )
    .await;
    let node = Node::new(&router).await;
    let no_route = counted(&router, "no_route").await;
    node.send(&packet(
        SUBSCRIBE,
        &announce("www.shop.test", &a.addr.to_string()),
    ))
    .await;
    node.send(&packet(
        SUBSCRIBE,
        &announce("elsewhere.test", &a.addr.to_string()),
    ))
    .await;
    wait_counted(&router, "no_route", no_route).await;
    wait_served_by(&router, "www.shop.test", "a").await;
    assert_eq!(pool_nodes(&router, "shop"), [a.addr.to_string()]);
    assert!(router.cluster().pool("elsewhere.test").is_none());
    assert!(
        router.cluster().pool("www.shop.test").is_none(),
        "no pool made for a routed key"
    );
}

#[tokio::test]
async fn modifiers_announced_by_a_node_are_written_into_its_requests() {
    let psgi = FakeNode::start("psgi", Behaviour::Echo).await;
    let wsgi = FakeNode::start("wsgi", Behaviour::Echo).await;
    let router = start("").await;
    let node = Node::new(&router).await;
    let vars = with(
        with(
            announce("perl.test", &psgi.addr.to_string()),
            "modifier1",
            "5",
        ),
        "modifier2",
        "1",
    );
    node.send(&packet(SUBSCRIBE, &vars)).await;
    node.send(&packet(
        SUBSCRIBE,
        &announce("py.test", &wsgi.addr.to_string()),
    ))
    .await;
    wait_served_by(&router, "perl.test", "psgi").await;
    wait_served_by(&router, "py.test", "wsgi").await;

    let request = get("perl.test", "/x");
    send(&router.local_addrs()[0], &request, b"").await;
    let (seen, _) = request_id::split_request_id(&psgi.last_request.lock().unwrap());
    assert_eq!(
        (seen[0], seen[3]),
        (5, 1),
        "modifier1 and modifier2 rewritten"
    );
    assert_eq!(seen[1..3], request[1..3]);
    assert_eq!(seen[4..], request[4..], "nothing else changes");

    let request = get("py.test", "/x");
    send(&router.local_addrs()[0], &request, b"").await;
    assert_eq!(
        request_id::split_request_id(&wsgi.last_request.lock().unwrap()).0,
        request,
        "0/0 announced: bytes as sent, but for the request id"
    );
}

#[tokio::test]
async fn signed_subscriptions_are_checked_and_forged_ones_refused() {
    let a = FakeNode::start("a", Behaviour::Echo).await;
    let thief = FakeNode::start("thief", Behaviour::Echo).await;
    let keys = tempfile::tempdir().unwrap();
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/subscription-test-key.pub.pem"
        ),
        keys.path().join("signed.test.pem"),
    )
    .unwrap();
    let router = start(&format!("key_dir = \"{}\"\n", keys.path().display())).await;
    let node = Node::new(&router).await;
    let key = test_key();
    let now = unix_now();
    let va = announce("signed.test", &a.addr.to_string());
    let vt = announce("signed.test", &thief.addr.to_string());

    let before = counted(&router, "unsigned").await;
    node.send(&packet(SUBSCRIBE, &vt)).await;
    wait_counted(&router, "unsigned", before).await;

    node.send(&signed(SUBSCRIBE, va.clone(), &key, now)).await;
    wait_served_by(&router, "signed.test", "a").await;

    // A forger without the private key: a genuine packet with another address spliced in.
    let genuine = signed(SUBSCRIBE, va.clone(), &key, now);
    let forged = {
        let s = uwsgi_router::subscription::Subscription::parse(&genuine).unwrap();
        let mut vars = with(vt.clone(), "unix", &s.unix.unwrap().to_string());
        vars.push(("sign", s.signed.unwrap().signature.to_vec()));
        packet(SUBSCRIBE, &vars)
    };
    let before = counted(&router, "bad_signature").await;
    node.send(&forged).await;
    wait_counted(&router, "bad_signature", before).await;

    let before = counted(&router, "stale").await;
    node.send(&signed(SUBSCRIBE, vt.clone(), &key, now - 3600))
        .await;
    wait_counted(&router, "stale", before).await;

    node.send(&signed(SUBSCRIBE, va.clone(), &key, now + 1))
        .await;
    let before = counted(&router, "replayed").await;
    node.send(&genuine).await;
    wait_counted(&router, "replayed", before).await;

    let before = counted(&router, "no_public_key").await;
    node.send(&signed(
        SUBSCRIBE,
        announce("unknown.test", &thief.addr.to_string()),
        &key,
        now,
    ))
    .await;
    wait_counted(&router, "no_public_key", before).await;

    assert_eq!(pool_nodes(&router, "signed.test"), [a.addr.to_string()]);
    assert!(router.cluster().pool("unknown.test").is_none());
    let addr = &router.local_addrs()[0];
    for _ in 0..10 {
        assert_eq!(
            node_of(&send(addr, &get("signed.test", "/"), b"").await),
            "a"
        );
    }
    assert_eq!(thief.served(), 0, "a refused node never gets a request");

    // Unsubscribing needs a signature too.
    let before = counted(&router, "unsigned").await;
    node.send(&packet(UNSUBSCRIBE, &va)).await;
    wait_counted(&router, "unsigned", before).await;
    assert_eq!(pool_nodes(&router, "signed.test").len(), 1);
    node.send(&signed(UNSUBSCRIBE, va, &key, now + 2)).await;
    let d = Deadline::new("a signed unsubscribe to take a out");
    while router
        .cluster()
        .find(&format!("{}@signed.test", a.addr))
        .is_some()
    {
        d.tick().await;
    }
}

async fn ack(notify: &UnixDatagram) -> String {
    let mut buf = vec![0u8; 512];
    let n = tokio::time::timeout(STEP, notify.recv(&mut buf))
        .await
        .expect("an acknowledgement within the step timeout")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn a_new_node_is_acknowledged_on_its_notify_socket() {
    let a = FakeNode::start("a", Behaviour::Echo).await;
    let b = FakeNode::start("b", Behaviour::Echo).await;
    let dir = tempfile::tempdir().unwrap();
    let router = start(&format!("notify_dir = \"{}\"\n", dir.path().display())).await;
    let node = Node::new(&router).await;
    let path = dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&path).unwrap();
    let on = |addr: String| {
        with(
            announce("alpha.test", &addr),
            "notify",
            path.to_str().unwrap(),
        )
    };
    node.send(&packet(SUBSCRIBE, &on(a.addr.to_string()))).await;
    assert_eq!(
        ack(&notify).await,
        format!("[subscription ack] alpha.test => new node: {}", a.addr)
    );
    // A renewal is not acknowledged: the next ack is b's.
    node.send(&packet(SUBSCRIBE, &on(a.addr.to_string()))).await;
    node.send(&packet(SUBSCRIBE, &on(b.addr.to_string()))).await;
    assert_eq!(
        ack(&notify).await,
        format!("[subscription ack] alpha.test => new node: {}", b.addr)
    );
}

#[tokio::test]
async fn broken_oversized_and_foreign_datagrams_are_refused_and_counted() {
    let a = FakeNode::start("a", Behaviour::Echo).await;
    let router = start("").await;
    let node = Node::new(&router).await;
    let addr = a.addr.to_string();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("malformed", b"\xe0\xff\x00\x00garbage".to_vec()),
        ("malformed", vec![224]),
        ("oversize", {
            let big = "x".repeat(5000);
            packet(
                SUBSCRIBE,
                &with(announce("alpha.test", &addr), "padding", &big),
            )
        }),
        ("not_subscription", get("alpha.test", "/")),
        (
            "missing_var",
            packet(SUBSCRIBE, &[("key", b"alpha.test".to_vec())]),
        ),
        (
            "bad_number",
            packet(
                SUBSCRIBE,
                &with(announce("alpha.test", &addr), "weight", "heavy"),
            ),
        ),
        (
            "bad_key",
            packet(SUBSCRIBE, &announce("*.wild.test", &addr)),
        ),
        (
            "bad_address",
            packet(SUBSCRIBE, &announce("alpha.test", "@abstract")),
        ),
    ];
    for (outcome, datagram) in cases {
        let before = counted(&router, outcome).await;
        node.send(&datagram).await;
        wait_counted(&router, outcome, before).await;
    }
    assert!(router.cluster().pool("alpha.test").is_none());
    node.send(&packet(SUBSCRIBE, &announce("alpha.test", &addr)))
        .await;
    wait_served_by(&router, "alpha.test", "a").await;
}

#[tokio::test]
async fn a_flood_of_new_keys_is_bounded_counted_and_freed_when_the_nodes_go_quiet() {
    let alive = FakeNode::start("alive", Behaviour::Echo).await;
    let router = start_router(&format!(
        "default_pool = \"\"\n[pools.alive]\nnodes = [\"{}\"]\n[pools.web]\n[[routes]]\nhost = \"alive.test\"\npool = \"alive\"\n[[routes]]\nhost = \"web.test\"\npool = \"web\"\n[subscription]\nlisten = [\"127.0.0.1:0\"]\ntolerance = \"1s\"\nmax_pools = 5\nmax_nodes = 8\n",
        alive.addr
    ))
    .await;
    let node = Node::new(&router).await;
    let (pools_full, nodes_full) = (
        counted(&router, "max_pools").await,
        counted(&router, "max_nodes").await,
    );
    let flood = |i: u16| {
        packet(
            SUBSCRIBE,
            &announce(
                &format!("flood-{i}.test"),
                &format!("127.0.0.1:{}", 20000 + i),
            ),
        )
    };
    // In batches, each waited for, so the kernel's socket buffer never overflows and drops some.
    for i in 0..5 {
        node.send(&flood(i)).await;
    }
    let d = Deadline::new("the first five keys to get pools");
    while router.cluster().dynamic_route_count() < 5 {
        d.tick().await;
    }
    for batch in 0..10u16 {
        for i in 0..25 {
            node.send(&flood(5 + batch * 25 + i)).await;
        }
        let refused = pools_full + f64::from((batch + 1) * 25);
        let d = Deadline::new("a batch of the flood refused");
        while counted(&router, "max_pools").await < refused {
            d.tick().await;
        }
    }
    for i in 0..20 {
        node.send(&packet(
            SUBSCRIBE,
            &announce("web.test", &format!("127.0.0.2:{}", 20000 + i)),
        ))
        .await;
    }
    let d = Deadline::new("nodes over max_nodes refused");
    while counted(&router, "max_nodes").await < nodes_full + 17.0 {
        d.tick().await;
    }
    assert_eq!(
        router.cluster().dynamic_route_count(),
        5,
        "at most max_pools pools made from keys"
    );
    let subscribed: usize = router
        .cluster()
        .pools()
        .iter()
        .map(|p| {
            p.snapshot()
                .nodes
                .iter()
                .filter(|n| n.source() == Source::Subscribed)
                .count()
        })
        .sum();
    assert_eq!(subscribed, 8, "at most max_nodes subscribed nodes");
    assert_eq!(pool_nodes(&router, "web").len(), 3);
    let r = send(&router.local_addrs()[0], &get("alive.test", "/"), b"").await;
    assert_eq!(node_of(&r), "alive", "the router keeps serving");

    // The flood stops; its nodes expire, their pools go, and a new key gets in again.
    let d = Deadline::new("the flood's pools to go");
    while router.cluster().dynamic_route_count() > 0 {
        d.tick().await;
    }
    node.send(&packet(
        SUBSCRIBE,
        &announce("late.test", &alive.addr.to_string()),
    ))
    .await;
    wait_served_by(&router, "late.test", "alive").await;
}

#[tokio::test]
async fn subscriptions_arrive_over_a_unix_datagram_socket_too() {
    let a = FakeNode::start("a", Behaviour::Echo).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("subscribe.sock");
    let router = start_router(&format!(
        "default_pool = \"\"\n[subscription]\nlisten = [\"unix:{}\"]\n",
        path.display()
    ))
    .await;
    assert_eq!(
        router.subscription_addrs(),
        [format!("unix:{}", path.display())]
    );
    let sender = UnixDatagram::unbound().unwrap();
    sender
        .send_to(
            &packet(SUBSCRIBE, &announce("alpha.test", &a.addr.to_string())),
            &path,
        )
        .await
        .unwrap();
    wait_served_by(&router, "alpha.test", "a").await;
    router.shutdown().await;
    let d = Deadline::new("the socket file removed on shutdown");
    while Path::new(&path).exists() {
        d.tick().await;
    }
}

#[tokio::test]
async fn senders_and_addresses_outside_the_allowed_networks_are_refused() {
    let a = FakeNode::start("a", Behaviour::Echo).await;
    let router = start("allowed_networks = [\"127.0.0.0/8\"]\n").await;
    let node = Node::new(&router).await;
    let before = counted(&router, "address_not_allowed").await;
    node.send(&packet(SUBSCRIBE, &announce("alpha.test", "10.1.2.3:3031")))
        .await;
    wait_counted(&router, "address_not_allowed", before).await;
    node.send(&packet(
        SUBSCRIBE,
        &announce("alpha.test", &a.addr.to_string()),
    ))
    .await;
    wait_served_by(&router, "alpha.test", "a").await;
    assert_eq!(pool_nodes(&router, "alpha.test"), [a.addr.to_string()]);

    let closed = start("allowed_networks = [\"10.0.0.0/8\"]\n").await;
    let node = Node::new(&closed).await;
    let before = counted(&closed, "sender_not_allowed").await;
    node.send(&packet(SUBSCRIBE, &announce("alpha.test", "10.1.2.3:3031")))
        .await;
    wait_counted(&closed, "sender_not_allowed", before).await;
    assert!(closed.cluster().pool("alpha.test").is_none());
}

// Signed subscriptions against an attacker who captures genuine datagrams and sends them again,
// altered where the signature does not reach, or from another host.

const UWSGI_SIGNED_SUBSCRIBE: &[u8] = include_bytes!("fixtures/uwsgi-subscribe-signed.bin");
const UWSGI_SIGNED_UNSUBSCRIBE: &[u8] = include_bytes!("fixtures/uwsgi-unsubscribe-signed.bin");

/// A key directory trusting the test key for each of `keys`, and for `sync.test` ([`sync`]).
fn key_dir(keys: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for key in keys.iter().chain(&["sync.test"]) {
        std::fs::copy(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/subscription-test-key.pub.pem"
            ),
            dir.path().join(format!("{key}.pem")),
        )
        .unwrap();
    }
    dir
}

/// What the uWSGI node of a captured fixture sends now for `address`: the fixture's vars, in
/// uWSGI's order and with its command, the address and time replaced, signed again with the
/// node's key (the fixture's own time is long out of any replay window).
fn as_uwsgi_sends(fixture: &[u8], address: &str, unix: u64) -> Vec<u8> {
    let (header, vars, _) = uwsgi_router::protocol::parse_packet(fixture, 65535).unwrap();
    let vars: Vec<(&'static str, Vec<u8>)> = vars
        .iter()
        .filter_map(|(name, value)| {
            let name: &'static str = match name {
                b"key" => "key",
                b"address" => "address",
                b"modifier1" => "modifier1",
                b"modifier2" => "modifier2",
                b"cores" => "cores",
                b"load" => "load",
                b"weight" => "weight",
                b"unix" => "unix",
                // `sign` is made again; `notify` names a socket of the capturing host.
                _ => return None,
            };
            Some((name, value.to_vec()))
        })
        .collect();
    signed(
        header.modifier2,
        with(vars, "address", address),
        &test_key(),
        unix,
    )
}

/// The datagram with its command (modifier2, outside the signature) set to `action`.
fn with_command(datagram: &[u8], action: u8) -> Vec<u8> {
    let mut altered = datagram.to_vec();
    altered[3] = action;
    altered
}

async fn wait_gone(router: &Daemon, id: &str) {
    let d = Deadline::new(format!("{id} to leave"));
    while router.cluster().find(id).is_some() {
        d.tick().await;
    }
}

#[tokio::test]
async fn flipping_the_command_of_a_captured_signed_packet_neither_removes_nor_restores_a_node() {
    let a = FakeNode::start("a", Behaviour::Echo).await;
    let keys = key_dir(&["signed.example.com"]);
    let router = start(&format!("key_dir = \"{}\"\n", keys.path().display())).await;
    let node = Node::new(&router).await;
    let attacker = Node::from_host(&router, "127.0.0.9").await;
    let id = format!("{}@signed.example.com", a.addr);
    let now = unix_now();
    let subscribe = as_uwsgi_sends(UWSGI_SIGNED_SUBSCRIBE, &a.addr.to_string(), now);
    node.send(&subscribe).await;
    wait_served_by(&router, "signed.example.com", "a").await;

    // The same datagram again in the same second is a duplicate, and renews.
    let renewed = counted(&router, "renewed").await;
    attacker.send(&subscribe).await;
    wait_counted(&router, "renewed", renewed).await;

    // The captured subscribe turned into an unsubscribe (modifier2 1, or any other non-zero
    // value, as uWSGI reads it): refused, the node keeps its traffic.
    for command in [UNSUBSCRIBE, 7] {
        let replayed = counted(&router, "replayed").await;
        attacker.send(&with_command(&subscribe, command)).await;
        wait_counted(&router, "replayed", replayed).await;
    }
    sync(&router, &attacker, true).await;
    assert_eq!(
        pool_nodes(&router, "signed.example.com"),
        [a.addr.to_string()]
    );
    let addr = &router.local_addrs()[0];
    for _ in 0..10 {
        let r = send(addr, &get("signed.example.com", "/"), b"").await;
        assert_eq!(
            (r.status, node_of(&r)),
            (200, "a".to_owned()),
            "{}",
            r.text()
        );
    }

    // The node stops: uWSGI dates its unsubscribe a second ahead, and it takes the node out.
    let unsubscribe = as_uwsgi_sends(UWSGI_SIGNED_UNSUBSCRIBE, &a.addr.to_string(), now + 1);
    node.send(&unsubscribe).await;
    wait_gone(&router, &id).await;

    // The captured unsubscribe turned into a subscribe does not put the stopped node back,
    // nor does the older subscribe.
    for replay in [with_command(&unsubscribe, SUBSCRIBE), subscribe.clone()] {
        let replayed = counted(&router, "replayed").await;
        attacker.send(&replay).await;
        wait_counted(&router, "replayed", replayed).await;
        sync(&router, &attacker, true).await;
        assert!(
            router.cluster().find(&id).is_none(),
            "the stopped node is back"
        );
    }
    let r = send(addr, &get("signed.example.com", "/"), b"").await;
    assert_eq!(r.status, 503, "{}", r.text());

    // The node itself comes back with a newer time.
    node.send(&as_uwsgi_sends(
        UWSGI_SIGNED_SUBSCRIBE,
        &a.addr.to_string(),
        now + 2,
    ))
    .await;
    wait_served_by(&router, "signed.example.com", "a").await;
}

#[tokio::test]
async fn a_captured_signed_relative_address_replayed_from_another_host_adds_nothing() {
    let a = FakeNode::start("a", Behaviour::Echo).await;
    // The attacker's host listens on the same port as the node, on its own address.
    let thief_addr = std::net::SocketAddr::from(([127, 0, 0, 2], a.addr.port()));
    let thief = FakeNode::start_at("thief", thief_addr, Behaviour::Echo).await;
    let keys = key_dir(&["signed.example.com"]);
    let router = start(&format!("key_dir = \"{}\"\n", keys.path().display())).await;
    let node = Node::new(&router).await;
    let elsewhere = Node::from_host(&router, "127.0.0.2").await;
    let now = unix_now();
    let port = a.addr.port();
    // What uWSGI announces when it listens on every interface (`--socket :PORT`, `0.0.0.0:PORT`,
    // `[::]:PORT`).
    let relative = [
        format!(":{port}"),
        format!("0.0.0.0:{port}"),
        format!("[::]:{port}"),
    ];
    let before = counted(&router, "relative_address").await;
    for address in &relative {
        let captured = as_uwsgi_sends(UWSGI_SIGNED_SUBSCRIBE, address, now);
        node.send(&captured).await;
        elsewhere.send(&captured).await;
    }
    // The node's own address is what a signature can vouch for.
    node.send(&as_uwsgi_sends(
        UWSGI_SIGNED_SUBSCRIBE,
        &a.addr.to_string(),
        now + 1,
    ))
    .await;
    wait_served_by(&router, "signed.example.com", "a").await;
    assert_eq!(
        pool_nodes(&router, "signed.example.com"),
        [a.addr.to_string()],
        "a replayed relative address added the sender's host"
    );
    assert!(counted(&router, "relative_address").await >= before + 6.0);
    let addr = &router.local_addrs()[0];
    for _ in 0..20 {
        let r = send(addr, &get("signed.example.com", "/"), b"").await;
        assert_eq!(node_of(&r), "a");
    }
    assert_eq!(thief.served(), 0, "the thief's host never gets a request");
}

#[tokio::test]
async fn relative_addresses_resolve_only_from_the_hosts_allowed_for_their_key() {
    let a = FakeNode::start("a", Behaviour::Echo).await;
    let port = a.addr.port();
    let thief = FakeNode::start_at(
        "thief",
        std::net::SocketAddr::from(([127, 0, 0, 2], port)),
        Behaviour::Echo,
    )
    .await;
    let b = FakeNode::start_at(
        "b",
        std::net::SocketAddr::from(([127, 0, 0, 3], port)),
        Behaviour::Echo,
    )
    .await;
    let keys = key_dir(&["signed.example.com"]);
    let router = start(&format!(
        "key_dir = \"{}\"\n[subscription.relative_address_networks]\n\"signed.example.com\" = [\"127.0.0.1/32\", \"127.0.0.3/32\"]\n",
        keys.path().display()
    ))
    .await;
    let host_a = Node::new(&router).await;
    let host_b = Node::from_host(&router, "127.0.0.3").await;
    let thief_host = Node::from_host(&router, "127.0.0.2").await;
    let now = unix_now();
    let relative = format!(":{port}");
    // Host a announces first, with the newer time; host b's announcement, made a second
    // earlier, is not a replay of a's: each node has its own replay state.
    let from_a = as_uwsgi_sends(UWSGI_SIGNED_SUBSCRIBE, &relative, now + 1);
    host_a.send(&from_a).await;
    host_b
        .send(&as_uwsgi_sends(UWSGI_SIGNED_SUBSCRIBE, &relative, now))
        .await;
    let d = Deadline::new("both allowed hosts in the pool");
    while pool_nodes(&router, "signed.example.com").len() < 2 {
        d.tick().await;
    }
    let before = counted(&router, "relative_address").await;
    thief_host.send(&from_a).await;
    wait_counted(&router, "relative_address", before).await;
    sync(&router, &thief_host, true).await;
    let mut nodes = pool_nodes(&router, "signed.example.com");
    nodes.sort();
    assert_eq!(nodes, [a.addr.to_string(), b.addr.to_string()]);
    let addr = &router.local_addrs()[0];
    for _ in 0..20 {
        let r = send(addr, &get("signed.example.com", "/"), b"").await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(thief.served(), 0);

    // Host b's unsubscribe replayed from host a's address removes nothing of a's: it resolves to
    // a's node, whose last packet is newer.
    let unsubscribe_b = as_uwsgi_sends(UWSGI_SIGNED_UNSUBSCRIBE, &relative, now + 1);
    let replayed = counted(&router, "replayed").await;
    host_a.send(&unsubscribe_b).await;
    wait_counted(&router, "replayed", replayed).await;
    sync(&router, &host_a, true).await;
    assert!(router
        .cluster()
        .find(&format!("{}@signed.example.com", a.addr))
        .is_some());
    host_b.send(&unsubscribe_b).await;
    wait_gone(&router, &format!("{}@signed.example.com", b.addr)).await;
    assert_eq!(
        pool_nodes(&router, "signed.example.com"),
        [a.addr.to_string()]
    );
}

// Addresses and notify paths as an attacker writes them.

#[tokio::test]
async fn junk_addresses_are_refused_counted_and_never_join() {
    let a = FakeNode::start("a", Behaviour::Echo).await;
    let router = start("").await;
    let node = Node::new(&router).await;
    let long_label = "a".repeat(64);
    let long_name = format!("{}.test:80", ["abcdefghij"; 25].join("."));
    let long_path = format!("/tmp/{}", "p".repeat(200));
    let junk: Vec<Vec<u8>> = vec![
        b"/tmp/node.sock\nrouted=evil".to_vec(),
        format!("{}\r\n", a.addr).into_bytes(),
        format!("{}\n", a.addr).into_bytes(),
        b"unix:/tmp/a\x1b[31m.sock".to_vec(),
        b"/tmp/a\x00.sock".to_vec(),
        b"/tmp/\xff\xfe.sock".to_vec(),
        b"/tmp/\xc2\x85next-line".to_vec(),
        long_path.into_bytes(),
        b"relative/node.sock".to_vec(),
        b"bad_host!:80".to_vec(),
        b"-leading.test:80".to_vec(),
        b"trailing-.test:80".to_vec(),
        b"a..b.test:80".to_vec(),
        format!("{long_label}.test:80").into_bytes(),
        long_name.into_bytes(),
        b"10.0.0.999:80".to_vec(),
        b"app.test:0".to_vec(),
        b"app.test:3031 ".to_vec(),
        b" app.test:3031".to_vec(),
        b"[::1]:80\t".to_vec(),
        b"[fe80::1%eth0\n]:80".to_vec(),
    ];
    let rejections = scrape(&router)
        .await
        .get(
            "uwsgi_router_registration_rejections_total",
            &[("reason", "bad_address")],
        )
        .unwrap_or(0.0);
    for address in &junk {
        let mut vars = announce("alpha.test", "x");
        vars[1].1.clone_from(address);
        let before = counted(&router, "bad_address").await;
        node.send(&packet(SUBSCRIBE, &vars)).await;
        let d = Deadline::new(format!(
            "{:?} refused as bad_address",
            String::from_utf8_lossy(address)
        ));
        while counted(&router, "bad_address").await <= before {
            d.tick().await;
        }
    }
    sync(&router, &node, false).await;
    assert!(
        router.cluster().pool("alpha.test").is_none(),
        "a junk address joined: {:?}",
        pool_nodes(&router, "alpha.test")
    );
    // Counted as rejected registrations too, right after the packet counter (the counters are
    // the process's: other tests may add to them).
    let expected = rejections + junk.len() as f64;
    let d = Deadline::new("every junk address counted as a rejected registration");
    loop {
        let after = scrape(&router)
            .await
            .get(
                "uwsgi_router_registration_rejections_total",
                &[("reason", "bad_address")],
            )
            .unwrap_or(0.0);
        if after >= expected {
            break;
        }
        d.tick().await;
    }
    // Every well-formed kind still joins.
    for (key, address) in [
        ("alpha.test", a.addr.to_string()),
        ("name.test", "app-1.internal.test:3031".to_owned()),
        ("six.test", "[::1]:3031".to_owned()),
        ("path.test", "/run/uwsgi/app-1.sock".to_owned()),
    ] {
        let joined = counted(&router, "joined").await;
        node.send(&packet(SUBSCRIBE, &announce(key, &address)))
            .await;
        wait_counted(&router, "joined", joined).await;
    }
    wait_served_by(&router, "alpha.test", "a").await;
}

/// A UNIX datagram socket a node would name in `notify`, and whether anything reached it.
struct NotifySocket {
    path: std::path::PathBuf,
    socket: UnixDatagram,
}

impl NotifySocket {
    fn bind(path: std::path::PathBuf) -> Self {
        let socket = UnixDatagram::bind(&path).unwrap();
        Self { path, socket }
    }

    fn name(&self) -> &str {
        self.path.to_str().unwrap()
    }

    fn received_nothing(&self) -> bool {
        let mut buf = [0u8; 512];
        matches!(self.socket.try_recv(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }
}

/// Announces a new node for `key` that names `notify`, and waits until it has joined (so every
/// datagram sent before it has been handled, acknowledgements included).
async fn join_naming(router: &Daemon, node: &Node, key: &str, address: &str, notify: &str) {
    node.send(&packet(
        SUBSCRIBE,
        &with(announce(key, address), "notify", notify),
    ))
    .await;
    let id = format!("{address}@{key}");
    let d = Deadline::new(format!("{id} to join"));
    while router.cluster().find(&id).is_none() {
        d.tick().await;
    }
}

#[tokio::test]
async fn without_notify_dir_no_socket_a_packet_names_gets_an_acknowledgement() {
    let router = start("").await;
    let node = Node::new(&router).await;
    let dir = tempfile::tempdir().unwrap();
    let victim = NotifySocket::bind(dir.path().join("some-service.sock"));
    join_naming(
        &router,
        &node,
        "alpha.test",
        "127.0.0.1:20001",
        victim.name(),
    )
    .await;
    // Datagrams are handled in order: once a later one is counted, an ack would be there.
    join_naming(
        &router,
        &node,
        "beta.test",
        "127.0.0.1:20002",
        victim.name(),
    )
    .await;
    assert!(
        victim.received_nothing(),
        "an ack was written to a socket nobody allowed"
    );
    assert_eq!(pool_nodes(&router, "alpha.test"), ["127.0.0.1:20001"]);
}

#[tokio::test]
async fn acknowledgements_go_only_to_sockets_under_notify_dir() {
    let notify_dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let router = start(&format!(
        "notify_dir = \"{}\"\n",
        notify_dir.path().display()
    ))
    .await;
    let node = Node::new(&router).await;
    let victim = NotifySocket::bind(elsewhere.path().join("victim.sock"));
    let inside = NotifySocket::bind(notify_dir.path().join("node.sock"));
    let link = notify_dir.path().join("link.sock");
    std::os::unix::fs::symlink(&victim.path, &link).unwrap();
    let escape = format!(
        "{}/../{}/victim.sock",
        notify_dir.path().display(),
        elsewhere.path().file_name().unwrap().to_str().unwrap()
    );
    for (i, target) in [victim.name(), &escape, link.to_str().unwrap()]
        .into_iter()
        .enumerate()
    {
        join_naming(
            &router,
            &node,
            "alpha.test",
            &format!("127.0.0.1:{}", 20001 + i),
            target,
        )
        .await;
    }
    join_naming(
        &router,
        &node,
        "alpha.test",
        "127.0.0.1:20009",
        inside.name(),
    )
    .await;
    assert_eq!(
        ack(&inside.socket).await,
        "[subscription ack] alpha.test => new node: 127.0.0.1:20009"
    );
    assert!(
        victim.received_nothing(),
        "an ack left notify_dir (direct, through .. or a symlink)"
    );
    assert_eq!(
        pool_nodes(&router, "alpha.test").len(),
        4,
        "all four joined"
    );

    // A notify var no uWSGI would write is refused with its packet.
    for junk in [
        format!("{}\n", inside.name()),
        format!("{}/\x1b]0;x", notify_dir.path().display()),
        format!("{}/{}", notify_dir.path().display(), "n".repeat(200)),
    ] {
        let before = counted(&router, "bad_notify").await;
        node.send(&packet(
            SUBSCRIBE,
            &with(announce("beta.test", "127.0.0.1:20010"), "notify", &junk),
        ))
        .await;
        wait_counted(&router, "bad_notify", before).await;
    }
    assert!(router.cluster().pool("beta.test").is_none());
    assert!(inside.received_nothing());
}
