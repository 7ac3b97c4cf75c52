//! router-agent's `/metrics`: its counters and the node's state in the Prometheus text format.

mod agent_support;
mod support;

use agent_support::{AgentSetup, FakeRegistry, FakeStats};
use support::wait_until;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uwsgi_router::agent::Agent;

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut body = String::new();
    conn.read_to_string(&mut body).await.unwrap();
    body
}

fn value(text: &str, series: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_show_reports_connected_routers_and_node_state() {
    let stats = FakeStats::start("busy").await;
    let router = FakeRegistry::start().await;
    let setup = AgentSetup::new();
    let extra = ["--metrics", "127.0.0.1:0", "--node-id", "app-1"];
    let config = setup.config(&[router.url()], stats.addr, "127.0.0.1:3031", &extra);
    let agent = Agent::start(config).unwrap();
    let addr = agent.metrics_addr().expect("metrics listener");
    router.wait_report("a first report", |_| true).await;

    let text = get(addr, "/metrics").await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.contains("uwsgi_router_agent_info{node=\"app-1\",pool=\"web\""),
        "{text}"
    );
    assert!(
        value(&text, "uwsgi_router_agent_reports_sent_total") >= Some(1),
        "{text}"
    );
    assert_eq!(
        value(&text, "uwsgi_router_agent_connected_routers"),
        Some(1),
        "{text}"
    );
    assert_eq!(
        value(&text, "uwsgi_router_agent_node_up"),
        Some(1),
        "{text}"
    );
    assert_eq!(
        value(&text, "uwsgi_router_agent_node_busy_workers"),
        Some(2),
        "{text}"
    );

    stats.stop().await;
    wait_until("stats errors and node_up 0 in /metrics", || {
        let c = agent.counters();
        c.stats_errors.load(std::sync::atomic::Ordering::Relaxed) > 0
            && c.node_up.load(std::sync::atomic::Ordering::Relaxed) == 0
    })
    .await;
    let text = get(addr, "/metrics").await;
    assert!(
        value(&text, "uwsgi_router_agent_stats_errors_total") >= Some(1),
        "{text}"
    );
    assert_eq!(
        value(&text, "uwsgi_router_agent_node_up"),
        Some(0),
        "{text}"
    );
    assert!(get(addr, "/readyz").await.starts_with("HTTP/1.1 200"));
    agent.shutdown().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the metrics listener closes with the agent"
    );
}
