//! Each refusal is counted as what it is: an agent without the registry's token is a refused
//! registration, a routerctl call without the admin token is a refused Admin call, and load
//! reports that come too fast are dropped reports, not refused registrations.

mod support;

use std::time::Duration;

use support::binary::Routerd;
use support::registry_client::{announce, NodeSession};
use support::scrape::{http_get, Scrape};
use support::*;
use tonic::Request;
use uwsgi_router::api::admin_client::AdminClient;
use uwsgi_router::api::router_message::Msg as R;
use uwsgi_router::api::ListPoolsRequest;

const REGISTRY_TOKEN: &str = "registry-0123456789abcdef0123456789";
const ADMIN_TOKEN: &str = "admin-0123456789abcdef0123456789abc";

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn refusals_are_counted_by_what_was_refused() {
    let node = FakeNode::start("a", Behaviour::Echo).await;
    let dir = tempfile::tempdir().unwrap();
    let (registry_file, admin_file) = (dir.path().join("registry"), dir.path().join("admin"));
    std::fs::write(&registry_file, REGISTRY_TOKEN).unwrap();
    std::fs::write(&admin_file, ADMIN_TOKEN).unwrap();
    let (metrics, control) = (free_port(), free_port());
    let mut router = Routerd::start(&format!(
        "default_pool = \"\"\n[metrics]\nlisten = \"127.0.0.1:{metrics}\"\n[control]\nlisten = \"127.0.0.1:{control}\"\n\
         registry_token_files = [\"{}\"]\nadmin_token_files = [\"{}\"]\nmin_report_interval = \"10s\"\n\
         [pools.web]\nnodes = []\n",
        registry_file.display(),
        admin_file.display()
    ))
    .await;
    let control_addr = format!("127.0.0.1:{control}").parse().unwrap();

    // routerctl with the registry's token: refused by the Admin API.
    let mut admin = AdminClient::connect(format!("http://127.0.0.1:{control}"))
        .await
        .unwrap();
    let mut call = Request::new(ListPoolsRequest {});
    call.metadata_mut().insert(
        "authorization",
        format!("Bearer {REGISTRY_TOKEN}").parse().unwrap(),
    );
    let err = admin.list_pools(call).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);

    // An agent with the admin token: a refused registration.
    let a = announce("n1", "web", &node.addr.to_string());
    let err = NodeSession::open(control_addr, Some(ADMIN_TOKEN), a.clone())
        .await
        .err()
        .expect("the admin token is not the registry's");
    assert_eq!(err.code(), tonic::Code::Unauthenticated);

    // An agent that reports far faster than min_report_interval: its extra reports are dropped.
    let (session, first) = NodeSession::open(control_addr, Some(REGISTRY_TOKEN), a)
        .await
        .unwrap();
    assert!(matches!(first, R::Accepted(_)), "{first:?}");
    for _ in 0..6 {
        session.report(1, 1, 0).await;
    }

    let metrics_addr = format!("127.0.0.1:{metrics}").parse().unwrap();
    let scrape = || async { Scrape::parse(&http_get(metrics_addr, "/metrics").await.body) };
    let mut m = scrape().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    // Reports travel on the session's stream: wait until the router has read them.
    while m.sum("uwsgi_router_load_reports_dropped_total", &[]) < 5.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the fast reports were never counted as dropped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        m = scrape().await;
    }
    let rejections = |reason: &str| {
        m.get(
            "uwsgi_router_registration_rejections_total",
            &[("reason", reason)],
        )
        .unwrap_or(0.0)
    };
    assert_eq!(
        rejections("unauthenticated"),
        1.0,
        "the agent, not routerctl"
    );
    assert_eq!(
        rejections("rate_limited"),
        0.0,
        "dropped reports refuse no node"
    );
    assert_eq!(
        m.get(
            "uwsgi_router_admin_calls_refused_total",
            &[("reason", "unauthenticated")]
        ),
        Some(1.0)
    );
    assert_eq!(
        m.sum("uwsgi_router_load_reports_dropped_total", &[]),
        5.0,
        "every report after the first within the interval"
    );
    drop(session);
    router.signal("TERM");
    router.wait_exit(Duration::from_secs(10)).await;
}
