//! The HTTP/1.1 listener: keep-alive connections whose requests reach uwsgi nodes as nginx's
//! `uwsgi_params` would send them, bodies of every framing, responses re-framed so the client's
//! connection survives, and what a hostile client sends refused.

mod support;

use std::time::Duration;

use support::http_client::HttpConn;
use support::*;
use uwsgi_router::daemon::Daemon;

/// A router with one HTTP listener in front of `nodes` (round robin), plus `extra` config.
async fn http_router(nodes: &[&FakeNode], extra: &str) -> (Daemon, String) {
    let list: Vec<String> = nodes.iter().map(|n| format!("\"{}\"", n.addr)).collect();
    let toml = format!(
        "[listen]\nuwsgi = [\"127.0.0.1:0\"]\nhttp = [\"127.0.0.1:0\"]\n\
         [pools.default]\nalgorithm = \"round-robin\"\nnodes = [{}]\n{extra}",
        list.join(", ")
    );
    let router = start_router(&toml).await;
    let addr = router.http_addrs()[0].clone();
    (router, addr)
}

/// The var `key` of an Echo node's answer.
fn var<'a>(body: &'a str, key: &str) -> Option<&'a str> {
    body.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

#[tokio::test]
async fn one_connection_carries_many_requests_each_a_uwsgi_request_to_a_node() {
    let a = FakeNode::start("a", Behaviour::Echo).await;
    let b = FakeNode::start("b", Behaviour::Echo).await;
    let (_router, addr) = http_router(&[&a, &b], "").await;
    let mut conn = HttpConn::connect(&addr).await;
    let mut nodes = Vec::new();
    for i in 0..6 {
        let r = conn
            .request(format!("GET /shop/%7Eitem/./{i}?q=1 HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: t\r\n\r\n").as_bytes())
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let body = r.text();
        assert_eq!(var(&body, "REQUEST_METHOD"), Some("GET"));
        assert_eq!(
            var(&body, "REQUEST_URI"),
            Some(format!("/shop/%7Eitem/./{i}?q=1").as_str())
        );
        assert_eq!(
            var(&body, "PATH_INFO"),
            Some(format!("/shop/~item/{i}").as_str())
        );
        assert_eq!(var(&body, "QUERY_STRING"), Some("q=1"));
        assert_eq!(var(&body, "HTTP_HOST"), Some("shop.test"));
        assert_eq!(var(&body, "SERVER_NAME"), Some("shop.test"));
        assert_eq!(var(&body, "REMOTE_ADDR"), Some("127.0.0.1"));
        assert_eq!(var(&body, "HTTP_USER_AGENT"), Some("t"));
        assert!(
            var(&body, "HTTP_X_REQUEST_ID").is_some(),
            "a request id is given"
        );
        assert!(r.header("x-request-id").is_none() || r.status != 200);
        nodes.push(var(&body, "node").unwrap().to_owned());
    }
    assert_eq!(a.served() + b.served(), 6);
    assert!(nodes.contains(&"a".to_owned()) && nodes.contains(&"b".to_owned()));
    assert!(!conn.is_closed_now().await, "the connection is kept alive");
}

