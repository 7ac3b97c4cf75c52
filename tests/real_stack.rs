//! The real stack, as an operator deploys it: a browser's requests go through nginx, which passes
//! them as uwsgi packets to routerd (over TCP and over a UNIX socket), which balances them over
//! three uWSGI nodes running a Django site. Needs nginx, uWSGI and Django: `bash tests/run.sh`
//! installs them.

#[path = "real_stack/content.rs"]
mod content;
#[path = "real_stack/http.rs"]
mod http;
#[path = "real_stack/load.rs"]
mod load;
#[path = "real_stack/nginx.rs"]
mod nginx;
#[path = "real_stack/routerd.rs"]
mod routerd;
#[path = "real_stack/stack.rs"]
mod stack;
mod support;
#[path = "real_stack/uwsgi.rs"]
mod uwsgi;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use content::PatternCheck;
use http::Response;
use load::{Load, Sent};
use stack::Stack;
use support::scrape::Scrape;

/// The site's host name, as a browser would send it.
const HOST: &str = "shop.example.test";

#[test]
fn nginx_serves_django_through_routerd_over_tcp_and_unix() {
    let stack = Stack::start(3);
    for (via, addr) in stack.entrances() {
        get_echo_reports_the_request(via, addr);
        post_of_10_mb_reaches_django_whole(via, addr);
        stream_of_100_mb_arrives_whole(via, addr);
        django_404_passes_through(via, addr);
        requests_spread_over_every_node(via, addr, &["node1", "node2", "node3"]);
    }
}

#[test]
fn a_killed_node_costs_no_failed_request() {
    let mut stack = Stack::start(3);
    let (_, tcp) = stack.entrances()[0];
    requests_spread_over_every_node("tcp", tcp, &["node1", "node2", "node3"]);

    stack.node_mut("node2").kill();

    // Every request must still succeed: a refused connect is retried on another node before
    // any byte of the request was sent, and the dead node is then ejected.
    let mut answered_by = BTreeMap::new();
    for i in 0..20 {
        let (via, addr) = stack.entrances()[i % 2];
        let reply = get(addr, &format!("/echo/after-kill/{i}"));
        assert_eq!(
            reply.head.status,
            200,
            "request {i} via {via} after node2 died: {}",
            reply.text()
        );
        *answered_by.entry(echo_field(&reply, "node")).or_insert(0) += 1;
    }
    assert!(
        !answered_by.contains_key("node2"),
        "a dead node answered: {answered_by:?}"
    );
    for survivor in ["node1", "node3"] {
        assert!(
            answered_by.contains_key(survivor),
            "{survivor} got no request after node2 died: {answered_by:?}"
        );
    }
}

#[test]
fn a_node_killed_under_load_costs_no_get() {
    const CLIENTS: usize = 8;
    const MAX_REQUESTS: usize = 3000;
    const KILL_AFTER: usize = 300;
    let mut stack = Stack::start(3);
    let entrances = stack.entrances().map(|(_, addr)| addr);
    let load = Load::start(
        &entrances,
        HOST,
        CLIENTS,
        MAX_REQUESTS,
        Duration::from_secs(30),
    );
    support::wait::poll_for(
        format!("{KILL_AFTER} requests through the stack"),
        Duration::from_secs(20),
        || (load.done() >= KILL_AFTER).then_some(()),
    );

    // SIGKILL to node2's master and workers while requests are in flight on it: a request it
    // had taken is cut before any response byte and must be resent to another node; a connect
    // it refuses, retried elsewhere.
    let in_group = stack.node_mut("node2").kill();
    let killed = Instant::now();
    assert!(
        in_group >= 3,
        "node2's group had {in_group} processes, not its master and 2 workers"
    );
    let sent = load.finish();

    let failed: Vec<&Sent> = sent.iter().filter(|s| !s.ok()).collect();
    let after: Vec<&Sent> = sent.iter().filter(|s| s.at >= killed).collect();
    let by_node = |sent: &[&Sent]| {
        let mut by = BTreeMap::new();
        for s in sent {
            *by.entry(s.node().unwrap_or("none").to_owned()).or_insert(0) += 1;
        }
        by
    };
    let before: Vec<&Sent> = sent.iter().filter(|s| s.at < killed).collect();
    let (before_by, after_by) = (by_node(&before), by_node(&after));
    let scrape = stack.routerd.scrape();
    let resent = scrape.sum(
        "uwsgi_router_retries_total",
        &[("pool", "default"), ("reason", "reset_before_response")],
    );
    let refused = scrape.sum(
        "uwsgi_router_retry_budget_exhausted_total",
        &[("pool", "default")],
    );
    eprintln!(
        "{} GETs, {} failed; {} sent before the kill {before_by:?}, {} after {after_by:?}; \
         {resent} resent after a reset, {refused} resends refused by the retry budget",
        sent.len(),
        failed.len(),
        before.len(),
        after.len()
    );
    let first: Vec<String> = failed
        .iter()
        .take(5)
        .map(|s| format!("{}: {:?}", s.path, s.reply))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} GETs failed, the first: {first:#?}",
        failed.len(),
        sent.len()
    );
    assert!(
        before_by.contains_key("node2"),
        "node2 answered nothing before it was killed: {before_by:?}"
    );
    assert!(
        after.len() >= KILL_AFTER,
        "only {} GETs were sent after the kill",
        after.len()
    );
    assert!(
        !after_by.contains_key("node2"),
        "the dead node answered GETs sent after the kill: {after_by:?}"
    );
    for survivor in ["node1", "node3"] {
        assert!(
            after_by.contains_key(survivor),
            "{survivor} got no GET after node2 died: {after_by:?}"
        );
    }
}

