//! The access log as an operator sees it: the real routerd writing one line per request to a file
//! (JSON, every field) or to stderr (combined), with the id the node got, and following the file
//! when logrotate renames it and sends SIGUSR1.

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use support::binary::Routerd;
use support::request_id::split_request_id;
use support::*;
use tokio::time::Instant;
use uwsgi_router::protocol::encode_packet;

/// Pools `default` (over `node`) and `empty` (no node, for a 503), and the access log `log`.
fn config(node: &FakeNode, log: &str) -> String {
    format!(
        "[pools.default]\nnodes = [\"{}\"]\n[pools.empty]\n\
         [[routes]]\nhost = \"empty.test\"\npool = \"empty\"\n[access_log]\nenabled = true\n{log}",
        node.addr
    )
}

/// Waits until the file at `path` has at least `n` lines, and returns them.
async fn lines(path: &Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + STEP;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "{n} lines in {}: {text}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn get_with_id(host: &str, id: &str) -> Vec<u8> {
    let vars: Vec<(&[u8], &[u8])> = vec![
        (b"REQUEST_METHOD", b"GET"),
        (b"REQUEST_URI", b"/given?x=1"),
        (b"SERVER_PROTOCOL", b"HTTP/1.1"),
        (b"REMOTE_ADDR", b"192.0.2.9"),
        (b"HTTP_HOST", host.as_bytes()),
        (b"HTTP_X_REQUEST_ID", id.as_bytes()),
    ];
    encode_packet(0, 0, vars).unwrap().to_vec()
}

fn response_len(r: &Response) -> u64 {
    (r.head.len() + 4 + r.body.len()) as u64
}

#[tokio::test]
async fn each_request_is_one_json_line_with_every_field() {
    let node = FakeNode::start("a", Behaviour::Echo).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    let router = Routerd::start(&config(&node, &format!("path = \"{}\"\n", path.display()))).await;

    let made = request("POST", "app.test", "/upload", 5);
    let ok = send(&router.addr, &made, b"hello").await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    let (_, node_id) = split_request_id(&node.last_request.lock().unwrap());
    let given = get_with_id("app.test", "from-nginx-42");
    let passed = send(&router.addr, &given, b"").await;
    assert_eq!(
        &node.last_request.lock().unwrap()[..],
        given,
        "passed on unchanged"
    );
    let refused = send(&router.addr, &get("empty.test", "/x"), b"").await;
    assert_eq!(refused.status, 503);

    let lines = lines(&path, 3).await;
    let v: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let fields = [
        "time",
        "client",
        "method",
        "host",
        "uri",
        "protocol",
        "status",
        "bytes_in",
        "bytes_out",
        "duration",
        "connect",
        "first_byte",
        "pool",
        "node",
        "attempts",
        "outcome",
        "request_id",
        "referer",
        "user_agent",
    ];
    for line in &v {
        for f in fields {
            assert!(line.get(f).is_some(), "{f} missing: {line}");
        }
        assert!(line["time"].as_str().unwrap().ends_with('Z'), "{line}");
        assert!(line["duration"].as_f64().unwrap() >= 0.0);
    }
    let node_addr = node.addr.to_string();
    let (a, b, c) = (&v[0], &v[1], &v[2]);
    assert_eq!(
        (a["method"].as_str(), a["uri"].as_str()),
        (Some("POST"), Some("/upload"))
    );
    assert_eq!(
        (a["client"].as_str(), a["host"].as_str()),
        (Some("127.0.0.1"), Some("app.test"))
    );
    assert_eq!(a["status"].as_u64(), Some(200), "the node's status: {a}");
    assert_eq!(a["bytes_in"].as_u64(), Some(made.len() as u64 + 5));
    assert_eq!(a["bytes_out"].as_u64(), Some(response_len(&ok)));
    assert!(
        a["connect"].as_f64().is_some() && a["first_byte"].as_f64().is_some(),
        "{a}"
    );
    assert_eq!(
        (a["pool"].as_str(), a["node"].as_str()),
        (Some("default"), Some(&*node_addr))
    );
    assert_eq!(
        (a["attempts"].as_u64(), a["outcome"].as_str()),
        (Some(1), Some("responded"))
    );
    assert_eq!(
        a["request_id"].as_str(),
        Some(&*node_id),
        "the id the node got"
    );

    assert_eq!(b["request_id"], "from-nginx-42");
    assert_eq!(
        (b["client"].as_str(), b["uri"].as_str()),
        (Some("192.0.2.9"), Some("/given?x=1"))
    );
    assert_eq!(b["bytes_out"].as_u64(), Some(response_len(&passed)));

    assert_eq!(
        (c["status"].as_u64(), c["outcome"].as_str()),
        (Some(503), Some("no_node"))
    );
    assert_eq!(
        (c["pool"].as_str(), c["attempts"].as_u64()),
        (Some("empty"), Some(0))
    );
    assert!(c["node"].is_null() && c["connect"].is_null() && c["first_byte"].is_null());
    let id = c["request_id"].as_str().unwrap();
    assert!(
        refused.text().ends_with(&format!("request id: {id}\n")),
        "{}",
        refused.text()
    );
    assert_eq!(c["bytes_out"].as_u64(), Some(response_len(&refused)));
}

