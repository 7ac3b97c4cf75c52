//! The `Registry` service: one session per node, from its Announce to its Leave. The session
//! admits the node into the cluster, turns its reports into node atomics and lease renewals, and
//! tells the node about drains and removals that concern it. Those it learns from the node itself
//! ([`Node::changed`]), never from the cluster's broadcast: a broadcast drops events for a slow
//! listener, and a session that missed its node's removal would leave its agent stranded.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::{timeout, Instant};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;
use tonic::{Code, Request, Response, Status, Streaming};

use super::agent_admin;
use super::announce::{node_from_announce, AnnounceError};
use super::codec::server::registry_server::Registry;
use super::holders::{Holders, Refused};
use super::reject::RejectReason;
use crate::api::{
    self, node_message::Msg, router_message, Accepted, DrainRequested, Drained, LoadReport,
    NodeMessage, Rejected, Removed, RouterMessage,
};
use crate::clock::now_ms;
use crate::cluster::{Cluster, JoinError, LeaveReason, Pool};
use crate::config::ControlConfig;
use crate::metrics;
use crate::node::{self, AdminState, Node};

/// Reports dropped for coming too fast, after which the session is ended.
const MAX_DROPPED_REPORTS: u32 = 50;

/// The Registry service.
#[derive(Debug, Clone)]
pub struct RegistryService {
    cluster: Arc<Cluster>,
    sessions: Arc<Semaphore>,
    router_id: Arc<str>,
    announce_timeout: Duration,
    min_report_interval: Duration,
    /// `control.max_message_bytes`, named when a message is refused for its size.
    max_message_bytes: usize,
    /// Which live session holds which node id.
    holders: Arc<Holders>,
    /// Ends every session when the router stops, so agents notice at once and reconnect.
    shutdown: CancellationToken,
}

impl RegistryService {
    /// A registry admitting nodes into `cluster`; its sessions end on `shutdown`.
    pub fn new(
        cluster: Arc<Cluster>,
        config: &ControlConfig,
        router_id: &str,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            shutdown,
            cluster,
            sessions: Arc::new(Semaphore::new(config.max_sessions)),
            router_id: router_id.into(),
            announce_timeout: config.announce_timeout,
            min_report_interval: config.min_report_interval,
            max_message_bytes: config.max_message_bytes,
            holders: Arc::default(),
        }
    }
}

impl RegistryService {
    /// Which session holds which node id: the Admin service passes operators' changes to agents
    /// through it.
    pub(super) fn holders(&self) -> Arc<Holders> {
        self.holders.clone()
    }
}

/// What a session sends the agent. Boxed in the channel: a channel allocates its first block of
/// 32 slots up front, and with a session per node, unboxed slots were over a kilobyte per node.
type Outbound = mpsc::Sender<Box<Result<RouterMessage, Status>>>;

#[tonic::async_trait]
impl Registry for RegistryService {
    type SessionStream = Pin<Box<dyn Stream<Item = Result<RouterMessage, Status>> + Send>>;

    async fn session(
        &self,
        req: Request<Streaming<NodeMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let permit = self.sessions.clone().try_acquire_owned().map_err(|_| {
            let refused = RejectReason::TooManySessions;
            refused.count();
            Status::resource_exhausted(refused.message())
        })?;
        let peer = req.remote_addr();
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(self.clone().run(req.into_inner(), tx, peer, permit));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx).map(|m| *m))))
    }
}

