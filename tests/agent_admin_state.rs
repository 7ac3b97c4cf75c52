//! A registered node's operator state lives with its agent: a drain, maintenance, weight or
//! resume given with routerctl on any router reaches every router the agent talks to, a router
//! that restarts or starts later gets it from the agent's announce, and it survives an agent
//! restart (the agent's state file). A node in maintenance stays listed and gets no request.

mod agent_support;
mod routerctl_support;
mod support;

use agent_support::{AgentSetup, FakeStats};
use routerctl_support::routerctl;
use support::wait;
use support::*;
use uwsgi_router::agent::Agent;
use uwsgi_router::cluster::ClusterEvent;
use uwsgi_router::config::Config;
use uwsgi_router::daemon::Daemon;
use uwsgi_router::node::AdminState;

/// Requests sent to a router per check; every one must avoid a node out of rotation.
const REQUESTS: usize = 20;

/// A node with its agent's state file, and a static node that takes the traffic meanwhile.
struct Node {
    app: FakeNode,
    other: FakeNode,
    stats: FakeStats,
    setup: AgentSetup,
}

impl Node {
    async fn start() -> Self {
        Self {
            app: FakeNode::start("n1", Behaviour::Echo).await,
            other: FakeNode::start("other", Behaviour::Echo).await,
            stats: FakeStats::start("idle").await,
            setup: AgentSetup::new(),
        }
    }

    /// A router on control address `control` (`127.0.0.1:0` for any) whose pool `web` holds the
    /// static node and takes registered nodes at full weight at once.
    async fn router(&self, control: &str) -> Daemon {
        start_router(&self.toml(control)).await
    }

    /// [`Node::router`] again on the control address of a router that just stopped, once the
    /// address is free again.
    async fn restart(&self, control: &str) -> Daemon {
        let toml = self.toml(control);
        let started = wait::within(STEP, async || {
            let mut config = Config::parse(&toml).unwrap();
            config.listen.uwsgi = vec!["127.0.0.1:0".parse().unwrap()];
            config.metrics.listen = None;
            Daemon::start(config, None).await.ok()
        })
        .await;
        started.unwrap_or_else(|e| panic!("no router on {control} again: {e}"))
    }

    fn toml(&self, control: &str) -> String {
        format!(
            "default_pool = \"web\"\n[pools.web]\nalgorithm = \"round-robin\"\nslow_start = \"0s\"\n\
             nodes = [\"{}\"]\n[control]\nlisten = \"{control}\"\nregistry_token_files = [\"{}\"]\n",
            self.other.addr,
            self.setup.token_file.display()
        )
    }

    /// The agent of n1, keeping its state in the setup's temp dir, with a session per router.
    fn agent(&self, routers: &[String]) -> Agent {
        let state = self.setup.dir.path().join("n1.state.json");
        let state = state.display().to_string();
        let extra = ["--node-id", "n1", "--state-file", &state];
        let config =
            self.setup
                .config(routers, self.stats.addr, &self.app.addr.to_string(), &extra);
        Agent::start(config).expect("the agent starts")
    }
}

/// Waits until `router` has n1 in `state`.
async fn wait_state(router: &Daemon, state: AdminState) {
    let what = format!("n1 {state:?} on {}", control_url(router));
    wait_until(&what, || {
        router
            .cluster()
            .find("n1")
            .is_some_and(|(_, n)| n.admin_state() == state)
    })
    .await;
}

/// Sends [`REQUESTS`] requests through `router`; returns how many n1 answered (all must succeed).
async fn served_by_n1(router: &Daemon) -> usize {
    let addr = &router.local_addrs()[0];
    let mut n1 = 0;
    for _ in 0..REQUESTS {
        let r = send(addr, &get("app.example.com", "/"), b"").await;
        assert_eq!(r.status, 200, "{}", r.text());
        n1 += usize::from(node_of(&r) == "n1");
    }
    n1
}

