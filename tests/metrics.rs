//! `/metrics` of a live router after real traffic: request counts by pool, node and outcome match
//! what was sent (ok, 502, 503, 504, malformed), and the node gauges match the cluster.

mod support;

use std::time::Duration;

use support::ports::free_addr;
use support::scrape::*;
use support::*;
use tokio::io::AsyncWriteExt;
use uwsgi_router::clock::now_ms;
use uwsgi_router::metrics::Origin;
use uwsgi_router::node::{AdminState, LoadReport, Node};

/// Failures never eject in these pools, so that every request meets the same node.
const NO_EJECTION: &str = "[pools.{}.ejection]\nconsecutive_failures = 1000\n";

fn pool(name: &str, extra: &str, nodes: &[String]) -> String {
    let list: Vec<String> = nodes.iter().map(|n| format!("\"{n}\"")).collect();
    format!(
        "[pools.{name}]\nalgorithm = \"round-robin\"\nnodes = [{}]\n{extra}{}\n[[routes]]\nhost = \"{name}.test\"\npool = \"{name}\"\n",
        list.join(", "),
        NO_EJECTION.replace("{}", name)
    )
}

async fn send_to(addr: &str, pool: &str, n: usize, status: u16) {
    for i in 0..n {
        let r = send(addr, &get(&format!("{pool}.test"), &format!("/{i}")), b"").await;
        assert_eq!(r.status, status, "{pool} request {i}: {}", r.text());
    }
}

#[tokio::test]
async fn request_counts_match_what_was_sent_by_outcome() {
    let ok = FakeNode::start("ok", Behaviour::Echo).await;
    let closer = FakeNode::start("closer", Behaviour::CloseSilently).await;
    let hang = FakeNode::start("hang", Behaviour::Hang).await;
    let (dead1, dead2) = (free_addr(), free_addr());
    let toml = format!(
        "default_pool = \"m_ok\"\n[limits]\nmax_vars_size = 1024\n[timeouts]\nfirst_byte = \"300ms\"\n{}{}{}{}{}",
        pool("m_ok", "", &[ok.addr.to_string()]),
        pool("m_broken", "connect_attempts = 1\n", &[closer.addr.to_string()]),
        pool("m_slow", "", &[hang.addr.to_string()]),
        pool("m_dead", "connect_attempts = 2\n", &[dead1.to_string(), dead2.to_string()]),
        pool("m_empty", "", &[]),
    );
    let router = start_router(&toml).await;
    let addr = router.local_addrs()[0].clone();

    send_to(&addr, "m_ok", 5, 200).await;
    send_to(&addr, "m_broken", 3, 502).await;
    send_to(&addr, "m_slow", 2, 504).await;
    send_to(&addr, "m_dead", 2, 502).await;
    send_to(&addr, "m_empty", 2, 503).await;
    let oversize = [0u8, 0x10, 0x27, 0]; // datasize 10000 > max_vars_size 1024
    for _ in 0..2 {
        let reply = send_raw(&addr, &oversize).await;
        assert!(reply.is_empty(), "a malformed packet gets no reply");
    }

    let m = scrape(&router).await;
    let requests = "uwsgi_router_requests_total";
    let node = |n: &FakeNode| n.addr.to_string();
    let count = |pool: &str, node: &str, outcome: &str| {
        let mut labels = vec![("pool", pool), ("outcome", outcome)];
        if !node.is_empty() {
            labels.push(("node", node));
        }
        m.get(requests, &labels)
    };
    assert_eq!(count("m_ok", &node(&ok), "2xx"), Some(5.0), "{}", m.text);
    assert_eq!(
        count("m_ok", &node(&ok), "504"),
        Some(0.0),
        "outcomes start at 0"
    );
    assert_eq!(count("m_broken", &node(&closer), "502"), Some(3.0));
    assert_eq!(count("m_slow", &node(&hang), "504"), Some(2.0));
    assert_eq!(
        m.sum(requests, &[("pool", "m_dead"), ("outcome", "502")]),
        2.0
    );
    assert_eq!(
        count("m_empty", "", "503"),
        Some(2.0),
        "503: no node, so no node label"
    );
    let total: f64 = m
        .samples
        .iter()
        .filter(|s| s.name == requests && s.labels.get("pool").is_some_and(|p| p.starts_with("m_")))
        .map(|s| s.value)
        .sum();
    assert_eq!(total, 14.0, "every request counted once");

    // Per-pool series from the recorder.
    let pool_label = |p| [("pool", p)];
    let duration_count = "uwsgi_router_request_duration_seconds_count";
    assert_eq!(m.get(duration_count, &pool_label("m_ok")), Some(5.0));
    assert_eq!(m.get(duration_count, &pool_label("m_slow")), Some(2.0));
    let slow_sum = m.get(
        "uwsgi_router_request_duration_seconds_sum",
        &pool_label("m_slow"),
    );
    assert!(
        slow_sum.unwrap() >= 0.6,
        "two 300 ms timeouts: {slow_sum:?}"
    );
    let le_1ms = [("pool", "m_slow"), ("le", "0.001")];
    assert_eq!(
        m.get("uwsgi_router_request_duration_seconds_bucket", &le_1ms),
        Some(0.0)
    );
    let le_60 = [("pool", "m_slow"), ("le", "60")];
    assert_eq!(
        m.get("uwsgi_router_request_duration_seconds_bucket", &le_60),
        Some(2.0)
    );
    let connects = "uwsgi_router_upstream_connect_duration_seconds_count";
    assert_eq!(m.get(connects, &pool_label("m_ok")), Some(5.0));
    assert_eq!(
        m.get(connects, &pool_label("m_dead")),
        Some(0.0),
        "none succeeded"
    );
    let retries = |pool: &str| {
        m.get(
            "uwsgi_router_retries_total",
            &[("pool", pool), ("reason", "connect_failure")],
        )
    };
    assert_eq!(retries("m_dead"), Some(2.0));
    assert_eq!(retries("m_ok"), Some(0.0));
    let failures = "uwsgi_router_node_failures_total";
    assert_eq!(
        m.get(failures, &[("pool", "m_broken"), ("node", &node(&closer))]),
        Some(0.0),
        "a node that drops requests but accepts connections is not blamed"
    );
    assert_eq!(
        m.get("uwsgi_router_request_drops_total", &pool_label("m_broken")),
        Some(3.0)
    );
    assert_eq!(
        m.get(failures, &[("pool", "m_slow"), ("node", &node(&hang))]),
        Some(2.0),
        "timeouts are the node's"
    );
    assert_eq!(
        m.sum(failures, &[("pool", "m_dead")]),
        4.0,
        "two attempts per request"
    );
    let malformed = [("kind", "vars_too_large")];
    assert_eq!(
        m.get("uwsgi_router_malformed_packets_total", &malformed),
        Some(2.0)
    );
    let build = m
        .matching("uwsgi_router_build_info", &[])
        .next()
        .expect("build info");
    assert_eq!(build.labels["version"], env!("CARGO_PKG_VERSION"));
    assert!(!build.labels["commit"].is_empty());
}

