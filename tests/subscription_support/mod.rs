//! Test support for uWSGI subscriptions, in process: a router with a subscription socket, a node
//! sending datagrams to it, notify sockets for acknowledgements, and waits on what the router
//! did with the datagrams. A test binary including it also includes `mod support;`.
#![allow(dead_code, unreachable_pub, unused_imports)]

/// Subscription datagrams.
pub mod datagram;

use std::sync::atomic::Ordering::SeqCst;

use tokio::net::{UdpSocket, UnixDatagram};
use uwsgi_router::daemon::Daemon;

use crate::support::scrape::scrape;
use crate::support::*;
pub use datagram::*;

/// Sends datagrams to the router's first subscription socket from one UDP socket, as a node does.
pub struct Node {
    socket: UdpSocket,
    router: String,
}

impl Node {
    /// A sender on 127.0.0.1.
    pub async fn new(router: &Daemon) -> Self {
        Self::from_host(router, "127.0.0.1").await
    }

    /// A sender on another loopback address: on this machine, another host.
    pub async fn from_host(router: &Daemon, ip: &str) -> Self {
        Self {
            socket: UdpSocket::bind((ip, 0)).await.unwrap(),
            router: router.subscription_addrs()[0].clone(),
        }
    }

    /// Sends one datagram.
    pub async fn send(&self, datagram: &[u8]) {
        self.socket.send_to(datagram, &self.router).await.unwrap();
    }
}

/// The count of datagrams with `outcome` so far (the process's: other tests add to it).
pub async fn counted(router: &Daemon, outcome: &str) -> f64 {
    scrape(router)
        .await
        .get(PACKETS, &[("outcome", outcome)])
        .unwrap_or(0.0)
}

/// Waits until the counter of `outcome` exceeds `before`: the datagram was handled.
pub async fn wait_counted(router: &Daemon, outcome: &str, before: f64) {
    wait_for(
        format!("a datagram counted as {outcome}"),
        STEP,
        async || (counted(router, outcome).await > before).then_some(()),
    )
    .await;
}

/// The addresses of the nodes in `pool`, none when there is no such pool.
pub fn pool_nodes(router: &Daemon, pool: &str) -> Vec<String> {
    router.cluster().pool(pool).map_or_else(Vec::new, |p| {
        p.snapshot()
            .nodes
            .iter()
            .map(|n| n.addr().to_string())
            .collect()
    })
}

/// Waits until a request for `host` is answered by `node` (the route was rebuilt).
pub async fn wait_served_by(router: &Daemon, host: &str, node: &str) {
    let what = format!("{host} served by {node}");
    wait_answer(&router.local_addrs()[0], host, &what, |r| {
        r.status == 200 && node_of(r) == node
    })
    .await;
}

/// Returns once `router` has handled every datagram `from` sent before: it handles them one at a
/// time in arrival order, so once a node announced after them has joined, they are done with.
/// (The outcome counters cannot tell: they are the process's, shared with the other tests.)
/// Signed, for a router with a key directory: `key_dir` puts `sync.test.pem` in it.
pub async fn sync(router: &Daemon, from: &Node, signed_with_key: bool) {
    static NEXT_PORT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(30000);
    let port = NEXT_PORT.fetch_add(1, SeqCst);
    let vars = announce("sync.test", &format!("127.0.0.1:{port}"));
    let datagram = if signed_with_key {
        signed(SUBSCRIBE, vars, &test_key(), unix_now())
    } else {
        packet(SUBSCRIBE, &vars)
    };
    from.send(&datagram).await;
    let id = format!("127.0.0.1:{port}@sync.test");
    wait_until(format!("{id} to join"), || {
        router.cluster().find(&id).is_some()
    })
    .await;
}

/// A router with no default pool and a UDP subscription socket, plus `subscription` lines in
/// its `[subscription]` table.
pub async fn start(subscription: &str) -> Daemon {
    start_router(&format!(
        "default_pool = \"\"\n[subscription]\nlisten = [\"127.0.0.1:0\"]\n{subscription}"
    ))
    .await
}

/// The next acknowledgement on `notify`, within the step timeout.
pub async fn ack(notify: &UnixDatagram) -> String {
    let mut buf = vec![0u8; 512];
    let n = tokio::time::timeout(STEP, notify.recv(&mut buf))
        .await
        .expect("an acknowledgement within the step timeout")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Waits until node `id` has left.
pub async fn wait_gone(router: &Daemon, id: &str) {
    wait_until(format!("{id} to leave"), || {
        router.cluster().find(id).is_none()
    })
    .await;
}

/// A UNIX datagram socket a node would name in `notify`, and whether anything reached it.
pub struct NotifySocket {
    /// Where it is bound.
    pub path: std::path::PathBuf,
    /// The bound socket.
    pub socket: UnixDatagram,
}

impl NotifySocket {
    /// Binds it at `path`.
    pub fn bind(path: std::path::PathBuf) -> Self {
        let socket = UnixDatagram::bind(&path).unwrap();
        Self { path, socket }
    }

    /// Its path, as a datagram names it.
    pub fn name(&self) -> &str {
        self.path.to_str().unwrap()
    }

    /// Whether nothing has reached it.
    pub fn received_nothing(&self) -> bool {
        let mut buf = [0u8; 512];
        matches!(self.socket.try_recv(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }
}

/// Announces a new node for `key` that names `notify`, and waits until it has joined (so every
/// datagram sent before it has been handled, acknowledgements included).
pub async fn join_naming(router: &Daemon, node: &Node, key: &str, address: &str, notify: &str) {
    node.send(&packet(
        SUBSCRIBE,
        &with(announce(key, address), "notify", notify),
    ))
    .await;
    let id = format!("{address}@{key}");
    wait_until(format!("{id} to join"), || {
        router.cluster().find(&id).is_some()
    })
    .await;
}
