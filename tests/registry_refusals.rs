//! Registrations the Registry refuses while the router keeps serving: a missing or wrong token,
//! bad announces, an id a live or leased session holds (a reconnect of the same node takes over),
//! and an oversize message.

mod support;

use std::time::Duration;

use support::registry_client::{announce, idle, NodeSession};
use support::*;
use uwsgi_router::api::{node_message::Msg, router_message::Msg as R, Drain, RejectCode};
use uwsgi_router::clock::now_ms;

const POOL: &str = "[pools.default]\nslow_start = \"0s\"\n";

#[tokio::test]
async fn tokens_are_required_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("registry.token");
    std::fs::write(&tokens, "0123456789abcdef0123456789abcdef\n").unwrap();
    let node = FakeNode::start("a", Behaviour::Echo).await;
    let router = start_router(&format!(
        "{POOL}[control]\nlisten = \"127.0.0.1:0\"\nregistry_token_files = [\"{}\"]\n",
        tokens.display()
    ))
    .await;
    let control = router.control_addr().unwrap();
    let a = announce("a", "default", &node.addr.to_string());
    for token in [None, Some("wrong-token-wrong-token-wrong")] {
        let err = NodeSession::open(control, token, a.clone())
            .await
            .err()
            .expect("refused");
        assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err:?}");
    }
    assert!(router.cluster().find("a").is_none());
    let (_s, first) = NodeSession::open(control, Some("0123456789abcdef0123456789abcdef"), a)
        .await
        .unwrap();
    assert!(matches!(first, R::Accepted(_)));
}

#[tokio::test]
async fn bad_registrations_are_refused_and_traffic_goes_on() {
    let node = FakeNode::start("ok", Behaviour::Echo).await;
    let toml = format!(
        "[pools.default]\nnodes = [\"{}\"]\nmax_nodes = 4\nallowed_networks = [\"127.0.0.0/8\"]\n",
        node.addr
    );
    let router = start_router(&toml).await;
    let control = router.control_addr().unwrap();
    let addr = router.local_addrs()[0].clone();
    let code = |m: &R| match m {
        R::Rejected(r) => r.code,
        other => panic!("expected a rejection, got {other:?}"),
    };

    let (_, m) = NodeSession::open(control, None, announce("x", "default", "10.9.9.9:3031"))
        .await
        .unwrap();
    assert_eq!(code(&m), RejectCode::AddressNotAllowed as i32);
    let (_, m) = NodeSession::open(control, None, announce("x", "nope", "127.0.0.1:3031"))
        .await
        .unwrap();
    assert_eq!(code(&m), RejectCode::UnknownPool as i32);
    let (_, m) = NodeSession::open(
        control,
        None,
        announce("bad id", "default", "127.0.0.1:3031"),
    )
    .await
    .unwrap();
    assert_eq!(code(&m), RejectCode::Invalid as i32);

    // An oversized message is refused by the transport.
    let mut big = announce("big", "default", "127.0.0.1:3031");
    big.version = "v".repeat(64 * 1024);
    assert!(NodeSession::open(control, None, big).await.is_err());

    // A flood of announcements: the pool takes its max_nodes (1 static + 3), the rest are refused.
    let flood: Vec<_> = (0..40)
        .map(|i| {
            tokio::spawn(NodeSession::open(
                control,
                None,
                announce(
                    &format!("n{i}"),
                    "default",
                    &format!("127.0.0.{}:3031", i + 2),
                ),
            ))
        })
        .collect();
    let mut accepted = Vec::new();
    let mut full = 0;
    for f in flood {
        match f.await.unwrap().unwrap() {
            (s, R::Accepted(_)) => accepted.push(s),
            (_, m) => {
                assert_eq!(code(&m), RejectCode::PoolFull as i32);
                full += 1;
            }
        }
    }
    assert_eq!((accepted.len(), full), (3, 37));
    // Serving goes on (retries skip the registered nodes that listen nowhere).
    for _ in 0..5 {
        assert_eq!(send(&addr, &get("h", "/"), b"").await.status, 200);
    }
}