/// Opens a request to `pool` and returns the client connection, still waiting for its response.
async fn open_request(addr: &str, pool: &str) -> Box<dyn Stream> {
    let mut s = connect(addr).await;
    s.write_all(&get(&format!("{pool}.test"), "/held"))
        .await
        .unwrap();
    s
}

#[tokio::test]
async fn node_gauges_match_the_cluster() {
    let slow = FakeNode::start("slow", Behaviour::Slow(Duration::from_secs(3))).await;
    let a = FakeNode::start("a", Behaviour::Echo).await;
    let b = FakeNode::start("b", Behaviour::Echo).await;
    let dead = free_addr();
    let toml = format!(
        "default_pool = \"g_web\"\n{}{}[pools.g_dead]\nnodes = [\"{dead}\"]\nconnect_attempts = 1\n[[routes]]\nhost = \"g_dead.test\"\npool = \"g_dead\"\n[pools.g_dead.ejection]\nconsecutive_failures = 1\nbase_time = \"1m\"\nmax_time = \"1m\"\n",
        pool("g_slow", "", &[slow.addr.to_string()]),
        pool("g_web", "", &[a.addr.to_string(), b.addr.to_string()]),
    );
    let router = start_router(&toml).await;
    let addr = router.local_addrs()[0].clone();
    let cluster = router.cluster().clone();

    // One request held in flight on the slow node.
    let mut held = open_request(&addr, "g_slow").await;
    slow.wait_served(1).await;
    // One node drained, one ejected, one reporting its load as an agent would.
    let web = cluster.pool("g_web").unwrap();
    let b_id = b.addr.to_string();
    let b_node = web.node(&b_id).unwrap();
    assert!(cluster.drain(&b_id));
    // With nothing in flight, the maintenance tick moves it on to drained.
    wait_until("b to drain", || b_node.admin_state() == AdminState::Drained).await;
    let a_node = web.node(&a.addr.to_string()).unwrap();
    let report = LoadReport {
        capacity: 8,
        busy: 3,
        queue: 2,
        weight: None,
    };
    a_node.record_report(&report, now_ms(), Duration::from_secs(60));
    send_to(&addr, "g_dead", 1, 502).await;

    let m = scrape(&router).await;
    let at = |name: &str, pool: &str, node: &Node| node_value(&m, name, pool, node);
    let slow_node = cluster
        .pool("g_slow")
        .unwrap()
        .node(&slow.addr.to_string())
        .unwrap();
    assert_eq!(slow_node.in_flight(), 1);
    for p in cluster.pools() {
        for n in p.snapshot().nodes.iter() {
            let in_flight = at("uwsgi_router_node_in_flight_requests", &p.name, n);
            assert_eq!(in_flight, Some(f64::from(n.in_flight())), "{}", n.id());
            let weight = at("uwsgi_router_node_weight", &p.name, n);
            assert_eq!(weight, Some(f64::from(n.weight())));
        }
    }
    assert_eq!(
        at("uwsgi_router_node_in_flight_requests", "g_slow", &slow_node),
        Some(1.0)
    );
    assert_eq!(
        at("uwsgi_router_node_busy_workers", "g_web", &a_node),
        Some(3.0)
    );
    assert_eq!(at("uwsgi_router_node_workers", "g_web", &a_node), Some(8.0));
    assert_eq!(
        at("uwsgi_router_node_listen_queue", "g_web", &a_node),
        Some(2.0)
    );
    let age = at("uwsgi_router_node_report_age_seconds", "g_web", &a_node).unwrap();
    assert!((0.0..5.0).contains(&age), "report age {age}");
    assert_eq!(
        at("uwsgi_router_node_workers", "g_web", &b_node),
        None,
        "b never reported"
    );

    let nodes =
        |pool: &str, state: &str| m.get("uwsgi_router_nodes", &[("pool", pool), ("state", state)]);
    // a takes requests but is still in its slow start (10 s by default): joining, as routerctl says.
    assert_eq!(nodes("g_web", "joining"), Some(1.0));
    assert_eq!(nodes("g_web", "active"), Some(0.0));
    assert_eq!(nodes("g_web", "drained"), Some(1.0));
    assert_eq!(nodes("g_web", "draining"), Some(0.0));
    assert_eq!(nodes("g_web", "ejected"), Some(0.0));
    assert_eq!(nodes("g_dead", "ejected"), Some(1.0));
    assert_eq!(nodes("g_dead", "active"), Some(0.0));
    let state = |node: &str, state: &str| {
        m.get(
            "uwsgi_router_node_state",
            &[("pool", "g_web"), ("node", node), ("state", state)],
        )
    };
    assert_eq!(state(&b_id, "drained"), Some(1.0));
    assert_eq!(state(&b_id, "active"), Some(0.0));
    let ejections = [("pool", "g_dead"), ("reason", "consecutive_failures")];
    assert_eq!(m.get("uwsgi_router_ejections_total", &ejections), Some(1.0));

    // The held request completes: in flight drops to 0, and it is counted.
    let mut raw = Vec::new();
    tokio::time::timeout(
        STEP,
        tokio::io::AsyncReadExt::read_to_end(&mut held, &mut raw),
    )
    .await
    .expect("the slow node answers")
    .unwrap();
    assert!(raw.starts_with(b"HTTP/1.1 200"));
    drop(held);
    // The client has its response a moment before the session records its end.
    let m = wait_for("in flight to drop to 0", STEP, async || {
        let m = scrape(&router).await;
        let in_flight = "uwsgi_router_node_in_flight_requests";
        (node_value(&m, in_flight, "g_slow", &slow_node) == Some(0.0)).then_some(m)
    })
    .await;
    let ok = [
        ("pool", "g_slow"),
        ("node", slow_node.id()),
        ("outcome", "2xx"),
    ];
    assert_eq!(m.get("uwsgi_router_requests_total", &ok), Some(1.0));
}

