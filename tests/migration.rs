//! Moving a pool from static nodes to agents without a failed request: an agent's node that
//! announces a static node's address (and so its id) takes the static entry over; the static
//! list can then be emptied; a node that leaves while its static entry is still listed hands it
//! back. Another id clash is refused saying which node holds the id and what to do.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use support::registry_client::{announce, register, NodeSession};
use support::*;
use uwsgi_router::api::node_message::Msg;
use uwsgi_router::api::router_message::Msg as R;
use uwsgi_router::api::Leave;
use uwsgi_router::daemon::Daemon;
use uwsgi_router::node::Source;

/// Requests sent in a loop until stopped (at most 20,000), and those that failed.
struct Load {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Load {
    fn start(addr: String) -> Self {
        let (stop, sent, failed) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        let (s, n, f) = (stop.clone(), sent.clone(), failed.clone());
        let task = tokio::spawn(async move {
            while !s.load(SeqCst) && n.load(SeqCst) < 20_000 {
                let r = send(&addr, &get("h", "/"), b"").await;
                n.fetch_add(1, SeqCst);
                if r.status != 200 {
                    f.fetch_add(1, SeqCst);
                }
            }
        });
        Self {
            stop,
            sent,
            failed,
            task,
        }
    }

    /// Waits for `more` requests beyond those sent so far.
    async fn pass(&self, more: usize) {
        let target = self.sent.load(SeqCst) + more;
        wait_until(format!("{target} requests sent"), || {
            self.sent.load(SeqCst) >= target
        })
        .await;
    }

    async fn finish(self) -> (usize, usize) {
        self.stop.store(true, SeqCst);
        self.task.await.unwrap();
        (self.sent.load(SeqCst), self.failed.load(SeqCst))
    }
}

fn source_of(router: &Daemon, id: &str) -> Option<Source> {
    router
        .cluster()
        .pool("default")?
        .node(id)
        .map(|n| n.source())
}

#[tokio::test]
async fn static_nodes_move_to_agents_with_no_failed_request() {
    let a = FakeNode::start("a", Behaviour::Echo).await;
    let b = FakeNode::start("b", Behaviour::Echo).await;
    let (ida, idb) = (a.addr.to_string(), b.addr.to_string());
    let statics = format!("[pools.default]\nnodes = [\"{ida}\", \"{idb}\"]\n");
    let (router, file) = start_router_from_file(&statics).await;
    let load = Load::start(router.local_addrs()[0].clone());
    load.pass(50).await;

    // 1. Agents start, each node announcing its own address (router-agent's default id).
    let control = router.control_addr().unwrap();
    let _ra = register(control, &ida, a.addr).await;
    let _rb = register(control, &idb, b.addr).await;
    for id in [&ida, &idb] {
        assert_eq!(source_of(&router, id), Some(Source::Registered), "{id}");
    }
    load.pass(50).await;

    // 2. The static list is emptied and reloaded: the agents' nodes stay.
    file.write("[pools.default]\n");
    router.reload().expect("the reload applies");
    load.pass(50).await;
    assert_eq!(router.cluster().pool("default").unwrap().len(), 2);

    let (sent, failed) = load.finish().await;
    assert_eq!(
        failed, 0,
        "{failed} of {sent} requests failed during the move"
    );
    assert!(a.served() > 0 && b.served() > 0);
}

#[tokio::test]
async fn a_node_leaving_hands_its_static_entry_back() {
    let a = FakeNode::start("a", Behaviour::Echo).await;
    let id = a.addr.to_string();
    let (router, _file) =
        start_router_from_file(&format!("[pools.default]\nnodes = [\"{id}\"]\n")).await;
    let load = Load::start(router.local_addrs()[0].clone());
    let control = router.control_addr().unwrap();
    let (session, first) = NodeSession::join(control, &id, a.addr).await;
    assert!(matches!(first, R::Accepted(_)), "{first:?}");
    assert_eq!(source_of(&router, &id), Some(Source::Registered));
    load.pass(50).await;
    session.send(Msg::Leave(Leave::default())).await;
    wait_until("the static entry is back", || {
        source_of(&router, &id) == Some(Source::Static)
    })
    .await;
    load.pass(50).await;
    let (sent, failed) = load.finish().await;
    assert_eq!(failed, 0, "{failed} of {sent} requests failed");
}

#[tokio::test]
async fn an_id_clash_with_a_static_node_says_which_and_what_to_do() {
    let a = FakeNode::start("a", Behaviour::Echo).await;
    let other = FakeNode::start("other", Behaviour::Echo).await;
    let id = a.addr.to_string();
    let (router, _file) =
        start_router_from_file(&format!("[pools.default]\nnodes = [\"{id}\"]\n")).await;
    let control = router.control_addr().unwrap();
    // The static node's id, another address.
    let (_, m) = NodeSession::open_from(
        control,
        None,
        None,
        announce(&id, "default", &other.addr.to_string()),
    )
    .await
    .unwrap();
    let R::Rejected(r) = m else {
        panic!("refused: {m:?}");
    };
    assert!(
        r.reason
            .contains(&format!("the static node {id} of pool default"))
            && r.reason.contains("--node-id"),
        "{}",
        r.reason
    );
    assert_eq!(
        source_of(&router, &id),
        Some(Source::Static),
        "the static node keeps serving"
    );
}
