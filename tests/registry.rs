//! Nodes join over the gRPC Registry: they take traffic, their reports steer it, their leases
//! expire, they drain or leave without losing requests, and their sessions end with the router.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use support::registry_client::{idle, NodeSession};
use support::*;
use tokio::time::Instant;
use uwsgi_router::api::{node_message::Msg, router_message::Msg as R, Drain, Leave};

const POOL: &str = "[pools.default]\nslow_start = \"0s\"\n";

#[tokio::test]
async fn a_registered_node_joins_and_takes_traffic() {
    let node = FakeNode::start("a", Behaviour::Echo).await;
    let router = start_router(POOL).await;
    let addr = router.local_addrs()[0].clone();
    assert_eq!(
        send(&addr, &get("h", "/"), b"").await.status,
        503,
        "no node yet"
    );

    let (_s, first) = NodeSession::join(router.control_addr().unwrap(), "a", node.addr).await;
    let R::Accepted(acc) = first else {
        panic!("expected Accepted, got {first:?}")
    };
    assert_eq!(
        acc.lease_ms, 1000,
        "three 200 ms intervals, bounded to at least 1 s"
    );
    for _ in 0..10 {
        let r = send(&addr, &get("h", "/"), b"").await;
        assert_eq!(node_of(&r), "a");
    }
}

#[tokio::test]
async fn reports_steer_traffic_away_from_busy_nodes() {
    let a = FakeNode::start("a", Behaviour::Echo).await;
    let b = FakeNode::start("b", Behaviour::Echo).await;
    let router = start_router(POOL).await;
    let control = router.control_addr().unwrap();
    let (sa, _) = NodeSession::join(control, "a", a.addr).await;
    let (sb, _) = NodeSession::join(control, "b", b.addr).await;
    let load_a = idle();
    let load_b = std::sync::Arc::new(std::sync::Mutex::new((2, 0, 40))); // every worker busy, 40 waiting
    let _ra = sa.keep_reporting(load_a);
    let _rb = sb.keep_reporting(load_b.clone());
    let (_, b_node) = router.cluster().find("b").unwrap();
    wait_until("b's report is applied", || {
        b_node.reported_load().map_or(0, |l| l.queue) == 40
    })
    .await;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for _ in 0..100 {
        *seen
            .entry(node_of(
                &send(&router.local_addrs()[0], &get("h", "/"), b"").await,
            ))
            .or_default() += 1;
    }
    assert!(
        seen.get("b").copied().unwrap_or(0) <= 5,
        "the busy node gets far fewer requests: {seen:?}"
    );

    // b recovers: once its reports say so, it takes its share of concurrent load again.
    *load_b.lock().unwrap() = (0, 2, 0);
    wait_until("b's recovery is applied", || {
        b_node.reported_load().map_or(0, |l| l.queue) == 0
    })
    .await;
    a.set_behaviour(Behaviour::Slow(Duration::from_millis(20)));
    b.set_behaviour(Behaviour::Slow(Duration::from_millis(20)));
    let b_before = b.served();
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let addr = router.local_addrs()[0].clone();
            tokio::spawn(async move {
                for _ in 0..10 {
                    assert_eq!(send(&addr, &get("h", "/"), b"").await.status, 200);
                }
            })
        })
        .collect();
    for c in clients {
        c.await.unwrap();
    }
    assert!(
        b.served() - b_before >= 10,
        "b takes traffic again: {} of 80",
        b.served() - b_before
    );
}

