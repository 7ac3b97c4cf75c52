//! `routerctl drain --wait`: under load it loses no request, and it gives up at its timeout with
//! exit code 1.

mod routerctl_support;
mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use routerctl_support::*;
use support::*;
use uwsgi_router::node::AdminState;

#[tokio::test]
async fn drain_wait_under_load_loses_no_request() {
    let slow = FakeNode::start("slow", Behaviour::Slow(Duration::from_millis(150))).await;
    let fast = FakeNode::start("fast", Behaviour::Echo).await;
    let router =
        start_router("[pools.default]\nalgorithm = \"round-robin\"\nslow_start = \"0s\"\n").await;
    let _s = register(&router, "slow-1", slow.addr).await;
    let _f = register(&router, "fast-1", fast.addr).await;
    let addr = router.local_addrs()[0].clone();

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (addr, stop, done) = (addr.clone(), stop.clone(), done.clone());
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                while !stop.load(SeqCst) {
                    statuses.push(send(&addr, &get("h", "/"), b"").await.status);
                    done.fetch_add(1, SeqCst);
                }
                statuses
            })
        })
        .collect();
    let (_, slow_node) = router.cluster().find("slow-1").unwrap();
    wait_until("the slow node has requests in flight", || {
        slow_node.in_flight() > 0
    })
    .await;

    let run = routerctl(
        &[control_url(&router)],
        &["drain", "slow", "--wait", "--timeout", "15s"],
    )
    .await;
    let out = run.ok();
    assert!(out.contains("ok  slow-1 draining"), "{out}");
    assert!(
        out.lines()
            .last()
            .unwrap()
            .ends_with("ok  slow-1 drained and left"),
        "{out}"
    );
    assert!(
        router.cluster().find("slow-1").is_none(),
        "a drained registered node leaves"
    );
    assert_eq!(
        slow_node.in_flight(),
        0,
        "returned only once nothing was in flight"
    );

    // Traffic goes on through the other node.
    let after = done.load(SeqCst);
    wait_until("more requests complete after the drain", || {
        done.load(SeqCst) >= after + 20
    })
    .await;
    stop.store(true, SeqCst);
    let mut statuses = Vec::new();
    for c in clients {
        statuses.extend(c.await.unwrap());
    }
    assert!(slow.served() > 0);
    assert!(
        statuses.iter().all(|s| *s == 200),
        "every request succeeded: {statuses:?}"
    );
}

#[tokio::test]
async fn drain_wait_gives_up_at_the_timeout_with_exit_1() {
    let stuck = FakeNode::start("stuck", Behaviour::Hang).await;
    let router = start_router(&format!(
        "{}slow_start = \"0s\"\n",
        pool_toml("round-robin", &[&stuck])
    ))
    .await;
    let id = stuck.addr.to_string();
    let addr = router.local_addrs()[0].clone();
    let hanging = tokio::spawn(async move { send(&addr, &get("h", "/"), b"").await });
    let (_, node) = router.cluster().find(&id).unwrap();
    wait_until("a request is in flight", || node.in_flight() > 0).await;

    let run = routerctl(
        &[control_url(&router)],
        &["drain", &id, "--wait", "--timeout", "300ms"],
    )
    .await;
    let msg = run.fails(1);
    assert!(
        msg.contains(&format!(
            "{id} is still draining after 0.3s on {} (1 in flight)",
            control_url(&router)
        )),
        "{msg}"
    );
    assert!(
        run.stdout.contains(&format!("ok  {id} draining")),
        "{run:?}"
    );
    assert_eq!(state(&router, &id), Some(AdminState::Draining));
    hanging.abort();
}
