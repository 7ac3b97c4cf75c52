//! Every request carries an id to its node: the client's `X-Request-Id` passed through untouched,
//! or one the router makes; the router's own error replies name it; `[request_id]` turns it off.

mod support;

use support::request_id::{split_request_id, var_of};
use support::*;
use uwsgi_router::protocol::encode_packet;

/// A GET carrying `id` as nginx passes an `X-Request-Id` header.
fn get_with_id(host: &str, id: &[u8]) -> Vec<u8> {
    let vars: Vec<(&[u8], &[u8])> = vec![
        (b"REQUEST_METHOD", b"GET"),
        (b"REQUEST_URI", b"/"),
        (b"PATH_INFO", b"/"),
        (b"REMOTE_ADDR", b"127.0.0.1"),
        (b"HTTP_HOST", host.as_bytes()),
        (b"HTTP_X_REQUEST_ID", id),
    ];
    encode_packet(0, 0, vars).unwrap().to_vec()
}

#[tokio::test]
async fn the_node_gets_a_new_id_for_each_request_without_one() {
    let node = FakeNode::start("a", Behaviour::Echo).await;
    let router = start_router(&pool_toml("round-robin", &[&node])).await;
    let addr = &router.local_addrs()[0];
    let mut ids = Vec::new();
    for _ in 0..3 {
        let r = send(addr, &get("h", "/"), b"").await;
        assert_eq!(r.status, 200, "{}", r.text());
        let (_, id) = split_request_id(&node.last_request.lock().unwrap());
        assert!(
            r.text().contains(&format!("HTTP_X_REQUEST_ID={id}\n")),
            "the app reads it as a var: {}",
            r.text()
        );
        assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()));
        ids.push(id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 3, "{ids:?}");
}

#[tokio::test]
async fn a_client_id_reaches_the_node_in_a_packet_left_as_sent() {
    let node = FakeNode::start("a", Behaviour::Echo).await;
    let router = start_router(&pool_toml("round-robin", &[&node])).await;
    let packet = get_with_id("h", b"9b2e7c1a-client");
    let r = send(&router.local_addrs()[0], &packet, b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(&node.last_request.lock().unwrap()[..], packet);
}

#[tokio::test]
async fn a_client_id_unfit_for_logs_is_replaced_by_a_later_var() {
    let node = FakeNode::start("a", Behaviour::Echo).await;
    let router = start_router(&pool_toml("round-robin", &[&node])).await;
    let packet = get_with_id("h", b"has space\nand newline");
    send(&router.local_addrs()[0], &packet, b"").await;
    let received = node.last_request.lock().unwrap().clone();
    let (original, id) = split_request_id(&received);
    assert_eq!(
        original, packet,
        "the client's var stays; uWSGI reads the last"
    );
    assert_eq!(var_of(&received, "HTTP_X_REQUEST_ID"), Some(id));
}

#[tokio::test]
async fn router_replies_name_the_request_id() {
    let router = start_router("default_pool = \"\"\n").await;
    let addr = &router.local_addrs()[0];
    let r = send(addr, &get_with_id("nowhere.test", b"trace-503"), b"").await;
    assert_eq!(r.status, 503);
    assert!(
        r.text().ends_with("\nrequest id: trace-503\n"),
        "{}",
        r.text()
    );
    assert!(r.head.contains("\r\nX-Request-Id: trace-503"), "{}", r.head);

    let r = send(addr, &get("nowhere.test", "/"), b"").await;
    let id = r
        .text()
        .lines()
        .find_map(|l| l.strip_prefix("request id: "))
        .map(str::to_owned)
        .expect("a made id in the body");
    assert_eq!(id.len(), 32);
    assert!(
        r.head.contains(&format!("X-Request-Id: {id}")),
        "{}",
        r.head
    );
}

#[tokio::test]
async fn turned_off_there_is_no_id_anywhere() {
    let node = FakeNode::start("a", Behaviour::Echo).await;
    let toml = format!(
        "{}[request_id]\nenabled = false\n",
        pool_toml("round-robin", &[&node])
    );
    let router = start_router(&toml).await;
    let addr = &router.local_addrs()[0];
    let packet = get("h", "/");
    send(addr, &packet, b"").await;
    assert_eq!(&node.last_request.lock().unwrap()[..], packet);
    let r = send(addr, &get_with_id("h", b"client"), b"").await;
    assert!(
        r.text().contains("HTTP_X_REQUEST_ID=client\n"),
        "passed on as any var"
    );
    node.stop();
    let r = send(addr, &get("h", "/"), b"").await;
    assert_eq!(r.status, 502);
    assert!(!r.text().contains("request id"), "{}", r.text());
    assert!(!r.head.contains("X-Request-Id"), "{}", r.head);
}
