//! A minimal Registry client for tests: open a session, announce, send messages, read answers.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status, Streaming};
use uwsgi_router::api::registry_client::RegistryClient;
use uwsgi_router::api::{
    node_message::Msg, router_message, Announce, LoadReport, NodeMessage, RouterMessage,
};

/// One node's open session.
pub struct NodeSession {
    tx: mpsc::Sender<NodeMessage>,
    rx: Streaming<RouterMessage>,
}

/// An announce for `node_id` at `address` in `pool`, reporting every 200 ms.
pub fn announce(node_id: &str, pool: &str, address: &str) -> Announce {
    Announce {
        node_id: node_id.into(),
        pool: pool.into(),
        address: address.into(),
        capacity: 2,
        weight: 1,
        report_interval_ms: 200,
        ..Default::default()
    }
}

/// A load as `keep_reporting` sends it: (busy, idle, listen queue).
pub type Load = Arc<Mutex<(u32, u32, u32)>>;

/// The load of a node with two idle workers and nothing queued.
pub fn idle() -> Load {
    Arc::new(Mutex::new((0, 2, 0)))
}

impl NodeSession {
    /// Opens a session announcing node `id` at `addr` in pool `default` without a token, as an
    /// agent would; the call must succeed. Returns the session and the router's first answer.
    pub async fn join(
        control: SocketAddr,
        id: &str,
        addr: SocketAddr,
    ) -> (Self, router_message::Msg) {
        Self::open(control, None, announce(id, "default", &addr.to_string()))
            .await
            .unwrap_or_else(|e| panic!("the session of {id} opens: {e}"))
    }

    /// Opens a session and sends `announce`; returns the session and the router's first answer.
    pub async fn open(
        control: SocketAddr,
        token: Option<&str>,
        announce: Announce,
    ) -> Result<(Self, router_message::Msg), Status> {
        Self::open_from(control, None, token, announce).await
    }

    /// Like [`NodeSession::open`], connecting from `local` (e.g. 127.0.0.2, another "host" on
    /// loopback) when given.
    pub async fn open_from(
        control: SocketAddr,
        local: Option<IpAddr>,
        token: Option<&str>,
        announce: Announce,
    ) -> Result<(Self, router_message::Msg), Status> {
        let channel = Endpoint::from_shared(format!("http://{control}"))
            .unwrap()
            .local_address(local)
            .connect()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        Self::open_on(channel, token, announce).await
    }

    /// Like [`NodeSession::open`], over `channel` (a TLS one, say).
    pub async fn open_on(
        channel: Channel,
        token: Option<&str>,
        announce: Announce,
    ) -> Result<(Self, router_message::Msg), Status> {
        let mut client = RegistryClient::new(channel);
        let (tx, rx) = mpsc::channel(16);
        tx.send(NodeMessage {
            msg: Some(Msg::Announce(announce)),
        })
        .await
        .unwrap();
        let mut req = Request::new(ReceiverStream::new(rx));
        if let Some(t) = token {
            req.metadata_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        let rx = client.session(req).await?.into_inner();
        let mut s = Self { tx, rx };
        let first = s
            .next_status()
            .await?
            .ok_or_else(|| Status::aborted("stream ended without an answer"))?;
        Ok((s, first))
    }

    /// The router's next message, or `None` when the stream ended (bounded wait).
    pub async fn next(&mut self) -> Option<router_message::Msg> {
        match tokio::time::timeout(Duration::from_secs(10), self.rx.message()).await {
            Ok(Ok(Some(m))) => m.msg,
            Ok(_) => None,
            Err(_) => panic!("no message from the router within 10 s"),
        }
    }

    /// The router's next message, `Ok(None)` when the stream ended with status OK, or the status
    /// it ended with (bounded wait).
    pub async fn next_status(&mut self) -> Result<Option<router_message::Msg>, Status> {
        match tokio::time::timeout(Duration::from_secs(10), self.rx.message()).await {
            Ok(r) => r.map(|m| m.and_then(|m| m.msg)),
            Err(_) => panic!("no message from the router within 10 s"),
        }
    }

    /// Whether the router sends anything (or ends the stream) within `window`.
    pub async fn quiet_for(&mut self, window: Duration) -> bool {
        tokio::time::timeout(window, self.rx.message())
            .await
            .is_err()
    }

    /// Sends a message.
    pub async fn send(&self, m: Msg) {
        self.tx
            .send(NodeMessage { msg: Some(m) })
            .await
            .expect("session open");
    }

    /// Keeps sending the load in `load` (busy, idle, queue) every 200 ms, as an agent would, until
    /// the returned task is aborted or the session ends.
    pub fn keep_reporting(&self, load: Load) -> JoinHandle<()> {
        let tx = self.tx.clone();
        tokio::spawn(async move {
            loop {
                let (busy, idle, queue) = *load.lock().unwrap();
                let report = LoadReport {
                    busy_workers: busy,
                    idle_workers: idle,
                    listen_queue: queue,
                    ..Default::default()
                };
                if tx
                    .send(NodeMessage {
                        msg: Some(Msg::Report(report)),
                    })
                    .await
                    .is_err()
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    }

    /// Sends a load report.
    pub async fn report(&self, busy: u32, idle: u32, queue: u32) {
        self.send(Msg::Report(LoadReport {
            busy_workers: busy,
            idle_workers: idle,
            listen_queue: queue,
            ..Default::default()
        }))
        .await;
    }
}

/// A node registered with a router the way its agent would: announced, reporting an idle load
/// until dropped.
pub struct Registered {
    /// Its session.
    pub session: NodeSession,
    reporter: JoinHandle<()>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.reporter.abort();
    }
}

/// Registers node `id` at `addr` in pool `default` with the control listener `control`.
pub async fn register(control: SocketAddr, id: &str, addr: SocketAddr) -> Registered {
    let (session, _) = NodeSession::join(control, id, addr).await;
    let reporter = session.keep_reporting(idle());
    Registered { session, reporter }
}