#[test]
fn django_500s_are_counted_as_5xx_and_eject_no_node() {
    const FAILS: usize = 12;
    let stack = Stack::start(3);
    let mut answered_by = BTreeMap::new();
    for i in 0..FAILS {
        let (via, addr) = stack.entrances()[i % 2];
        let reply = get(addr, &format!("/fail/{i}"));
        assert_eq!(
            reply.head.status,
            500,
            "/fail/{i} via {via}: {}",
            reply.text()
        );
        *answered_by.entry(echo_field(&reply, "node")).or_insert(0) += 1;
    }
    assert_eq!(
        answered_by.len(),
        3,
        "500s from every node: {answered_by:?}"
    );

    // A session is recorded once it ends, which may be just after nginx relayed its response.
    let pool_5xx = |scrape: &Scrape| {
        scrape.sum(
            "uwsgi_router_requests_total",
            &[("pool", "default"), ("outcome", "5xx")],
        )
    };
    let scrape = support::wait::poll_for(
        format!("{FAILS} 5xx requests in routerd's metrics"),
        Duration::from_secs(10),
        || {
            let scrape = stack.routerd.scrape();
            (pool_5xx(&scrape) >= FAILS as f64).then_some(scrape)
        },
    );
    assert_eq!(pool_5xx(&scrape), FAILS as f64, "{}", scrape.text);
    // Ejection on 5xx answers is off by default (`consecutive_5xx = 0`): every node stays in.
    for node in stack.nodes.iter().map(|n| n.addr.to_string()) {
        let labels = [
            ("pool", "default"),
            ("node", node.as_str()),
            ("state", "active"),
        ];
        assert_eq!(
            scrape.get("uwsgi_router_node_state", &labels),
            Some(1.0),
            "node {node} is not active after answering 500s:\n{}",
            scrape.text
        );
    }
    // ... and the next requests still go to all three.
    for (via, addr) in stack.entrances() {
        requests_spread_over_every_node(via, addr, &["node1", "node2", "node3"]);
    }
}

fn get_echo_reports_the_request(via: &str, addr: SocketAddr) {
    let reply = get(addr, "/echo/x");
    assert_eq!(
        reply.head.status,
        200,
        "GET /echo/x via {via}: {}",
        reply.text()
    );
    assert_eq!(
        reply.head.header("content-type"),
        Some("text/plain"),
        "via {via}"
    );
    assert_eq!(echo_field(&reply, "method"), "GET", "via {via}");
    assert_eq!(echo_field(&reply, "path"), "/echo/x", "via {via}");
    assert_eq!(echo_field(&reply, "host"), HOST, "via {via}");
    assert_eq!(echo_field(&reply, "body_length"), "0", "via {via}");
}

fn post_of_10_mb_reaches_django_whole(via: &str, addr: SocketAddr) {
    let body = content::pattern(10 * 1024 * 1024);
    let reply = http::request(addr, "POST", "/echo/upload", HOST, &body)
        .unwrap_or_else(|e| panic!("POST 10 MB via {via}: {e}"));
    assert_eq!(
        reply.head.status,
        200,
        "POST 10 MB via {via}: {}",
        reply.text()
    );
    assert_eq!(echo_field(&reply, "method"), "POST", "via {via}");
    assert_eq!(echo_field(&reply, "body_length"), "10485760", "via {via}");
    let crc = format!("{:08x}", content::crc32(&body));
    assert_eq!(
        echo_field(&reply, "body_crc32"),
        crc,
        "POST body altered on the way, via {via}"
    );
}