#[tokio::test]
async fn sigusr1_reopens_the_file_logrotate_renamed() {
    let node = FakeNode::start("a", Behaviour::Echo).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    let mut router =
        Routerd::start(&config(&node, &format!("path = \"{}\"\n", path.display()))).await;
    send(&router.addr, &get("app.test", "/before"), b"").await;
    lines(&path, 1).await;

    let rotated = dir.path().join("access.log.1");
    std::fs::rename(&path, &rotated).unwrap();
    send(&router.addr, &get("app.test", "/renamed"), b"").await;
    lines(&rotated, 2).await;
    router.signal("USR1");
    router.wait_log("access log reopened", 1, STEP).await;
    send(&router.addr, &get("app.test", "/after"), b"").await;

    let new = lines(&path, 1).await;
    assert!(new[0].contains("\"/after\""), "{new:?}");
    let old = std::fs::read_to_string(&rotated).unwrap();
    assert!(
        old.contains("\"/before\"") && old.contains("\"/renamed\""),
        "{old}"
    );
    assert!(!old.contains("/after"), "{old}");
}

#[tokio::test]
async fn to_stderr_in_combined_format_next_to_routerds_own_lines() {
    let node = FakeNode::start("a", Behaviour::Echo).await;
    let mut router = Routerd::start(&config(&node, "format = \"combined\"\n")).await;
    send(&router.addr, &get_with_id("app.test", "abc"), b"").await;
    router.wait_log("192.0.2.9 - - [", 1, STEP).await;
    let line = router
        .stderr()
        .lines()
        .find(|l| l.starts_with("192.0.2.9 - - ["))
        .unwrap()
        .to_owned();
    assert!(
        line.contains("] \"GET /given?x=1 HTTP/1.1\" 200 "),
        "{line}"
    );
    assert!(line.contains(" pool=\"default\" "), "{line}");
    assert!(line.ends_with(" request_id=abc"), "{line}");
    // Off by default, and SIGUSR1 is harmless then.
    let mut quiet =
        Routerd::start(&format!("[pools.default]\nnodes = [\"{}\"]\n", node.addr)).await;
    send(&quiet.addr, &get_with_id("app.test", "abc"), b"").await;
    quiet.signal("USR1");
    quiet.wait_log("no access log to reopen", 1, STEP).await;
    assert!(!quiet.stderr().contains("192.0.2.9"), "{}", quiet.stderr());
}

#[tokio::test]
async fn a_reload_keeps_the_access_log_it_started_with() {
    let node = FakeNode::start("a", Behaviour::Echo).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    let mut router =
        Routerd::start(&config(&node, &format!("path = \"{}\"\n", path.display()))).await;
    router.rewrite(&config(&node, "format = \"combined\"\n"));
    router.signal("HUP");
    router.wait_log("[access_log]", 1, STEP).await;
    router.wait_log("config applied", 1, STEP).await;
    send(&router.addr, &get("app.test", "/after-reload"), b"").await;
    let lines = lines(&path, 1).await;
    let v: Value = serde_json::from_str(&lines[0]).expect("still JSON, to the same file");
    assert_eq!(v["uri"], "/after-reload");
}
