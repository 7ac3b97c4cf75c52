//! Stopping routerd with SIGTERM or SIGINT: it stops accepting at once, lets requests in flight
//! finish, exits 0, and never waits longer than `timeouts.shutdown_grace` for them.

mod support;

use std::time::Duration;

use support::binary::Routerd;
use support::*;
use tokio::time::Instant;

/// Waits until connecting to `addr` fails; returns how long that took.
async fn wait_refused(addr: &str, limit: Duration) -> Duration {
    let path = addr.trim_start_matches("unix:");
    let started = Instant::now();
    let what = "routerd to refuse new connections after the signal";
    wait_for(what, limit, async || {
        tokio::net::UnixStream::connect(path)
            .await
            .is_err()
            .then_some(())
    })
    .await;
    started.elapsed()
}

/// A 1 s request is in flight when `signal` arrives: it completes with 200, new connections are
/// refused meanwhile, and routerd exits 0 as soon as it is done (not after the 30 s grace).
async fn in_flight_request_survives(signal: &str) {
    let node = FakeNode::start("slow", Behaviour::Slow(Duration::from_secs(1))).await;
    let mut routerd = Routerd::start(&pool_toml("round-robin", &[&node])).await;
    let addr = routerd.addr.clone();
    let request = tokio::spawn(async move {
        let r = send(&addr, &get("h", "/slow"), b"").await;
        (r, Instant::now())
    });
    node.wait_served(1).await;

    let signalled = Instant::now();
    routerd.signal(signal);
    let refused_after = wait_refused(&routerd.addr, Duration::from_millis(500)).await;
    assert!(
        !request.is_finished(),
        "the slow request was still in flight when new connections were refused ({refused_after:?} after SIG{signal})"
    );

    let (r, answered) = request.await.expect("client task");
    assert_eq!(
        r.status,
        200,
        "the in-flight request completes: {}",
        r.text()
    );
    assert_eq!(node_of(&r), "slow");

    let status = routerd
        .wait_exit(Duration::from_secs(5))
        .await
        .unwrap_or_else(|| {
            panic!(
                "routerd did not exit after SIG{signal}:\n{}",
                routerd.stderr()
            )
        });
    assert!(
        status.success(),
        "exit status {status}:\n{}",
        routerd.stderr()
    );
    let exited = Instant::now();
    assert!(
        exited - answered < Duration::from_secs(2),
        "routerd lingered {:?} after its last request finished (grace is 30 s)",
        exited - answered
    );
    assert!(
        exited - signalled < Duration::from_secs(5),
        "shutdown took {:?}",
        exited - signalled
    );
}

#[tokio::test]
async fn sigterm_finishes_the_request_in_flight_then_exits_0() {
    in_flight_request_survives("TERM").await;
}

#[tokio::test]
async fn sigint_stops_routerd_like_sigterm() {
    in_flight_request_survives("INT").await;
}

#[tokio::test]
async fn a_hung_request_holds_shutdown_only_for_the_grace_period() {
    let node = FakeNode::start("hang", Behaviour::Hang).await;
    let body = format!(
        "{}[timeouts]\nshutdown_grace = \"500ms\"\n",
        pool_toml("round-robin", &[&node])
    );
    let mut routerd = Routerd::start(&body).await;
    let addr = routerd.addr.clone();
    let request = tokio::spawn(async move { send(&addr, &get("h", "/hang"), b"").await });
    node.wait_served(1).await;

    let signalled = Instant::now();
    routerd.signal("TERM");
    let status = routerd
        .wait_exit(Duration::from_secs(5))
        .await
        .unwrap_or_else(|| {
            panic!(
                "routerd still running 5 s after SIGTERM with a 500 ms grace:\n{}",
                routerd.stderr()
            )
        });
    let took = signalled.elapsed();
    assert!(
        status.success(),
        "exit status {status}:\n{}",
        routerd.stderr()
    );
    assert!(
        took >= Duration::from_millis(400),
        "routerd gave the request in flight only {took:?} of its 500 ms grace"
    );
    assert!(
        took < Duration::from_secs(3),
        "shutdown took {took:?} with a 500 ms grace"
    );
    assert!(
        routerd.stderr().contains("grace period over"),
        "the log says requests were cut short:\n{}",
        routerd.stderr()
    );

    // The client is not left hanging: its connection is closed without a response.
    let r = tokio::time::timeout(Duration::from_secs(5), request)
        .await
        .expect("the client's connection is closed when routerd exits")
        .expect("client task");
    assert_eq!(r.status, 0, "no response was made up: {}", r.text());
}
