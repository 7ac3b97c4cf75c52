//! Connections that send nothing cannot take routerd down: idle connections on the control port
//! (or the metrics port) neither exhaust its file descriptors nor keep agents, routerctl or
//! probes out, and are closed after their deadline. Oversize messages end an agent's session
//! with a reason the agent logs.

mod agent_support;
mod support;

use std::net::SocketAddr;
use std::time::Duration;

use support::binary::Routerd;
use support::scrape::{http_get, metrics_addr};
use support::*;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};
use uwsgi_router::api::admin_client::AdminClient;
use uwsgi_router::api::StatusRequest;

/// Idle connections opened by a test: a few hundred, within routerd's fd budget below.
const FLOOD: usize = 300;

/// Opens `n` TCP connections to `addr` that send nothing.
async fn idle_connections(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        let c = timeout(STEP, TcpStream::connect(addr))
            .await
            .expect("connect within the step")
            .expect("the kernel completes the connection");
        conns.push(c);
    }
    conns
}

/// How many of `conns` the router closed (EOF, an answer then EOF, or a reset) before `limit`.
async fn closed_within(conns: Vec<TcpStream>, limit: Duration) -> usize {
    let deadline = Instant::now() + limit;
    let waits = conns.into_iter().map(|mut c| {
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            loop {
                match tokio::time::timeout_at(deadline, c.read(&mut buf)).await {
                    Err(_) => return false,
                    Ok(Ok(0)) | Ok(Err(_)) => return true,
                    Ok(Ok(_)) => continue,
                }
            }
        })
    });
    let mut closed = 0;
    for w in waits.collect::<Vec<_>>() {
        closed += usize::from(w.await.unwrap());
    }
    closed
}

/// One Admin call over a fresh connection, as routerctl makes it.
async fn admin_status(control: SocketAddr) -> Result<String, String> {
    let call = async {
        let mut c = AdminClient::connect(format!("http://{control}"))
            .await
            .map_err(|e| e.to_string())?;
        let s = c
            .status(StatusRequest {})
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(s.into_inner().router_id)
    };
    timeout(Duration::from_secs(5), call)
        .await
        .map_err(|_| "no answer within 5 s".to_owned())?
}

#[tokio::test]
async fn idle_connections_on_the_control_port_starve_neither_uwsgi_nor_grpc_and_are_closed() {
    let node = FakeNode::start("a", Behaviour::Echo).await;
    // 256 file descriptors in all: before the limits, 300 idle control connections took them.
    let mut router = Routerd::start_with_ulimit(
        &format!(
            "[pools.default]\nnodes = [\"{}\"]\n\
             [control]\nlisten = \"127.0.0.1:0\"\nhandshake_timeout = \"1s\"\n",
            node.addr
        ),
        &["-n", "256"],
    )
    .await;
    let control = router.control_addr().await;
    let metrics = router.metrics_addr().await;
    let log = router.stderr();
    assert!(
        log.contains("control.max_connections lowered"),
        "the limit is sized to the fd limit:\n{log}"
    );

    let flood = idle_connections(control, FLOOD).await;
    let opened = Instant::now();

    // uwsgi clients are served...
    for _ in 0..5 {
        let r = timeout(
            Duration::from_secs(5),
            send(&router.addr, &get("h", "/"), b""),
        )
        .await
        .expect("a uwsgi request is answered despite the idle control connections");
        assert_eq!(r.status, 200, "{}", r.head);
    }
    // ... a real gRPC call goes through at once ...
    let id = admin_status(control).await.expect("an Admin call succeeds");
    assert!(id.contains(&control.to_string()), "{id}");
    // ... and so do probes.
    assert_eq!(http_get(metrics, "/healthz").await.status, 200);

    // Every idle connection is closed: the oldest to make room, the rest after 1 s.
    let closed = closed_within(flood, Duration::from_secs(6)).await;
    assert_eq!(closed, FLOOD, "idle connections closed by the router");
    assert!(opened.elapsed() >= Duration::from_secs(1));
    assert!(router.try_exit().is_none(), "routerd runs on");
}