/// `routerctl node n1 --json`'s `state` on `router`.
async fn shown_state(router: &Daemon) -> String {
    let n = routerctl(&[control_url(router)], &["node", "n1", "--json"])
        .await
        .json();
    n["state"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn drain_on_one_router_holds_on_every_router_until_resumed_on_another() {
    let node = Node::start().await;
    let (r1, r2) = (
        node.router("127.0.0.1:0").await,
        node.router("127.0.0.1:0").await,
    );
    let agent = node.agent(&[control_url(&r1), control_url(&r2)]);
    for r in [&r1, &r2] {
        wait_state(r, AdminState::Active).await;
    }

    let mut events = r2.cluster().events().subscribe();
    let run = routerctl(
        &[control_url(&r1)],
        &["drain", "n1", "--wait", "--reason", "kernel update"],
    )
    .await;
    assert!(
        run.ok()
            .contains("n1 drained, in maintenance until resumed"),
        "{run:?}"
    );
    wait_state(&r2, AdminState::Maintenance).await;
    // The second router names who drained it, and why.
    let attributed = std::iter::from_fn(|| events.try_recv().ok()).find_map(|e| match e {
        ClusterEvent::OperatorAction {
            action,
            actor,
            reason,
            ..
        } => Some((action, actor.to_string(), reason.to_string())),
        _ => None,
    });
    assert_eq!(
        attributed,
        Some((
            "drain (through the node's agent)".to_owned(),
            "anonymous".to_owned(),
            "kernel update".to_owned()
        ))
    );
    for r in [&r1, &r2] {
        assert_eq!(shown_state(r).await, "maintenance", "listed, not gone");
        assert_eq!(
            served_by_n1(r).await,
            0,
            "no request to a node in maintenance"
        );
    }
    let before = node.app.served();

    routerctl(&[control_url(&r2)], &["resume", "n1"]).await.ok();
    for r in [&r1, &r2] {
        wait_state(r, AdminState::Active).await;
        assert!(served_by_n1(r).await > 0, "n1 back in rotation");
    }
    assert!(node.app.served() > before);
    agent.shutdown().await;
}

#[tokio::test]
async fn maintenance_outlives_a_router_restart_and_an_agent_restart() {
    let node = Node::start().await;
    let control = ports::free_addr().to_string();
    let router = node.router(&control).await;
    let routers = [control_url(&router)];
    let agent = node.agent(&routers);
    wait_state(&router, AdminState::Active).await;
    routerctl(&routers, &["maintenance", "n1"]).await.ok();
    assert_eq!(shown_state(&router).await, "maintenance");

    // The router restarts on the same control address: the agent's announce says maintenance.
    router.shutdown().await;
    let router = node.restart(&control).await;
    wait_state(&router, AdminState::Maintenance).await;
    assert_eq!(served_by_n1(&router).await, 0, "after the router restart");

    // The agent restarts (it drains and leaves on the way out): its state file still says so.
    agent.shutdown().await;
    wait_until("n1 to leave", || router.cluster().find("n1").is_none()).await;
    let agent = node.agent(&routers);
    wait_state(&router, AdminState::Maintenance).await;
    assert_eq!(served_by_n1(&router).await, 0, "after the agent restart");
    assert_eq!(node.app.served(), 0, "n1 got no request at all");

    routerctl(&routers, &["resume", "n1"]).await.ok();
    wait_state(&router, AdminState::Active).await;
    assert!(served_by_n1(&router).await > 0);
    agent.shutdown().await;
}

#[tokio::test]
async fn a_weight_override_reaches_a_router_started_later_and_survives_its_restart() {
    let node = Node::start().await;
    let r1 = node.router("127.0.0.1:0").await;
    // The second router's address is in the agent's list before anything listens there.
    let later = ports::free_addr().to_string();
    let agent = node.agent(&[control_url(&r1), format!("http://{later}")]);
    wait_state(&r1, AdminState::Active).await;
    routerctl(
        &[control_url(&r1)],
        &["weight", "n1", "7", "--reason", "bigger host"],
    )
    .await
    .ok();

    let weight = |r: &Daemon| r.cluster().find("n1").map(|(_, n)| n.weight_override());
    let r2 = node.router(&later).await;
    wait_until("the later router to get n1", || weight(&r2).is_some()).await;
    assert_eq!(
        weight(&r2),
        Some(Some(7)),
        "announced with the agent's override"
    );
    assert_eq!(weight(&r1), Some(Some(7)));

    r2.shutdown().await;
    let r2 = node.restart(&later).await;
    wait_until("the restarted router to get n1", || weight(&r2).is_some()).await;
    assert_eq!(weight(&r2), Some(Some(7)), "after a restart");

    // Cleared on the later router, it is cleared on the first one too.
    routerctl(&[format!("http://{later}")], &["weight", "n1", "--clear"])
        .await
        .ok();
    wait_until("the clear to reach the first router", || {
        weight(&r1) == Some(None)
    })
    .await;
    agent.shutdown().await;
}

#[tokio::test]
async fn the_agent_s_state_wins_over_what_the_router_s_state_file_kept_from_before() {
    let node = Node::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("routerd.state.json");
    // What routerd kept when the node's agent did not keep its state yet: drained, weight 9.
    std::fs::write(
        &file,
        r#"{"version": 1, "nodes": [{"pool": "web", "node": "n1", "drained": true, "weight": 9}]}"#,
    )
    .unwrap();
    let toml = format!(
        "state_file = \"{}\"\n{}",
        file.display(),
        node.toml("127.0.0.1:0")
    );
    let router = start_router(&toml).await;
    let agent = node.agent(&[control_url(&router)]);
    wait_state(&router, AdminState::Active).await;
    let (_, n1) = router.cluster().find("n1").unwrap();
    assert_eq!(n1.weight_override(), None, "the agent keeps no override");
    assert!(served_by_n1(&router).await > 0);
    agent.shutdown().await;
}
