//! Reloading the config: a good file moves traffic to the new pools at once, without losing a
//! request in flight or arriving meanwhile; a broken file is refused, reported, and the previous
//! config keeps serving.

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use support::binary::{self, Routerd};
use support::*;
use tokio::time::Instant;
use uwsgi_router::config::ConfigError;

/// Startups raced against a SIGHUP.
const ATTEMPTS: usize = 200;

/// Which node answered each of `n` requests, by name.
async fn answered_by(addr: &str, n: usize) -> BTreeMap<String, usize> {
    let mut by = BTreeMap::new();
    for i in 0..n {
        let r = send(addr, &get("h", &format!("/{i}")), b"").await;
        assert_eq!(r.status, 200, "request {i}: {}", r.text());
        *by.entry(node_of(&r)).or_insert(0) += 1;
    }
    by
}

#[tokio::test]
async fn a_reload_moves_new_requests_to_the_new_nodes() {
    let a = FakeNode::start("a", Behaviour::Echo).await;
    let b = FakeNode::start("b", Behaviour::Echo).await;
    let (router, file) = start_router_from_file(&pool_toml("round-robin", &[&a])).await;
    let addr = router.local_addrs()[0].clone();
    assert_eq!(
        answered_by(&addr, 5).await,
        BTreeMap::from([("a".into(), 5)])
    );

    file.write(&pool_toml("least-load", &[&b]));
    router.reload().expect("the new config is valid");

    assert_eq!(
        answered_by(&addr, 10).await,
        BTreeMap::from([("b".into(), 10)]),
        "after the reload only the new node gets requests"
    );
    assert_eq!(a.served(), 5, "the removed node got nothing more");
    assert_eq!(
        router.local_addrs()[0],
        addr,
        "the listener is kept across reloads"
    );
}

#[tokio::test]
async fn a_broken_file_is_refused_and_the_old_config_keeps_serving() {
    let a = FakeNode::start("a", Behaviour::Echo).await;
    let b = FakeNode::start("b", Behaviour::Echo).await;
    let (router, file) = start_router_from_file(&pool_toml("round-robin", &[&a])).await;
    let addr = router.local_addrs()[0].clone();

    // Not TOML at all: a half-finished edit.
    file.write_raw("[pools.default\nnodes = [");
    let err = router.reload().expect_err("half a file is not a config");
    assert!(matches!(err, ConfigError::Syntax(_)), "{err}");
    assert_eq!(
        answered_by(&addr, 5).await,
        BTreeMap::from([("a".into(), 5)])
    );

    // Valid TOML that makes no sense: a route to a pool that does not exist.
    let dangling = format!(
        "{}[[routes]]\nhost = \"api.test\"\npool = \"api\"\n",
        pool_toml("round-robin", &[&b])
    );
    file.write(&dangling);
    let err = router.reload().expect_err("a route to a missing pool");
    let msg = err.to_string();
    assert!(msg.contains("routes[0].pool"), "names the key: {msg}");
    assert!(msg.contains("\"api\""), "names the missing pool: {msg}");
    assert_eq!(
        answered_by(&addr, 5).await,
        BTreeMap::from([("a".into(), 5)])
    );
    assert!(
        router.config().routes.is_empty(),
        "nothing of the broken config was applied"
    );

    // The file vanished (a deploy in progress).
    std::fs::remove_file(&file.path).unwrap();
    let err = router.reload().expect_err("no file");
    assert!(matches!(err, ConfigError::Read { .. }), "{err}");
    assert_eq!(
        answered_by(&addr, 5).await,
        BTreeMap::from([("a".into(), 5)])
    );
    assert_eq!(b.served(), 0, "no broken config ever sent traffic to b");
}

/// A config body that sends everything to `nodes` with `algorithm`, slow start off so that a new
/// node takes its full share at once.
fn pool_of(algorithm: &str, nodes: &[&FakeNode]) -> String {
    format!("{}slow_start = \"0s\"\n", pool_toml(algorithm, nodes))
}