#[tokio::test]
async fn bodies_of_every_framing_reach_the_node_with_their_length() {
    let a = FakeNode::start("a", Behaviour::Echo).await;
    let (_router, addr) = http_router(&[&a], "").await;
    let mut conn = HttpConn::connect(&addr).await;
    let body = "x".repeat(100_000);
    let r = conn
        .request(format!("POST /f HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}", body.len()).as_bytes())
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(var(&r.text(), "body_length"), Some("100000"));
    assert_eq!(var(&r.text(), "CONTENT_LENGTH"), Some("100000"));
    assert_eq!(var(&r.text(), "CONTENT_TYPE"), Some("text/plain"));

    // Chunked: de-chunked, and the node told its length.
    let r = conn
        .request(b"POST /f HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(var(&r.text(), "CONTENT_LENGTH"), Some("11"));
    assert_eq!(var(&r.text(), "body_length"), Some("11"));
    assert_eq!(var(&r.text(), "HTTP_TRANSFER_ENCODING"), None);
    let last = a.last_request.lock().unwrap().clone();
    assert!(
        last.ends_with(b"hello world"),
        "the node got the decoded body"
    );

    // Expect: 100-continue gets its interim answer, then the body goes through.
    conn.send(b"POST /f HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        .await;
    let interim = conn.response(false).await;
    assert_eq!(interim.status, 100);
    conn.send(b"abc").await;
    let r = conn.response(false).await;
    assert_eq!(r.status, 200);
    assert_eq!(var(&r.text(), "body_length"), Some("3"));
}

#[tokio::test]
async fn a_chunked_body_over_the_buffer_is_refused_with_413() {
    let a = FakeNode::start("a", Behaviour::Echo).await;
    let (_router, addr) = http_router(&[&a], "[http]\nmax_body_buffer = 10\n").await;
    let mut conn = HttpConn::connect(&addr).await;
    let r = conn
        .request(b"POST /f HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n")
        .await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(a.served(), 0);

    // A client still sending (nginx relaying a big upload) gets the 413 too, not a reset: the
    // rest of the body is read and thrown away before the answer.
    let mut conn = HttpConn::connect(&addr).await;
    let mut raw = b"POST /f HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let chunk = vec![b'x'; 65536];
    for _ in 0..64 {
        raw.extend_from_slice(b"10000\r\n");
        raw.extend_from_slice(&chunk);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let r = conn.request(&raw).await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.header("connection"), Some("close"));
}

#[tokio::test]
async fn node_responses_of_every_framing_keep_the_connection() {
    let node = FakeNode::start("n", Behaviour::Echo).await;
    let (_router, addr) = http_router(&[&node], "").await;
    let mut conn = HttpConn::connect(&addr).await;
    let cases: [(&[u8], u16, &[u8], bool); 4] = [
        // Ended by the close, as uWSGI streams: re-framed as chunked.
        (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nstreamed to the close", 200, b"streamed to the close", true),
        // Chunked by the node: decoded, chunked again.
        (b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 201, b"abc", true),
        // A length, and more bytes than it: the length wins. Connection: close stays with the node.
        (b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nfourEXTRA", 200, b"four", false),
        // An interim 103 before the response.
        (b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno", 404, b"no", false),
    ];
    for (raw, status, body, chunked) in cases {
        node.set_behaviour(Behaviour::Raw(raw.to_vec()));
        let r = conn.request(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").await;
        assert_eq!(r.status, status, "{}", String::from_utf8_lossy(raw));
        assert_eq!(r.body, body, "{}", String::from_utf8_lossy(raw));
        assert_eq!(r.chunked, chunked, "{}", String::from_utf8_lossy(raw));
        assert_eq!(r.header("connection"), None);
    }
    // HEAD and 204/304 have no body whatever follows.
    node.set_behaviour(Behaviour::Raw(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".to_vec(),
    ));
    let r = conn.request(b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n").await;
    assert_eq!((r.status, r.header("content-length")), (200, Some("5")));
    node.set_behaviour(Behaviour::Raw(
        b"HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n".to_vec(),
    ));
    let r = conn.request(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").await;
    assert_eq!(r.status, 304);
    node.set_behaviour(Behaviour::Echo);
    let r = conn
        .request(b"GET /after HTTP/1.1\r\nHost: h\r\n\r\n")
        .await;
    assert_eq!(
        r.status, 200,
        "the connection still serves after all of them"
    );
}

#[tokio::test]
async fn a_truncated_response_body_breaks_the_connection_off() {
    let node = FakeNode::start(
        "n",
        Behaviour::Raw(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this".to_vec()),
    )
    .await;
    let (_router, addr) = http_router(&[&node], "").await;
    let mut conn = HttpConn::connect(&addr).await;
    conn.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").await;
    // The head and what came are relayed; then the connection is closed, not reused, so the
    // client cannot take the short body for a whole one.
    assert!(conn.is_closed().await);
}

#[tokio::test]
async fn router_errors_are_http_answers_and_keep_the_connection() {
    let dead = support::ports::free_addr();
    let toml = format!(
        "default_pool = \"\"\n[listen]\nuwsgi = [\"127.0.0.1:0\"]\nhttp = [\"127.0.0.1:0\"]\n\
         [pools.dead]\nnodes = [\"{dead}\"]\n[[routes]]\nhost = \"dead.test\"\npool = \"dead\"\n"
    );
    let router = start_router(&toml).await;
    let mut conn = HttpConn::connect(&router.http_addrs()[0]).await;
    let r = conn
        .request(b"GET / HTTP/1.1\r\nHost: nowhere.test\r\n\r\n")
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.text().contains("no pool for host"), "{}", r.text());
    assert!(r.header("x-request-id").is_some());
    let r = conn
        .request(b"GET / HTTP/1.1\r\nHost: dead.test\r\n\r\n")
        .await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(!conn.is_closed_now().await);
}

#[tokio::test]
async fn smuggling_attempts_and_bad_heads_get_400_and_reach_no_node() {
    let node = FakeNode::start("n", Behaviour::Echo).await;
    let (_router, addr) = http_router(&[&node], "").await;
    let attacks: [&[u8]; 5] = [
        // Two different lengths.
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
        // obs-fold.
        b"GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n folded\r\n\r\n",
        // A control byte in a header value.
        b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01b\r\n\r\n",
        // Space before the colon.
        b"GET / HTTP/1.1\r\nHost : h\r\n\r\n",
        // A path climbing above the root.
        b"GET /../../etc/passwd HTTP/1.1\r\nHost: h\r\n\r\n",
    ];
    for raw in attacks {
        let mut conn = HttpConn::connect(&addr).await;
        conn.send(raw).await;
        let r = conn.response(false).await;
        assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(raw));
    }
    assert_eq!(node.served(), 0, "no attack reached the node");

    // Content-Length and Transfer-Encoding together (RFC 9112 6.1): the body is read as chunked,
    // so the node gets it with its real length, and the connection is closed after the answer,
    // so the bytes a front proxy might have taken for the body never pass for a request.
    for order in [
        "Content-Length: 30\r\nTransfer-Encoding: chunked",
        "Transfer-Encoding: chunked\r\nContent-Length: 30",
    ] {
        let mut conn = HttpConn::connect(&addr).await;
        let before = node.served();
        let raw = format!(
            "POST / HTTP/1.1\r\nHost: h\r\n{order}\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n"
        );
        let r = conn.request(raw.as_bytes()).await;
        assert_eq!(r.status, 200, "{order}");
        assert_eq!(var(&r.text(), "CONTENT_LENGTH"), Some("0"), "{order}");
        assert!(conn.is_closed().await, "{order}: closed after the answer");
        assert_eq!(
            node.served(),
            before + 1,
            "{order}: the smuggled request never ran"
        );
    }
}

#[tokio::test]
async fn heads_over_the_limits_get_431() {
    let node = FakeNode::start("n", Behaviour::Echo).await;
    let (_router, addr) = http_router(
        &[&node],
        "[http]\nmax_header_size = 8192\nmax_headers = 10\n",
    )
    .await;
    let mut conn = HttpConn::connect(&addr).await;
    let big = format!(
        "GET / HTTP/1.1\r\nHost: h\r\nX-Big: {}\r\n\r\n",
        "b".repeat(9000)
    );
    conn.send(big.as_bytes()).await;
    assert_eq!(conn.response(false).await.status, 431);
    let mut conn = HttpConn::connect(&addr).await;
    let many: String = (0..20).map(|i| format!("X-{i}: v\r\n")).collect();
    conn.send(format!("GET / HTTP/1.1\r\nHost: h\r\n{many}\r\n").as_bytes())
        .await;
    assert_eq!(conn.response(false).await.status, 431);
    assert_eq!(node.served(), 0);
}

#[tokio::test]
async fn idle_connections_close_and_busy_ones_stop_after_max_requests() {
    let node = FakeNode::start("n", Behaviour::Echo).await;
    let (_router, addr) = http_router(
        &[&node],
        "[http]\nidle_timeout = \"300ms\"\nmax_requests_per_connection = 3\n",
    )
    .await;
    let mut conn = HttpConn::connect(&addr).await;
    for i in 1..=3 {
        let r = conn.request(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").await;
        assert_eq!(r.status, 200);
        let close = r.header("connection") == Some("close");
        assert_eq!(close, i == 3, "request {i}");
    }
    assert!(conn.is_closed().await, "closed after its third request");

    let mut idle = HttpConn::connect(&addr).await;
    let r = idle.request(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").await;
    assert_eq!(r.status, 200);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        idle.is_closed().await,
        "an idle connection is closed after idle_timeout"
    );
}

#[tokio::test]
async fn an_upgrade_switches_to_a_two_way_stream_with_the_node() {
    let node = FakeNode::start("n", Behaviour::Upgrade).await;
    let (_router, addr) = http_router(&[&node], "").await;
    let mut conn = HttpConn::connect(&addr).await;
    let r = conn
        .request(b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n")
        .await;
    assert_eq!(r.status, 101);
    assert_eq!(r.header("upgrade"), Some("websocket"));
    let vars = node.last_request.lock().unwrap().clone();
    let vars = String::from_utf8_lossy(&vars);
    for (k, v) in [
        ("HTTP_UPGRADE", "websocket"),
        ("HTTP_CONNECTION", "Upgrade"),
    ] {
        assert!(
            vars.contains(k) && vars.contains(v),
            "{k} reaches the node: {vars}"
        );
    }
    // The node's first bytes after its 101, then an echo both ways.
    assert_eq!(conn.read_exactly(5).await, b"hello");
    for msg in [&b"ping"[..], b"a longer frame of bytes"] {
        conn.send(msg).await;
        assert_eq!(conn.read_exactly(msg.len()).await, msg);
    }
}

/// A node that reads one request (head and `body` bytes), answers it with a length, then, once
/// `go` says the client has its response, reports whether the router had half-closed the
/// connection meanwhile (read without waiting: the end of the stream, or nothing yet).
async fn half_close_probe(
    listener: std::sync::Arc<tokio::net::TcpListener>,
    body: usize,
    go: tokio::sync::oneshot::Receiver<()>,
) -> bool {
    use std::io::Read;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut s, _) = listener.accept().await.unwrap();
    let mut header = [0u8; 4];
    s.read_exact(&mut header).await.unwrap();
    let size = usize::from(u16::from_le_bytes([header[1], header[2]]));
    let mut rest = vec![0u8; size + body];
    s.read_exact(&mut rest).await.unwrap();
    s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        .await
        .unwrap();
    go.await.unwrap();
    let s = s.into_std().unwrap();
    let mut byte = [0u8; 1];
    match (&s).read(&mut byte) {
        Ok(0) => true,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
        other => panic!("unexpected bytes after the request: {other:?}"),
    }
}

#[tokio::test]
async fn a_request_does_not_half_close_the_node_connection() {
    // uWSGI reads CONTENT_LENGTH bytes and needs no end of stream: a FIN after every request
    // would cost a system call and a packet for nothing.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let node = listener.local_addr().unwrap();
    let toml = format!(
        "[listen]\nuwsgi = [\"127.0.0.1:0\"]\nhttp = [\"127.0.0.1:0\"]\n\
         [pools.default]\nnodes = [\"{node}\"]\n"
    );
    let router = start_router(&toml).await;
    let mut conn = HttpConn::connect(&router.http_addrs()[0]).await;
    let requests: [(&[u8], usize); 2] = [
        (b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", 0),
        (
            b"POST /f HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
            5,
        ),
    ];
    let listener = std::sync::Arc::new(listener);
    for (raw, body) in requests {
        let (go, wait) = tokio::sync::oneshot::channel();
        let probe = tokio::spawn(half_close_probe(listener.clone(), body, wait));
        let r = conn.request(raw).await;
        assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
        go.send(()).unwrap();
        let half_closed = tokio::time::timeout(Duration::from_secs(5), probe)
            .await
            .expect("the node answers")
            .unwrap();
        assert!(
            !half_closed,
            "{}: the router half-closed the node's connection",
            String::from_utf8_lossy(raw)
        );
    }
}
