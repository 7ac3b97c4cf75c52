//! A fleet's worth of nodes over a few multiplexed connections: a mass lease expiry (far more
//! nodes than the cluster's event broadcast holds) and the re-join that follows leave no session
//! stranded: every session whose node left is told so, and afterwards every live session's node
//! is in the pool, as the Admin API lists it.

mod support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use support::registry_client::announce;
use support::*;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};
use uwsgi_router::api::admin_client::AdminClient;
use uwsgi_router::api::registry_client::RegistryClient;
use uwsgi_router::api::router_message::Msg as R;
use uwsgi_router::api::{node_message::Msg, ListNodesRequest, LoadReport, NodeMessage};

/// Registered nodes: 5,000, one session each.
const NODES: usize = 5_000;
/// Connections their sessions share (250 streams each).
const CONNECTIONS: usize = 20;
/// Nodes that stop reporting at once: several times what the event broadcast holds (1,024).
const SILENCED: usize = 3_000;
/// What each phase may take at most (a debug build on two shared cores).
const PHASE: Duration = Duration::from_secs(90);

/// One simulated agent, as router-agent behaves: it announces, reports every second while its
/// node is up, and announces again whenever the router says its node was removed.
#[derive(Default)]
struct Agent {
    /// The node is down: no reports until the router says it was removed.
    silent: AtomicBool,
    /// Between an Accepted and the next Removed.
    registered: AtomicBool,
    /// Removed messages received.
    removed: AtomicUsize,
}

#[derive(Default)]
struct Fleet {
    /// Sessions that ended for any other reason than Removed: each would be a lost node.
    failed: AtomicUsize,
}

async fn run_agent(channel: Channel, id: usize, agent: Arc<Agent>, fleet: Arc<Fleet>) {
    let mut client = RegistryClient::new(channel);
    loop {
        let (tx, rx) = mpsc::channel(4);
        let mut a = announce(&node_id(id), "default", &node_addr(id));
        a.report_interval_ms = 1_000;
        let hello = NodeMessage {
            msg: Some(Msg::Announce(a)),
        };
        tx.send(hello).await.expect("the request stream is open");
        let mut inbound = match client.session(ReceiverStream::new(rx)).await {
            Ok(r) => r.into_inner(),
            Err(status) => return fail(&fleet, &status),
        };
        match inbound.message().await {
            Ok(Some(m)) if matches!(m.msg, Some(R::Accepted(_))) => {
                agent.registered.store(true, Relaxed);
            }
            other => return fail(&fleet, &other),
        }
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let answer = loop {
            tokio::select! {
                _ = tick.tick() => {
                    if agent.silent.load(Relaxed) {
                        continue;
                    }
                    let report = NodeMessage { msg: Some(Msg::Report(LoadReport::default())) };
                    if tx.send(report).await.is_err() {
                        // The router ended the session: its last word says why.
                        break inbound.message().await;
                    }
                }
                m = inbound.message() => break m,
            }
        };
        agent.registered.store(false, Relaxed);
        match answer {
            Ok(Some(m)) if matches!(m.msg, Some(R::Removed(_))) => {
                agent.removed.fetch_add(1, Relaxed);
                // The node is back up: announce again, as the agent does.
                agent.silent.store(false, Relaxed);
            }
            other => return fail(&fleet, &other),
        }
    }
}

fn fail(fleet: &Fleet, why: &dyn std::fmt::Debug) {
    if fleet.failed.fetch_add(1, Relaxed) < 3 {
        eprintln!("a session ended: {why:?}");
    }
}

fn node_id(i: usize) -> String {
    format!("node-{i}")
}

/// A distinct loopback address per node (nothing listens there: no request is routed).
fn node_addr(i: usize) -> String {
    format!("127.1.{}.{}:3031", i / 250, i % 250 + 1)
}

/// The pool's nodes as the Admin API lists them, once they are `expected` or after [`PHASE`]:
/// it lists the snapshot, which has every change within the membership window.
async fn listed_nodes(
    admin: &mut AdminClient<Channel>,
    expected: &BTreeSet<String>,
) -> BTreeSet<String> {
    let deadline = tokio::time::Instant::now() + PHASE;
    loop {
        let req = ListNodesRequest {
            pool: "default".into(),
        };
        let nodes = admin.list_nodes(req).await.expect("ListNodes").into_inner();
        let listed: BTreeSet<String> = nodes.nodes.into_iter().map(|n| n.id).collect();
        if listed == *expected || tokio::time::Instant::now() > deadline {
            return listed;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn within(what: &str, mut done: impl FnMut() -> bool) {
    tokio::time::timeout(PHASE, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what} within {PHASE:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mass_expiry_and_rejoin_strands_no_session() {
    let router = start_router(&format!(
        "[pools.default]\nmax_nodes = {}\nslow_start = \"0s\"\n",
        NODES + 100
    ))
    .await;
    let url = control_url(&router);
    let mut channels = Vec::new();
    for _ in 0..CONNECTIONS {
        let endpoint = Endpoint::from_shared(url.clone()).unwrap();
        channels.push(endpoint.connect().await.expect("control listener connects"));
    }
    let fleet = Arc::new(Fleet::default());
    let agents: Vec<Arc<Agent>> = (0..NODES).map(|_| Arc::default()).collect();
    let mut tasks = JoinSet::new();
    for (i, agent) in agents.iter().enumerate() {
        let channel = channels[i % CONNECTIONS].clone();
        tasks.spawn(run_agent(channel, i, agent.clone(), fleet.clone()));
    }
    let pool = router.cluster().pool("default").unwrap();
    let settled = || {
        fleet.failed.load(Relaxed) > 0
            || (agents.iter().all(|a| a.registered.load(Relaxed)) && pool.len() == NODES)
    };
    // Leases may run out while thousands of nodes join (a debug build on two shared cores is
    // slow to read their reports): those sessions are told, and their agents announce again.
    within("every node is registered", settled).await;
    assert_eq!(
        fleet.failed.load(Relaxed),
        0,
        "no session ended but by Removed"
    );
    let mut admin = AdminClient::connect(url).await.unwrap();
    let everyone: BTreeSet<String> = (0..NODES).map(node_id).collect();
    assert_eq!(listed_nodes(&mut admin, &everyone).await, everyone);

    // 3,000 nodes go down at once: their leases expire together.
    let silenced: Vec<usize> = (0..NODES).filter(|i| i % 5 != 0).take(SILENCED).collect();
    let before: Vec<usize> = agents.iter().map(|a| a.removed.load(Relaxed)).collect();
    for &i in &silenced {
        agents[i].silent.store(true, Relaxed);
    }
    within("every silenced node's session is told Removed", || {
        silenced
            .iter()
            .all(|&i| agents[i].removed.load(Relaxed) > before[i])
    })
    .await;
    within("every removed node is registered again", settled).await;

    assert_eq!(
        fleet.failed.load(Relaxed),
        0,
        "no session ended but by Removed"
    );
    assert_eq!(
        listed_nodes(&mut admin, &everyone).await,
        everyone,
        "every live session's node is in the pool"
    );
    tasks.abort_all();
}