/// The reason of a rejection, or a panic naming what came instead.
fn rejected(m: &R, code: RejectCode) -> String {
    match m {
        R::Rejected(r) if r.code == code as i32 => r.reason.clone(),
        other => panic!("expected a {code:?} rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn announcing_a_live_nodes_id_from_another_address_is_refused_naming_the_holder() {
    let real = FakeNode::start("real", Behaviour::Echo).await;
    let evil = FakeNode::start("evil", Behaviour::Echo).await;
    let router = start_router(POOL).await;
    let control = router.control_addr().unwrap();
    let addr = router.local_addrs()[0].clone();
    let (mut s, first) = NodeSession::join(control, "app-1", real.addr).await;
    assert!(matches!(first, R::Accepted(_)), "{first:?}");
    let _reports = s.keep_reporting(idle());

    // Another session announces the same id with another address, from this host and from
    // another one (127.0.0.2): both are refused, and told which session holds the id.
    for from in [None, Some([127, 0, 0, 2].into())] {
        let (_, m) = NodeSession::open_from(
            control,
            from,
            None,
            announce("app-1", "default", &evil.addr.to_string()),
        )
        .await
        .unwrap();
        let reason = rejected(&m, RejectCode::IdTaken);
        assert!(
            reason.contains("live session from 127.0.0.1:")
                && reason.contains(&real.addr.to_string()),
            "the reason names the holding session and its node: {reason}"
        );
    }
    // Even the same node address, announced from another host, does not take it over.
    let (_, m) = NodeSession::open_from(
        control,
        Some([127, 0, 0, 2].into()),
        None,
        announce("app-1", "default", &real.addr.to_string()),
    )
    .await
    .unwrap();
    rejected(&m, RejectCode::IdTaken);

    // Traffic stays with the real node, and its session goes on undisturbed past the lease an
    // impostor would have had (1 s).
    for _ in 0..20 {
        assert_eq!(node_of(&send(&addr, &get("h", "/"), b"").await), "real");
    }
    assert!(
        s.quiet_for(Duration::from_millis(1500)).await,
        "the real session is not displaced"
    );
    assert_eq!(node_of(&send(&addr, &get("h", "/"), b"").await), "real");
    assert_eq!(
        evil.served(),
        0,
        "no request reached the impostor's address"
    );
}

#[tokio::test]
async fn a_reconnect_of_the_same_node_takes_over_and_the_old_session_is_told() {
    let node = FakeNode::start("a", Behaviour::Echo).await;
    let router = start_router(POOL).await;
    let control = router.control_addr().unwrap();
    let a = announce("a", "default", &node.addr.to_string());
    let (mut old, _) = NodeSession::open(control, None, a.clone()).await.unwrap();
    // The agent reconnected (its old stream is half-open as far as the router knows).
    let (new, first) = NodeSession::open(control, None, a).await.unwrap();
    assert!(matches!(first, R::Accepted(_)), "{first:?}");
    let told = old.next().await.expect("the old session is told");
    let reason = rejected(&told, RejectCode::IdTaken);
    assert!(
        reason.contains("taken over by a new session from 127.0.0.1:"),
        "{reason}"
    );
    assert_eq!(old.next().await, None, "and then it ends");
    // The new session holds the node: its reports keep it past the lease (1 s). The router
    // applies them until 1.5 s on, the node the same incarnation all along.
    let _reports = new.keep_reporting(idle());
    let (_, held) = router.cluster().find("a").unwrap();
    let past_the_lease = now_ms() + 1500;
    wait_for(
        "reports applied 1.5 s after the takeover",
        STEP,
        async || {
            let (_, now) = router.cluster().find("a").expect("the node stays");
            assert!(std::sync::Arc::ptr_eq(&held, &now), "the same incarnation");
            now.reported_load()
                .is_some_and(|l| l.at_ms >= past_the_lease)
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        node_of(&send(&router.local_addrs()[0], &get("h", "/"), b"").await),
        "a"
    );
}

#[tokio::test]
async fn a_leased_id_is_not_taken_by_another_address_after_its_stream_breaks() {
    let real = FakeNode::start("real", Behaviour::Echo).await;
    let evil = FakeNode::start("evil", Behaviour::Echo).await;
    let router = start_router(POOL).await;
    let control = router.control_addr().unwrap();
    let (s, _) = NodeSession::join(control, "app-1", real.addr).await;
    s.report(0, 2, 0).await;
    drop(s);
    // While the lease runs, the id belongs to the node that had it...
    let (_, m) = NodeSession::join(control, "app-1", evil.addr).await;
    let reason = rejected(&m, RejectCode::IdTaken);
    assert!(reason.contains(&real.addr.to_string()), "{reason}");
    assert_eq!(
        node_of(&send(&router.local_addrs()[0], &get("h", "/"), b"").await),
        "real"
    );
    // ... which can come back to it at once,
    let (back, m) = NodeSession::join(control, "app-1", real.addr).await;
    assert!(matches!(m, R::Accepted(_)), "{m:?}");
    drop(back);
    // ... and once the lease ran out the id is free for another address.
    wait_until("the lease expires", || {
        router.cluster().find("app-1").is_none()
    })
    .await;
    let (_s, m) = NodeSession::join(control, "app-1", evil.addr).await;
    assert!(matches!(m, R::Accepted(_)), "{m:?}");
}

#[tokio::test]
async fn an_oversize_message_ends_the_session_with_resource_exhausted_naming_the_limit() {
    let node = FakeNode::start("a", Behaviour::Echo).await;
    let router = start_router(POOL).await;
    let control = router.control_addr().unwrap();

    // An Announce over the limit.
    let mut big = announce("a", "default", &node.addr.to_string());
    big.version = "v".repeat(64 * 1024);
    let status = NodeSession::open(control, None, big)
        .await
        .err()
        .expect("refused");
    assert_over_the_limit(&status);

    // An oversize message on an accepted session.
    let (mut s, first) = NodeSession::join(control, "a", node.addr).await;
    assert!(matches!(first, R::Accepted(_)), "{first:?}");
    s.send(Msg::Drain(Drain {
        reason: "x".repeat(20 * 1024),
    }))
    .await;
    let status = s
        .next_status()
        .await
        .expect_err("the stream ends with a status");
    assert_over_the_limit(&status);
    // The router serves on: the node stays until its lease runs out.
    assert_eq!(
        node_of(&send(&router.local_addrs()[0], &get("h", "/"), b"").await),
        "a"
    );
}

/// `status` ends a session for a message over the limit, and names the limit.
fn assert_over_the_limit(status: &tonic::Status) {
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    let limit = "control.max_message_bytes is 16384 bytes";
    assert!(status.message().contains(limit), "{status:?}");
}