#[tokio::test]
async fn sighup_under_traffic_loses_no_request() {
    // The a nodes are slow, so that requests are in flight on them whenever a reload drops them.
    let a1 = FakeNode::start("a1", Behaviour::Slow(Duration::from_millis(20))).await;
    let a2 = FakeNode::start("a2", Behaviour::Slow(Duration::from_millis(20))).await;
    let b1 = FakeNode::start("b1", Behaviour::Echo).await;
    let b2 = FakeNode::start("b2", Behaviour::Echo).await;
    let mut routerd = Routerd::start(&pool_of("round-robin", &[&a1, &a2])).await;

    // Four clients send requests back to back until told to stop (and at most 5000 each).
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for c in 0..4 {
        let (addr, stop, done) = (routerd.addr.clone(), stop.clone(), done.clone());
        clients.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for i in 0..5000 {
                if stop.load(SeqCst) {
                    break;
                }
                let r = send(&addr, &get("h", &format!("/c{c}/{i}")), b"").await;
                statuses.push((r.status, r.text()));
                done.fetch_add(1, SeqCst);
            }
            statuses
        }));
    }

    // Reloads while they run, alternating node sets and algorithms; the last moves the pool to
    // b1 and b2 for good. Each waits for routerd to confirm the reload, then for traffic to
    // flow through the new config before the next.
    let hash =
        pool_of("hash", &[&a1, &a2]).replace("slow_start", "hash_var = \"PATH_INFO\"\nslow_start");
    let configs = [
        pool_of("least-load", &[&b1, &b2]),
        pool_of("random", &[&a1, &b2]),
        pool_of("least-connections", &[&a2, &b1]),
        hash,
        pool_of("round-robin", &[&a1, &a2, &b1, &b2]),
        pool_of("least-load", &[&a1]),
        pool_of("weighted-round-robin", &[&b1, &b2]),
    ];
    for (i, config) in configs.iter().enumerate() {
        routerd.rewrite(config);
        routerd.signal("HUP");
        routerd
            .wait_log("reloaded config on SIGHUP", i + 1, Duration::from_secs(5))
            .await;
        let before = done.load(SeqCst);
        let what = format!("traffic to go on after reload {i}");
        wait_for(what, Duration::from_secs(5), async || {
            (done.load(SeqCst) >= before + 20).then_some(())
        })
        .await;
    }
    stop.store(true, SeqCst);

    let mut total = 0;
    for (c, client) in clients.into_iter().enumerate() {
        let statuses = client.await.expect("client task");
        for (i, (status, text)) in statuses.iter().enumerate() {
            assert_eq!(*status, 200, "client {c} request {i}: {text}");
        }
        total += statuses.len();
    }
    assert!(total >= 100, "only {total} requests were sent");
    assert!(
        !routerd.stderr().contains("reload failed"),
        "{}",
        routerd.stderr()
    );

    // After the last reload only b1 and b2 answer.
    let (a1_before, a2_before) = (a1.served(), a2.served());
    let by = answered_by(&routerd.addr, 20).await;
    assert_eq!(by.keys().collect::<Vec<_>>(), ["b1", "b2"], "{by:?}");
    assert_eq!((a1.served(), a2.served()), (a1_before, a2_before));
}

