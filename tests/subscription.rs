//! uWSGI subscriptions, in process: datagrams as uWSGI's `--subscribe-to` sends them (over UDP or
//! a UNIX datagram socket) put nodes in the pool their key routes to (or in one made for the key),
//! renew their lease, take them out on unsubscribe or silence, feed their load to the balancer
//! and give their requests the announced modifiers.

mod subscription_support;
mod support;

use std::path::Path;
use std::time::Duration;

use subscription_support::*;
use support::*;
use tokio::net::UnixDatagram;
use tokio::time::Instant;
use uwsgi_router::node::Source;

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
    wait_until("both nodes in alpha.test", || {
        pool_nodes(&router, "alpha.test").len() >= 2
    })
    .await;
    // Routed (least-load then picks whichever node is cheaper).
    wait_for("alpha.test routed", STEP, async || {
        let r = send(&router.local_addrs()[0], &get("alpha.test", "/"), b"").await;
        (r.status == 200).then_some(())
    })
    .await;

    node.send(&packet(UNSUBSCRIBE, &va)).await;
    wait_until("a out of alpha.test", || {
        pool_nodes(&router, "alpha.test") == [b.addr.to_string()]
    })
    .await;
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
    wait_for("the emptied pool and its route dropped", STEP, async || {
        let r = send(addr, &get("alpha.test", "/"), b"").await;
        let dropped = router.cluster().pool("alpha.test").is_none();
        (dropped && r.text().contains("no pool for host")).then_some(())
    })
    .await;
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
    wait_for("the silent node to leave", STEP, async || {
        if pool_nodes(&router, "alpha.test").is_empty() {
            return Some(());
        }
        // The stimulus: beta.test's node renews about every 100 ms meanwhile.
        node.send(&packet(SUBSCRIBE, &vb)).await;
        tokio::time::sleep(Duration::from_millis(90)).await;
        None
    })
    .await;
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
    let id = format!("{}@alpha.test", a.addr);
    let n = wait_for("a joined", STEP, async || {
        router.cluster().find(&id).map(|(_, n)| n)
    })
    .await;
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
    wait_until("the socket file removed on shutdown", || {
        !Path::new(&path).exists()
    })
    .await;
}