#[tokio::test]
async fn a_silent_node_leaves_after_its_lease_and_can_rejoin() {
    let node = FakeNode::start("a", Behaviour::Echo).await;
    let router = start_router(POOL).await;
    let control = router.control_addr().unwrap();
    let (mut s, _) = NodeSession::join(control, "a", node.addr).await;
    s.report(0, 2, 0).await;
    // Reports stop (the stream stays open): the lease (1 s) runs out and the router says so.
    let started = Instant::now();
    let msg = s.next().await;
    assert!(
        matches!(&msg, Some(R::Removed(r)) if r.reason == "lease expired"),
        "{msg:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "not before the lease ran out"
    );
    assert!(router.cluster().find("a").is_none());
    assert_eq!(
        send(&router.local_addrs()[0], &get("h", "/"), b"")
            .await
            .status,
        503
    );

    // Stream broken, node re-announces on a new session: back in the pool.
    drop(s);
    let (_s, first) = NodeSession::join(control, "a", node.addr).await;
    assert!(matches!(first, R::Accepted(_)));
    assert_eq!(
        send(&router.local_addrs()[0], &get("h", "/"), b"")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_broken_stream_keeps_the_node_until_its_lease_runs_out() {
    let node = FakeNode::start("a", Behaviour::Echo).await;
    let router = start_router(POOL).await;
    let (s, _) = NodeSession::join(router.control_addr().unwrap(), "a", node.addr).await;
    s.report(0, 2, 0).await;
    drop(s);
    // A blip must not cost traffic: the node still serves right after the stream broke...
    assert_eq!(
        node_of(&send(&router.local_addrs()[0], &get("h", "/"), b"").await),
        "a"
    );
    // ... and leaves once its lease runs out.
    wait_until("the lease expires", || router.cluster().find("a").is_none()).await;
}

#[tokio::test]
async fn drain_under_load_loses_no_request() {
    let a = FakeNode::start("a", Behaviour::Slow(Duration::from_millis(300))).await;
    let b = FakeNode::start("b", Behaviour::Echo).await;
    let router = start_router(POOL).await;
    let control = router.control_addr().unwrap();
    let (mut sa, _) = NodeSession::join(control, "a", a.addr).await;
    let (_sb, _) = NodeSession::join(control, "b", b.addr).await;
    let addr = router.local_addrs()[0].clone();
    let load: Vec<_> = (0..40)
        .map(|_| {
            let addr = addr.clone();
            tokio::spawn(async move { send(&addr, &get("h", "/"), b"").await.status })
        })
        .collect();
    wait_until("a has requests in flight", || a.served() > 0).await;
    sa.send(Msg::Drain(Drain {
        reason: "deploy".into(),
    }))
    .await;
    let msg = sa.next().await;
    assert!(matches!(msg, Some(R::Drained(_))), "{msg:?}");
    let served_when_drained = a.served();
    for r in load {
        assert_eq!(r.await.unwrap(), 200, "no request may fail during a drain");
    }
    for _ in 0..10 {
        assert_eq!(node_of(&send(&addr, &get("h", "/"), b"").await), "b");
    }
    assert_eq!(
        a.served(),
        served_when_drained,
        "a drained node gets no new request"
    );
    wait_until("the drained node leaves", || {
        router.cluster().find("a").is_none()
    })
    .await;
}

#[tokio::test]
async fn leave_removes_the_node_at_once() {
    let node = FakeNode::start("a", Behaviour::Echo).await;
    let router = start_router(POOL).await;
    let (mut s, _) = NodeSession::join(router.control_addr().unwrap(), "a", node.addr).await;
    s.send(Msg::Leave(Leave {
        reason: "shutdown".into(),
    }))
    .await;
    assert_eq!(s.next().await, None, "the router ends the stream");
    assert!(router.cluster().find("a").is_none());
}

#[tokio::test]
async fn sessions_end_when_the_router_stops() {
    let node = FakeNode::start("a", Behaviour::Echo).await;
    let router = start_router(POOL).await;
    let (mut s, _) = NodeSession::join(router.control_addr().unwrap(), "a", node.addr).await;
    let _reports = s.keep_reporting(idle());
    let started = Instant::now();
    router.shutdown().await;
    assert_eq!(
        s.next().await,
        None,
        "the agent learns at once that the router went away"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}
