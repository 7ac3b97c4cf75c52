//! A pool's own traffic settings: `max_connections` per node with the queue behind it (bounded in
//! length and time, then 503), backup nodes used only while no primary is usable, and timeouts
//! that override `[timeouts]` for one pool.

mod support;

use std::time::Duration;

use support::scrape::scrape;
use support::*;
use tokio::time::Instant;

/// Pool `pool` (the default one) of one node at `max_connections = 1` that answers after
/// `delay`, behind a queue. Each test names its own pool: the metrics recorder is per process.
async fn limited(
    pool: &str,
    delay: Duration,
    queue: &str,
) -> (FakeNode, uwsgi_router::daemon::Daemon) {
    let node = FakeNode::start("a", Behaviour::Slow(delay)).await;
    let toml = format!(
        "default_pool = \"{pool}\"\n[pools.{pool}]\nnodes = [\"{}\"]\nmax_connections = 1\n\
         [pools.{pool}.queue]\n{queue}\n",
        node.addr
    );
    (node, start_router(&toml).await)
}

#[tokio::test]
async fn requests_beyond_max_connections_wait_their_turn_and_are_all_served() {
    let (node, router) = limited(
        "queued",
        Duration::from_millis(150),
        "size = 10\ntimeout = \"20s\"",
    )
    .await;
    let addr = router.local_addrs()[0].clone();
    let clients: Vec<_> = (0..5)
        .map(|_| {
            let addr = addr.clone();
            tokio::spawn(async move { send(&addr, &get("h", "/"), b"").await })
        })
        .collect();
    // While the node holds one, the others wait in the pool's queue, and the gauge shows them.
    let queued = wait::within(wait::STEP, async || {
        let waiting = scrape(&router)
            .await
            .get("uwsgi_router_queued_requests", &[("pool", "queued")])?;
        (waiting >= 1.0).then_some(waiting)
    })
    .await
    .expect("requests are seen waiting in the queue");
    assert!(
        queued <= 4.0,
        "at most the 4 not on the node wait: {queued}"
    );
    for c in clients {
        let r = c.await.unwrap();
        assert_eq!(r.status, 200, "a queued request is served: {}", r.text());
    }
    assert_eq!(node.served(), 5);
    assert_eq!(
        node.peak_connections(),
        1,
        "the node never had more than max_connections requests at once"
    );
    let s = scrape(&router).await;
    assert_eq!(
        s.get("uwsgi_router_queued_requests", &[("pool", "queued")]),
        Some(0.0),
        "the queue is empty again"
    );
    assert_eq!(
        s.sum("uwsgi_router_queue_refused_total", &[("pool", "queued")]),
        0.0
    );
}

#[tokio::test]
async fn a_full_queue_answers_503_at_once_and_a_queue_timeout_after_waiting() {
    let (node, router) = limited(
        "refusing",
        Duration::from_secs(3),
        "size = 1\ntimeout = \"400ms\"",
    )
    .await;
    let addr = router.local_addrs()[0].clone();
    let on_node = {
        let addr = addr.clone();
        tokio::spawn(async move { send(&addr, &get("h", "/"), b"").await })
    };
    node.wait_served(1).await;
    // The node is at its limit: this one waits in the queue, the only place there is...
    let started = Instant::now();
    let waiting = {
        let addr = addr.clone();
        tokio::spawn(async move { send(&addr, &get("h", "/"), b"").await })
    };
    wait::within(wait::STEP, async || {
        let s = scrape(&router).await;
        (s.get("uwsgi_router_queued_requests", &[("pool", "refusing")])? == 1.0).then_some(())
    })
    .await
    .expect("the second request waits in the queue");
    // ... so a third finds the queue full and is refused at once.
    let full = send(&addr, &get("h", "/"), b"").await;
    assert_eq!(full.status, 503, "{}", full.text());
    let timed_out = waiting.await.unwrap();
    assert_eq!(timed_out.status, 503, "{}", timed_out.text());
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "the queued request waited out queue.timeout first"
    );
    assert_eq!(node.served(), 1, "neither refused request reached the node");
    let s = scrape(&router).await;
    for reason in ["full", "timeout"] {
        assert_eq!(
            s.get(
                "uwsgi_router_queue_refused_total",
                &[("pool", "refusing"), ("reason", reason)]
            ),
            Some(1.0),
            "{reason}"
        );
    }
    assert_eq!(on_node.await.unwrap().status, 200);
}