impl RegistryService {
    async fn run(
        self,
        mut inbound: Streaming<NodeMessage>,
        tx: Outbound,
        peer_addr: Option<SocketAddr>,
        _permit: OwnedSemaphorePermit,
    ) {
        let peer = peer_addr.map_or_else(|| "unknown".to_owned(), |a| a.to_string());
        let announce = match timeout(self.announce_timeout, inbound.message()).await {
            Ok(Ok(Some(NodeMessage {
                msg: Some(Msg::Announce(a)),
            }))) => a,
            Ok(Ok(None)) => return,
            Ok(Err(status)) => return self.end_unreadable(&tx, &peer, &status).await,
            Ok(Ok(Some(_))) => {
                let first = "the first message must be an Announce";
                return reject(&tx, &peer, RejectReason::Invalid(first.into())).await;
            }
            Err(_) => {
                let late = "no Announce in time";
                return reject(&tx, &peer, RejectReason::Invalid(late.into())).await;
            }
        };
        let (node, pool, lease, interval) = match node_from_announce(&announce) {
            Ok(n) => n,
            Err(AnnounceError(reason)) => {
                return reject(&tx, &peer, RejectReason::Invalid(reason)).await
            }
        };
        let (node, mut claim) =
            match self
                .holders
                .join(&self.cluster, &pool, node, lease, peer_addr)
            {
                Ok(joined) => joined,
                Err(Refused::Join(e)) => return reject(&tx, &peer, RejectReason::Join(e)).await,
                Err(Refused::Held(why)) => {
                    return reject(&tx, &peer, RejectReason::Held(why)).await
                }
            };
        if let Some(state) = &announce.admin {
            // The agent's word wins over a drain or weight this router's state_file still held
            // for the node from before its agent kept its state (validated with the announce).
            let _ = agent_admin::apply(&self.cluster, &node, state);
        }
        let Some(pool) = self.cluster.pool(&pool) else {
            // Dropped by a reload the instant after the join.
            let gone = RejectReason::Join(JoinError::UnknownPool(pool));
            return reject(&tx, &peer, gone).await;
        };
        // Accepted means in the pool: routable, and listed as such.
        pool.published().await;
        tracing::info!(node = %node.id(), pool = %pool.name, %peer, lease_ms = lease.as_millis() as u64, "agent session accepted");
        let accepted = router_message::Msg::Accepted(Accepted {
            router_id: self.router_id.to_string(),
            lease_ms: lease.as_millis() as u32,
            report_interval_ms: interval.as_millis() as u32,
        });
        if send(&tx, accepted).await.is_err() {
            return;
        }
        let mut s = Session {
            registry: &self,
            pool,
            told: node.admin_state(),
            node: node.clone(),
            lease,
            tx: &tx,
            dropped: 0,
            last_report: None,
            asked_drain: false,
        };
        let mut held = true;
        // Made once, not per message: each of these registers with (and on drop leaves) a wait
        // list, and the shutdown token's is shared by every session.
        let changed = node.changed();
        let closed = tx.closed();
        let stopping = self.shutdown.cancelled();
        tokio::pin!(changed, closed, stopping);
        let end = loop {
            // Whatever changed about the node since the last turn is told first: the node keeps
            // its own state, so any number of changes at once is caught up on.
            if let Err(end) = s.catch_up().await {
                break end;
            }
            tokio::select! {
                m = inbound.message() => match m {
                    Ok(Some(NodeMessage { msg: Some(m) })) => match s.on_message(m).await {
                        Ok(()) => continue,
                        Err(end) => break end,
                    },
                    Ok(Some(NodeMessage { msg: None })) => continue,
                    Ok(None) => break "the stream ended; the node stays until its lease runs out",
                    Err(status) => {
                        self.end_unreadable(&tx, &peer, &status).await;
                        break "the stream could not be read; the node stays until its lease runs out";
                    }
                },
                by = &mut claim.replaced, if held => match by {
                    Ok(reason) => {
                        reject(&tx, &peer, RejectReason::Replaced(reason)).await;
                        break "replaced by a new session of the same node";
                    }
                    Err(_) => held = false,
                },
                Some(state) = next_admin(&mut claim.admin) => {
                    let asked = router_message::Msg::AdminRequested(state);
                    if send(&tx, asked).await.is_err() {
                        break "the agent went away; the node stays until its lease runs out";
                    }
                }
                () = changed.as_mut() => {
                    changed.set(node.changed());
                    continue;
                }
                () = closed.as_mut() => break "the agent went away; the node stays until its lease runs out",
                () = stopping.as_mut() => break "the router is stopping",
            }
        };
        tracing::info!(node = %s.node.id(), %peer, end, "agent session ended");
        drop(claim);
    }

    /// Ends a session whose inbound stream failed (a message over `control.max_message_bytes`,
    /// one that does not decode) with a status saying why, rather than a silent OK.
    async fn end_unreadable(&self, tx: &Outbound, peer: &str, status: &Status) {
        let status = unreadable(status, self.max_message_bytes);
        tracing::warn!(%peer, code = ?status.code(), reason = status.message(), "agent session ended: its stream could not be read");
        if status.code() == Code::ResourceExhausted {
            RejectReason::MessageTooLarge.count();
        }
        let _ = tx.send(Box::new(Err(status))).await;
    }
}

/// The status a session ends with when its inbound stream fails: an oversize message becomes
/// `RESOURCE_EXHAUSTED` naming the limit; anything else keeps its code, with the reason.
fn unreadable(status: &Status, limit: usize) -> Status {
    match status.code() {
        Code::OutOfRange | Code::ResourceExhausted => Status::resource_exhausted(format!(
            "message too large: control.max_message_bytes is {limit} bytes on this router ({})",
            status.message()
        )),
        code => Status::new(
            code,
            format!("the router could not read the stream: {}", status.message()),
        ),
    }
}

/// One accepted node's session state.
struct Session<'a> {
    registry: &'a RegistryService,
    pool: Arc<Pool>,
    node: Arc<Node>,
    lease: Duration,
    tx: &'a Outbound,
    dropped: u32,
    last_report: Option<Instant>,
    /// The agent itself asked to drain: no need to tell it an operator did.
    asked_drain: bool,
    /// The node's admin state as last told to the agent.
    told: AdminState,
}

