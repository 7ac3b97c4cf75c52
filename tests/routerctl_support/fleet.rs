//! A small fleet for routerctl to look at and act on: a router with a static node and two
//! registered ones, plus a URL on which no router listens.

use uwsgi_router::daemon::Daemon;
use uwsgi_router::node::AdminState;

use super::{register, Registered};
use crate::support::*;

/// A router with one static node and two registered ones, `web-1` and `web-2`.
pub struct Fleet {
    /// The router.
    pub router: Daemon,
    /// Its control URL.
    pub url: String,
    /// The static node's id (its address).
    pub static_id: String,
    _nodes: Vec<FakeNode>,
    _registered: Vec<Registered>,
}

/// Starts a [`Fleet`] whose pool balances with `algorithm`, slow start off.
pub async fn fleet(algorithm: &str) -> Fleet {
    let s = FakeNode::start("static", Behaviour::Echo).await;
    let router = start_router(&format!(
        "{}slow_start = \"0s\"\n",
        pool_toml(algorithm, &[&s])
    ))
    .await;
    let (w1, w2) = (
        FakeNode::start("web-1", Behaviour::Echo).await,
        FakeNode::start("web-2", Behaviour::Echo).await,
    );
    let registered = vec![
        register(&router, "web-1", w1.addr).await,
        register(&router, "web-2", w2.addr).await,
    ];
    Fleet {
        url: control_url(&router),
        static_id: s.addr.to_string(),
        router,
        _nodes: vec![s, w1, w2],
        _registered: registered,
    }
}

/// The state of node `id` on `router`, if it has the node.
pub fn state(router: &Daemon, id: &str) -> Option<AdminState> {
    router.cluster().find(id).map(|(_, n)| n.admin_state())
}

/// A URL on which nothing listens.
pub async fn closed_port() -> String {
    format!("http://{}", crate::support::ports::free_addr())
}