#[tokio::test]
async fn sighup_with_a_broken_file_logs_the_error_and_keeps_serving() {
    let a = FakeNode::start("a", Behaviour::Echo).await;
    let b = FakeNode::start("b", Behaviour::Echo).await;
    let mut routerd = Routerd::start(&pool_of("round-robin", &[&a])).await;

    routerd.rewrite_raw("[pools.default\nnodes = [");
    routerd.signal("HUP");
    routerd
        .wait_log("reload failed", 1, Duration::from_secs(5))
        .await;
    assert_eq!(
        answered_by(&routerd.addr, 5).await,
        BTreeMap::from([("a".into(), 5)])
    );

    let dangling = format!(
        "{}[[routes]]\nhost = \"api.test\"\npool = \"api\"\n",
        pool_of("round-robin", &[&b])
    );
    routerd.rewrite(&dangling);
    routerd.signal("HUP");
    routerd
        .wait_log("reload failed", 2, Duration::from_secs(5))
        .await;
    assert!(
        routerd.stderr().contains("routes[0].pool"),
        "the log names the bad key:\n{}",
        routerd.stderr()
    );
    assert_eq!(
        answered_by(&routerd.addr, 5).await,
        BTreeMap::from([("a".into(), 5)])
    );
    assert!(
        routerd.try_exit().is_none(),
        "a bad reload never stops routerd"
    );

    // Once the file is fixed, the next SIGHUP applies it.
    routerd.rewrite(&pool_of("round-robin", &[&b]));
    routerd.signal("HUP");
    routerd
        .wait_log("reloaded config on SIGHUP", 1, Duration::from_secs(5))
        .await;
    assert_eq!(
        answered_by(&routerd.addr, 5).await,
        BTreeMap::from([("b".into(), 5)])
    );
}

/// An operator (or a deploy script, or systemd's ExecReload) may reload as soon as routerd
/// accepts connections. That SIGHUP must reload routerd, not kill it.
#[tokio::test]
async fn a_sighup_as_soon_as_routerd_accepts_reloads_it() {
    let a = FakeNode::start("a", Behaviour::Echo).await;
    // The window between listening and handling signals is short: try several times, and send
    // the signal with as little delay as possible (a shell already waiting to run `kill`).
    for attempt in 0..ATTEMPTS {
        let mut routerd = Routerd::spawn(&pool_of("round-robin", &[&a]));
        let mut hup = Command::new("sh")
            .args(["-c", "read go && kill -HUP \"$1\"", "sh"])
            .arg(routerd.pid().to_string())
            .stdin(Stdio::piped())
            .spawn()
            .expect("spawn sh");
        let path = routerd.addr.trim_start_matches("unix:").to_owned();
        let deadline = Instant::now() + binary::STARTUP;
        // A tight loop: the point is to signal the moment the socket accepts.
        while std::os::unix::net::UnixStream::connect(&path).is_err() {
            routerd.assert_starting(deadline);
            std::thread::yield_now();
        }
        hup.stdin.take().unwrap().write_all(b"go\n").unwrap();
        assert!(hup.wait().unwrap().success(), "kill -HUP failed");

        // Fails naming the exit status if the SIGHUP killed routerd instead.
        routerd
            .wait_log("reloaded config on SIGHUP", 1, Duration::from_secs(5))
            .await;
        let r = send(&routerd.addr, &get("h", "/"), b"").await;
        assert_eq!(r.status, 200, "attempt {attempt}: {}", r.text());
    }
}

/// Reloads that add a pool and a route to it, checked at once. A pool change is announced to the
/// background rebuild while the reload is still storing its own snapshot: whichever stores last
/// must have built from the new config, or the new route is lost until the next change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_adding_a_pool_and_its_route_always_serves_the_route() {
    const RELOADS: usize = 300;
    let a = FakeNode::start("a", Behaviour::Echo).await;
    let body = |i: usize| {
        format!(
            "default_pool = \"\"\n[pools.p{i}]\nslow_start = \"0s\"\nnodes = [\"{}\"]\n[[routes]]\nhost = \"h{i}.test\"\npool = \"p{i}\"\n",
            a.addr
        )
    };
    let router = start_router(&body(0)).await;
    // The listeners stay as started; only pools and routes change.
    let config = |i: usize| {
        let mut c = uwsgi_router::config::Config::parse(&body(i)).expect("valid");
        c.listen = router.config().listen.clone();
        c.control = router.config().control.clone();
        c.metrics = router.config().metrics.clone();
        c
    };
    let addr = router.local_addrs()[0].clone();
    let mut lost = Vec::new();
    for i in 1..=RELOADS {
        router.apply(config(i));
        // Let the background rebuild that the pool change triggered run to its end.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let r = send(&addr, &get(&format!("h{i}.test"), "/"), b"").await;
        if r.status != 200 {
            lost.push((i, r.status));
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {RELOADS} reloads left their new route unserved (reload, status): {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
}
