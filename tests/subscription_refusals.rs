//! Subscription datagrams that must not get in: broken, oversized and foreign ones, floods of new
//! keys, senders and addresses outside the allowed networks and junk addresses are refused,
//! counted and bounded, and the router keeps serving.

mod subscription_support;
mod support;

use subscription_support::*;
use support::scrape::scrape;
use support::*;
use uwsgi_router::node::Source;

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
    wait_until("the first five keys to get pools", || {
        router.cluster().dynamic_route_count() >= 5
    })
    .await;
    for batch in 0..10u16 {
        for i in 0..25 {
            node.send(&flood(5 + batch * 25 + i)).await;
        }
        let refused = pools_full + f64::from((batch + 1) * 25);
        wait_for("a batch of the flood refused", STEP, async || {
            (counted(&router, "max_pools").await >= refused).then_some(())
        })
        .await;
    }
    for i in 0..20 {
        node.send(&packet(
            SUBSCRIBE,
            &announce("web.test", &format!("127.0.0.2:{}", 20000 + i)),
        ))
        .await;
    }
    wait_for("nodes over max_nodes refused", STEP, async || {
        (counted(&router, "max_nodes").await >= nodes_full + 17.0).then_some(())
    })
    .await;
    // Joins reach the pools' snapshots within one membership window.
    for pool in router.cluster().pools() {
        pool.published().await;
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
    wait_until("the flood's pools to go", || {
        router.cluster().dynamic_route_count() == 0
    })
    .await;
    node.send(&packet(
        SUBSCRIBE,
        &announce("late.test", &alive.addr.to_string()),
    ))
    .await;
    wait_served_by(&router, "late.test", "alive").await;
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
        let what = format!(
            "{:?} refused as bad_address",
            String::from_utf8_lossy(address)
        );
        wait_for(what, STEP, async || {
            (counted(&router, "bad_address").await > before).then_some(())
        })
        .await;
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
    let what = "every junk address counted as a rejected registration";
    wait_for(what, STEP, async || {
        let after = scrape(&router)
            .await
            .get(
                "uwsgi_router_registration_rejections_total",
                &[("reason", "bad_address")],
            )
            .unwrap_or(0.0);
        (after >= expected).then_some(())
    })
    .await;
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
