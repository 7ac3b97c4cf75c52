//! The standard `process_*` series of a running routerd: present, and right, as `/proc` of the
//! routerd process shows them while a test opens and closes client connections.

mod support;

use std::time::Duration;

use support::binary::Routerd;
use support::scrape::{scrape_at, Scrape};
use support::*;

/// Connections opened on top of what routerd has at rest.
const EXTRA: usize = 40;

fn open_fds(m: &Scrape) -> f64 {
    m.get("process_open_fds", &[])
        .unwrap_or_else(|| panic!("process_open_fds is exported:\n{}", m.text))
}

fn fds_in_proc(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("routerd's /proc entry")
        .count()
}

#[tokio::test]
async fn open_fds_follow_the_connections_routerd_holds() {
    let node = FakeNode::start("a", Behaviour::Echo).await;
    let body = format!(
        "{}[metrics]\nlisten = \"127.0.0.1:0\"\n",
        pool_toml("round-robin", &[&node])
    );
    let mut routerd = Routerd::start(&body).await;
    let ops = routerd.metrics_addr().await;

    let m = scrape_at(ops).await;
    let at_rest = open_fds(&m);
    // The scrape's own connection is open in routerd while it counts.
    let counted = fds_in_proc(routerd.pid()) as f64;
    assert!(
        (at_rest - counted).abs() <= 2.0,
        "process_open_fds {at_rest}, /proc shows {counted}"
    );
    for name in [
        "process_max_fds",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_start_time_seconds",
        "process_threads",
    ] {
        assert!(
            m.get(name, &[]).unwrap_or(0.0) > 0.0,
            "{name} > 0:\n{}",
            m.text
        );
    }
    assert!(m.get("process_cpu_seconds_total", &[]).is_some());

    // Clients that connect and wait: routerd holds a descriptor for each.
    let mut clients = Vec::with_capacity(EXTRA);
    for _ in 0..EXTRA {
        clients.push(connect(&routerd.addr).await);
    }
    let grown = wait_for(
        "process_open_fds to count the new connections",
        STEP,
        async || {
            let n = open_fds(&scrape_at(ops).await);
            (n >= at_rest + EXTRA as f64).then_some(n)
        },
    )
    .await;
    assert!(
        grown <= at_rest + EXTRA as f64 + 2.0,
        "{grown} open with {EXTRA} clients, {at_rest} before"
    );

    drop(clients);
    wait_for(
        "process_open_fds to fall back once the clients left",
        STEP,
        async || (open_fds(&scrape_at(ops).await) <= at_rest + 2.0).then_some(()),
    )
    .await;
    routerd.signal("TERM");
    routerd.wait_exit(Duration::from_secs(10)).await;
}