#[tokio::test]
async fn a_queued_request_takes_the_place_a_finished_one_frees() {
    // The queue timeout is longer than one request: a waiting request is served, not refused.
    let (node, router) = limited(
        "handover",
        Duration::from_millis(300),
        "size = 5\ntimeout = \"10s\"",
    )
    .await;
    let addr = router.local_addrs()[0].clone();
    let first = {
        let addr = addr.clone();
        tokio::spawn(async move { send(&addr, &get("h", "/"), b"").await })
    };
    node.wait_served(1).await;
    let second = send(&addr, &get("h", "/"), b"").await;
    assert_eq!(second.status, 200, "{}", second.text());
    assert_eq!(first.await.unwrap().status, 200);
    assert_eq!(node.peak_connections(), 1);
}

#[tokio::test]
async fn backup_nodes_serve_only_while_no_primary_is_usable() {
    let primary = FakeNode::start("primary", Behaviour::Echo).await;
    let backup = FakeNode::start("backup", Behaviour::Echo).await;
    let primary_addr = primary.addr;
    let toml = format!(
        "[pools.default]\nnodes = [\"{}\", {{ address = \"{}\", backup = true }}]\n\
         [pools.default.ejection]\nconsecutive_failures = 1\nbase_time = \"300ms\"\nmax_time = \"300ms\"\n",
        primary.addr, backup.addr
    );
    let router = start_router(&toml).await;
    let addr = router.local_addrs()[0].clone();
    for _ in 0..10 {
        let r = send(&addr, &get("h", "/"), b"").await;
        assert_eq!(node_of(&r), "primary");
    }
    assert_eq!(
        backup.served(),
        0,
        "a backup gets nothing while the primary is up"
    );

    primary.stop();
    drop(primary);
    for i in 0..10 {
        let r = send(&addr, &get("h", "/"), b"").await;
        assert_eq!(
            r.status,
            200,
            "request {i} with the primary down: {}",
            r.text()
        );
        assert_eq!(node_of(&r), "backup");
    }

    // Back on its port: once its ejection ends, the primary takes the traffic again.
    let primary = FakeNode::start_at("primary", primary_addr, Behaviour::Echo).await;
    wait::within(wait::STEP, async || {
        let r = send(&addr, &get("h", "/"), b"").await;
        (node_of(&r) == "primary").then_some(())
    })
    .await
    .expect("the primary serves again after its ejection");
    let before = backup.served();
    for _ in 0..10 {
        assert_eq!(node_of(&send(&addr, &get("h", "/"), b"").await), "primary");
    }
    assert_eq!(backup.served(), before);
    assert!(primary.served() >= 10);
}

#[tokio::test]
async fn a_pool_s_timeouts_override_the_global_ones_for_it_alone() {
    let hang_fast = FakeNode::start("fast", Behaviour::Hang).await;
    let slow = FakeNode::start("slow", Behaviour::Slow(Duration::from_millis(2500))).await;
    let toml = format!(
        "default_pool = \"patient\"\n[timeouts]\nfirst_byte = \"2s\"\n\
         [pools.impatient]\nnodes = [\"{}\"]\n[pools.impatient.timeouts]\nfirst_byte = \"100ms\"\n\
         [pools.patient]\nnodes = [\"{}\"]\n[pools.patient.timeouts]\nfirst_byte = \"20s\"\n\
         [[routes]]\nhost = \"impatient.test\"\npool = \"impatient\"\n",
        hang_fast.addr, slow.addr
    );
    let router = start_router(&toml).await;
    let addr = router.local_addrs()[0].clone();
    // 2.5 s is past the global first_byte, but this pool waits 20 s.
    let r = send(&addr, &get("patient.test", "/"), b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(node_of(&r), "slow");
    // The other pool gives up after its own 100 ms.
    let started = Instant::now();
    let r = send(&addr, &get("impatient.test", "/"), b"").await;
    assert_eq!(r.status, 504, "{}", r.text());
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "the pool's first_byte, not the global one, cut it: {:?}",
        started.elapsed()
    );
}
