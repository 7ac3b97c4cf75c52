//! router-agent's `/metrics`: its counters and the node's state in the Prometheus text format.

mod agent_support;
mod support;

use agent_support::Fakes;
use support::scrape::http_get;
use support::wait_until;

/// `/metrics` of the agent at `addr`: must answer 200.
async fn metrics(addr: std::net::SocketAddr) -> String {
    let reply = http_get(addr, "/metrics").await;
    assert_eq!(reply.status, 200, "{}", reply.head);
    reply.body
}

fn value(text: &str, series: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_show_reports_connected_routers_and_node_state() {
    let fakes = Fakes::start("busy").await;
    let agent = fakes
        .reporting_agent(&["--metrics", "127.0.0.1:0", "--node-id", "app-1"])
        .await;
    let addr = agent.metrics_addr().expect("metrics listener");

    let text = metrics(addr).await;
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

    fakes.stats.stop().await;
    wait_until("stats errors and node_up 0 in /metrics", || {
        let c = agent.counters();
        c.stats_errors.load(std::sync::atomic::Ordering::Relaxed) > 0
            && c.node_up.load(std::sync::atomic::Ordering::Relaxed) == 0
    })
    .await;
    let text = metrics(addr).await;
    assert!(
        value(&text, "uwsgi_router_agent_stats_errors_total") >= Some(1),
        "{text}"
    );
    assert_eq!(
        value(&text, "uwsgi_router_agent_node_up"),
        Some(0),
        "{text}"
    );
    assert_eq!(http_get(addr, "/readyz").await.status, 200);
    agent.shutdown().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the metrics listener closes with the agent"
    );
}