fn node_value(m: &Scrape, name: &str, pool: &str, node: &Node) -> Option<f64> {
    m.get(name, &[("pool", pool), ("node", node.id())])
}

#[tokio::test]
async fn each_family_has_one_help_and_type_line() {
    let node = FakeNode::start("a", Behaviour::Echo).await;
    let router = start_router(&pool_toml("round-robin", &[&node])).await;
    send_to_default(&router).await;
    let m = scrape(&router).await;
    let mut seen = std::collections::BTreeMap::new();
    for line in m.text.lines().filter(|l| l.starts_with("# ")) {
        let mut words = line.split_whitespace();
        let (kind, name) = (words.nth(1).unwrap(), words.next().unwrap());
        *seen.entry((kind.to_owned(), name.to_owned())).or_insert(0) += 1;
    }
    for ((kind, name), n) in &seen {
        assert_eq!(*n, 1, "# {kind} {name} appears {n} times");
    }
    let families = uwsgi_router::metrics::FAMILIES;
    for (_, name) in seen.keys() {
        assert!(
            families.iter().any(|f| f.name == name),
            "{name} is exported but not in metrics::FAMILIES"
        );
    }
    for f in families.iter().filter(|f| f.origin == Origin::Cluster) {
        let help = ("HELP".to_owned(), f.name.to_owned());
        assert!(seen.contains_key(&help), "{} has no HELP line", f.name);
    }
}

async fn send_to_default(router: &uwsgi_router::daemon::Daemon) {
    let r = send(&router.local_addrs()[0], &get("h", "/"), b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
}
