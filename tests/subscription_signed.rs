//! Signed uWSGI subscriptions: with `key_dir`, only datagrams signed with the key's private key
//! get a node in, and genuine datagrams captured and sent again, altered where the signature does
//! not reach or from another host, add or remove nothing.

mod subscription_support;
mod support;

use subscription_support::*;
use support::*;

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
    let id = format!("{}@signed.test", a.addr);
    wait_until("a signed unsubscribe to take a out", || {
        router.cluster().find(&id).is_none()
    })
    .await;
}

// Signed subscriptions against an attacker who captures genuine datagrams and sends them again,
// altered where the signature does not reach, or from another host.

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
    wait_until("both allowed hosts in the pool", || {
        pool_nodes(&router, "signed.example.com").len() >= 2
    })
    .await;
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