impl Session<'_> {
    /// True while the cluster's node with this id is this session's (not removed, nor replaced
    /// by a re-join).
    fn owns_node(&self) -> bool {
        self.node.departure().is_none()
            && self
                .registry
                .cluster
                .find(self.node.id())
                .is_some_and(|(_, n)| Arc::ptr_eq(&n, &self.node))
    }

    async fn on_message(&mut self, m: Msg) -> Result<(), &'static str> {
        match m {
            Msg::Report(r) => self.on_report(&r).await,
            Msg::Drain(d) => {
                self.asked_drain = true;
                if self.owns_node() {
                    tracing::info!(node = %self.node.id(), reason = d.reason, "agent asked to drain");
                    // The agent drains its node to stop it: no maintenance to keep it in.
                    self.node.leave_once_drained();
                    self.registry.cluster.drain(self.node.id());
                }
                Ok(())
            }
            Msg::Leave(l) => {
                if self.owns_node() {
                    self.registry
                        .cluster
                        .leave(self.node.id(), LeaveReason::AgentLeft(l.reason));
                }
                Err("the agent left")
            }
            Msg::Admin(state) => self.on_admin(&state).await,
            Msg::Announce(_) => {
                let again = "Announce is only valid as the first message";
                reject(self.tx, self.node.id(), RejectReason::Invalid(again.into())).await;
                Err("a second Announce")
            }
        }
    }

    /// The node's agent passes on its operator state (a change made on some router).
    async fn on_admin(&mut self, state: &api::AdminState) -> Result<(), &'static str> {
        let refused = if !self.node.agent_admin() {
            "admin is only valid in a session whose Announce carried admin".to_owned()
        } else if !self.owns_node() {
            return Ok(());
        } else {
            match agent_admin::apply(&self.registry.cluster, &self.node, state) {
                Ok(()) => return Ok(()),
                Err(e) => e.to_string(),
            }
        };
        reject(self.tx, self.node.id(), RejectReason::Invalid(refused)).await;
        Err("an invalid admin state")
    }

    async fn on_report(&mut self, r: &LoadReport) -> Result<(), &'static str> {
        // A report for a node no longer in its pool renews nothing: the answer is Removed, on
        // which the agent announces again.
        if self.node.departure().is_some() {
            return self.catch_up().await;
        }
        let now = Instant::now();
        if self
            .last_report
            .is_some_and(|t| now - t < self.registry.min_report_interval)
        {
            self.dropped += 1;
            metrics::report_dropped();
            if self.dropped > MAX_DROPPED_REPORTS {
                reject(self.tx, self.node.id(), RejectReason::RateLimited).await;
                return Err("rate limited");
            }
            return Ok(());
        }
        self.last_report = Some(now);
        let report = node::LoadReport {
            capacity: r.capacity,
            busy: r.busy_workers,
            queue: r.listen_queue,
            weight: None,
        };
        self.node.record_report(&report, now_ms(), self.lease);
        Ok(())
    }

    /// Tells the agent of a drain, the end of a drain or the node's removal not yet told; an
    /// error ends the session.
    async fn catch_up(&mut self) -> Result<(), &'static str> {
        let state = self.node.admin_state();
        if state != self.told {
            self.told = state;
            let msg = match state {
                // An agent that keeps the node's state was asked through admin_requested instead.
                AdminState::Draining if !self.asked_drain && !self.node.agent_admin() => {
                    Some(router_message::Msg::DrainRequested(DrainRequested {
                        reason: "drain requested by an operator".into(),
                    }))
                }
                AdminState::Drained => Some(router_message::Msg::Drained(Drained {})),
                AdminState::Draining | AdminState::Active | AdminState::Maintenance => None,
            };
            if let Some(msg) = msg {
                send(self.tx, msg)
                    .await
                    .map_err(|()| "the agent went away")?;
            }
        }
        let Some(gone) = self.node.departure() else {
            return Ok(());
        };
        // Told Drained already: the agent ends the session itself.
        if gone.label == LeaveReason::Drained.label() {
            return Err("the node drained and left");
        }
        let reason = gone.reason.clone();
        // Told once its pool's snapshot no longer has it, so the agent's re-announce is a join.
        self.pool.published().await;
        let _ = send(self.tx, router_message::Msg::Removed(Removed { reason })).await;
        Err("the node was removed")
    }
}

/// The next operator change for the agent; pending for ever when there is none to come.
async fn next_admin(rx: &mut Option<mpsc::Receiver<api::AdminState>>) -> Option<api::AdminState> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn send(tx: &Outbound, msg: router_message::Msg) -> Result<(), ()> {
    tx.send(Box::new(Ok(RouterMessage { msg: Some(msg) })))
        .await
        .map_err(drop)
}

async fn reject(tx: &Outbound, who: &str, reason: RejectReason) {
    reason.emit(who);
    let rejected = Rejected {
        reason: reason.message(),
        code: reason.code() as i32,
    };
    let _ = send(tx, router_message::Msg::Rejected(rejected)).await;
}
