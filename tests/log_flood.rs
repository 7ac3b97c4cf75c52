//! A flood of bad input cannot flood the log: lines an attacker can trigger once per packet are
//! throttled per kind, each line that goes out says how many it stands for, and what was held
//! back is counted.

mod support;

use std::time::Duration;

use support::binary::Routerd;
use support::*;

const MALFORMED_LINE: &str = "malformed request packet";

#[tokio::test]
async fn a_thousand_malformed_packets_write_one_line_per_kind() {
    let node = FakeNode::start("a", Behaviour::Echo).await;
    let mut router = Routerd::start(&format!(
        "[control]\nlisten = \"\"\n{}",
        pool_toml("round-robin", &[&node])
    ))
    .await;
    let metrics = router.metrics_addr().await;
    let lying_key = [0u8, 4, 0, 0, 0xff, 0xff, b'a', b'b'];
    for _ in 0..1000 {
        send_raw(&router.addr, &lying_key).await;
    }
    // A good request after them, so the flood is known to be handled.
    let r = send(&router.addr, &get("h", "/"), b"").await;
    assert_eq!(r.status, 200);

    let m = support::scrape::scrape_at(metrics).await;
    let malformed = m.sum("uwsgi_router_malformed_packets_total", &[]);
    assert_eq!(malformed, 1000.0, "every packet is counted");
    let suppressed = m.sum("uwsgi_router_log_lines_suppressed_total", &[]);
    let lines = router.stderr().matches(MALFORMED_LINE).count();
    assert!(
        (1..=2).contains(&lines),
        "{lines} log lines for 1000 malformed packets of one kind (10 s apart at most):\n{}",
        router.stderr()
    );
    assert_eq!(
        suppressed + lines as f64,
        1000.0,
        "every packet is either logged or counted as held back"
    );
    router.signal("TERM");
    router.wait_exit(Duration::from_secs(10)).await;
}
