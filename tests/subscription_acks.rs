//! Acknowledgements of subscriptions: a new node hears back on the notify socket it names, and
//! only sockets under `notify_dir` are ever written to.

mod subscription_support;
mod support;

use subscription_support::*;
use support::*;
use tokio::net::UnixDatagram;

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