fn stream_of_100_mb_arrives_whole(via: &str, addr: SocketAddr) {
    const SIZE: u64 = 100 * 1024 * 1024;
    let mut check = PatternCheck::new();
    let head = http::request_streamed(
        addr,
        "GET",
        &format!("/stream/{SIZE}"),
        HOST,
        &[],
        |piece| check.feed(piece),
    )
    .unwrap_or_else(|e| {
        panic!(
            "GET /stream/{SIZE} via {via} after {} bytes: {e}",
            check.seen
        )
    });
    assert_eq!(head.status, 200, "GET /stream/{SIZE} via {via}");
    assert_eq!(check.seen, SIZE, "streamed body length via {via}");
    assert_eq!(
        check.first_mismatch, None,
        "streamed body corrupted via {via}"
    );
}

fn django_404_passes_through(via: &str, addr: SocketAddr) {
    let reply = get(addr, "/no/such/page");
    assert_eq!(reply.head.status, 404, "via {via}: {}", reply.text());
    let text = reply.text();
    assert!(
        text.contains("<h1>Not Found</h1>")
            && text.contains("The requested resource was not found on this server."),
        "not Django's 404 page via {via}: {text}"
    );
}

/// Sends 30 requests and checks that each of `nodes` answered at least one.
fn requests_spread_over_every_node(via: &str, addr: SocketAddr, nodes: &[&str]) {
    let mut answered_by = BTreeMap::new();
    for i in 0..30 {
        let reply = get(addr, &format!("/echo/spread/{i}"));
        assert_eq!(
            reply.head.status,
            200,
            "request {i} via {via}: {}",
            reply.text()
        );
        *answered_by.entry(echo_field(&reply, "node")).or_insert(0) += 1;
    }
    for node in nodes {
        assert!(
            answered_by.contains_key(*node),
            "{node} answered none of 30 requests via {via}: {answered_by:?}"
        );
    }
}

fn get(addr: SocketAddr, path: &str) -> Response {
    http::request(addr, "GET", path, HOST, &[])
        .unwrap_or_else(|e| panic!("GET {path} via {addr}: {e}"))
}

/// A `key=value` line of the echo view's answer.
fn echo_field(reply: &Response, key: &str) -> String {
    let text = reply.text();
    let prefix = format!("{key}=");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {key}= in the echo reply: {text}"))
        .to_owned()
}

/// Sends a raw uwsgi request straight to routerd's TCP listener, as any uwsgi client may, and
/// returns what comes back.
fn uwsgi_request(stack: &Stack, vars: &[(&str, &str)]) -> Response {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(stack.routerd.tcp).expect("connect to routerd");
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    s.write_all(&support::packet::packet(vars)).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("routerd answers and closes");
    Response::parse(&raw).unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&raw)))
}

fn echo_vars<'a>(hosts: &[&'a str], cookie: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut vars = vec![
        ("REQUEST_METHOD", "GET"),
        ("REQUEST_URI", "/echo/hostile"),
        ("PATH_INFO", "/echo/hostile"),
        ("QUERY_STRING", ""),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("SERVER_NAME", "_"),
        ("SERVER_PORT", "80"),
        ("REMOTE_ADDR", "127.0.0.1"),
    ];
    vars.extend(hosts.iter().map(|h| ("HTTP_HOST", *h)));
    if !cookie.is_empty() {
        vars.push(("HTTP_COOKIE", cookie));
    }
    vars
}

#[test]
fn a_duplicated_host_is_routed_by_the_one_django_sees() {
    let stack = Stack::start(3);
    // `edge.test` goes to node3 alone; the default pool spreads over all three.
    for (hosts, seen) in [
        (&[HOST, "edge.test"], "edge.test"),
        (&["edge.test", HOST], HOST),
    ] {
        for i in 0..6 {
            let reply = uwsgi_request(&stack, &echo_vars(hosts, ""));
            assert_eq!(reply.head.status, 200, "{hosts:?} #{i}: {}", reply.text());
            assert_eq!(
                echo_field(&reply, "host"),
                seen,
                "uWSGI lets the later var win"
            );
            if seen == "edge.test" {
                assert_eq!(
                    echo_field(&reply, "node"),
                    "node3",
                    "routed by the host Django saw"
                );
            }
        }
    }
}

#[test]
fn requests_uwsgi_refuses_do_not_eject_healthy_nodes() {
    let stack = Stack::start(3);
    // Over the nodes' 32 KiB buffer-size: uWSGI drops each ("invalid request block size").
    let cookie = "c".repeat(40 * 1024);
    for i in 0..12 {
        let reply = uwsgi_request(&stack, &echo_vars(&[HOST], &cookie));
        assert_eq!(
            reply.head.status,
            502,
            "oversize request {i}: {}",
            reply.text()
        );
    }
    // Every node got at least three in a row (round robin): none may be ejected for it.
    for (via, addr) in stack.entrances() {
        requests_spread_over_every_node(via, addr, &["node1", "node2", "node3"]);
    }
}