#[tokio::test]
async fn a_connection_that_authenticates_keeps_its_slot_while_idle_ones_are_closed() {
    let node = FakeNode::start("a", Behaviour::Echo).await;
    let router = start_router(&format!(
        "[pools.default]\nnodes = [\"{}\"]\n\
         [control]\nlisten = \"127.0.0.1:0\"\nmax_connections = 8\nhandshake_timeout = \"500ms\"\n",
        node.addr
    ))
    .await;
    let control = router.control_addr().unwrap();
    // An authenticated client, then a flood far over the limit.
    let mut admin = AdminClient::connect(format!("http://{control}"))
        .await
        .unwrap();
    admin.status(StatusRequest {}).await.unwrap();
    let flood = idle_connections(control, 50).await;
    // New clients get in at once (an idle connection is closed for each)...
    for _ in 0..3 {
        admin_status(control).await.expect("a new client gets in");
    }
    // ... the idle ones are all closed ...
    assert_eq!(closed_within(flood, Duration::from_secs(5)).await, 50);
    // ... and the authenticated connection was never one of them: it still answers.
    timeout(Duration::from_secs(5), admin.status(StatusRequest {}))
        .await
        .expect("in time")
        .expect("the first client's connection still works");
}

#[tokio::test]
async fn idle_connections_on_the_metrics_port_do_not_keep_probes_out() {
    let router = start_router("[pools.default]\n").await;
    let metrics = metrics_addr(&router);
    // Far over metrics.max_connections (64): before, probes waited behind them in the backlog.
    let flood = idle_connections(metrics, FLOOD).await;
    let started = Instant::now();
    let reply = timeout(Duration::from_secs(2), http_get(metrics, "/healthz"))
        .await
        .expect("/healthz answers despite the idle connections");
    assert_eq!(reply.status, 200);
    assert!(started.elapsed() < Duration::from_secs(2));
    // The control plane is not affected either.
    admin_status(router.control_addr().unwrap())
        .await
        .expect("an Admin call succeeds");
    // All are closed: the oldest to make room, the others when their 5 s for a head run out.
    assert_eq!(
        closed_within(flood, Duration::from_secs(10)).await,
        FLOOD,
        "idle metrics connections closed"
    );
}

#[tokio::test]
async fn routerd_raises_its_open_file_soft_limit_to_the_hard_limit() {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let hard: u64 = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4))
        .and_then(|h| h.parse().ok())
        .expect("a hard open file limit");
    let router = Routerd::start_with_ulimit("[pools.default]\n", &["-Sn", "256"]).await;
    let theirs = std::fs::read_to_string(format!("/proc/{}/limits", router.pid())).unwrap();
    let line = theirs
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .to_owned();
    let soft: u64 = line.split_whitespace().nth(3).unwrap().parse().unwrap();
    assert_eq!(
        soft, hard,
        "the soft limit is raised to the hard one: {line}"
    );
}

#[tokio::test]
async fn the_agent_logs_that_its_message_was_over_the_routers_limit() {
    let router =
        start_router("default_pool = \"web\"\n[pools.web]\n[control]\nlisten = \"127.0.0.1:0\"\nmax_message_bytes = 256\n")
            .await;
    let stats = agent_support::FakeStats::start("idle").await;
    let setup = agent_support::AgentSetup::new();
    let label = format!("notes={}", "n".repeat(120));
    let label2 = format!("more={}", "m".repeat(120));
    let args = setup.args(
        &[control_url(&router)],
        stats.addr,
        "127.0.0.1:3031",
        &["--label", &label, "--label", &label2],
    );
    let mut agent = setup.spawn_agent(&args);
    agent
        .wait_log("control.max_message_bytes is 256 bytes", 1, STEP)
        .await;
    let text = agent.log();
    assert!(text.contains("ResourceExhausted"), "{text}");
}
