//! One simulated agent: a Registry session that announces its node, reports load every interval,
//! and re-announces when the router says the node was removed, as router-agent does.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{interval_at, Instant, MissedTickBehavior};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::Streaming;
use uwsgi_router::api::registry_client::RegistryClient;
use uwsgi_router::api::{
    node_message, router_message, Announce, Leave, LoadReport, NodeMessage, RouterMessage,
};

/// Messages queued towards the router, as router-agent's outbound queue.
const OUTBOUND: usize = 8;
/// Wait before a new session after a refused or broken one (router-agent backs off likewise).
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// After Leave, how long the router has to end the stream.
const LEAVE_GRACE: Duration = Duration::from_secs(2);
/// Workers every simulated node claims.
const CAPACITY: u32 = 4;

/// Where a simulated agent is, as seen from the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Announcing, or waiting to announce again.
    Joining = 0,
    /// Accepted, and not told otherwise since: the agent believes its node is in the pool.
    Registered = 1,
    /// Sent Leave; done.
    Left = 2,
}

/// A simulated agent's state, shared with the fleet.
#[derive(Debug, Default)]
pub struct SimState {
    phase: AtomicU8,
    /// Accepted answers so far: which incarnation of the registration is current.
    accepted: AtomicU64,
    /// `Removed` messages received.
    pub(crate) removed: AtomicU64,
    /// `Rejected` answers, and sessions that broke (status or end of stream) without either.
    pub(crate) failed: AtomicU64,
}

impl SimState {
    /// Where the agent is now.
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            1 => Phase::Registered,
            2 => Phase::Left,
            _ => Phase::Joining,
        }
    }

    /// How many times the node was accepted so far.
    pub fn generation(&self) -> u64 {
        self.accepted.load(Ordering::Acquire)
    }

    fn set(&self, p: Phase) {
        self.phase.store(p as u8, Ordering::Release);
    }
}

/// What one simulated agent needs to run.
pub(crate) struct Sim {
    pub(crate) channel: Channel,
    pub(crate) id: Arc<str>,
    pub(crate) pool: Arc<str>,
    /// The node address it announces (never connected to: no request is routed in this test).
    pub(crate) address: String,
    pub(crate) interval: Duration,
    /// Where in the interval its reports go, so that a fleet's reports spread evenly.
    pub(crate) offset: Duration,
    /// While true, reports are held back (and a removed node waits to re-announce).
    pub(crate) paused: watch::Receiver<bool>,
    pub(crate) state: Arc<SimState>,
}

/// How one session ended.
enum End {
    /// The router removed the node: announce again at once.
    Removed,
    /// Refused or broken: announce again after [`RETRY_AFTER`].
    Failed,
    /// Leave was sent (or the fleet is gone): stop.
    Stop,
}

impl Sim {
    /// Runs sessions until `leave` fires (then sends Leave) or its sender is dropped.
    pub(crate) async fn run(mut self, mut leave: oneshot::Receiver<()>) {
        loop {
            self.state.set(Phase::Joining);
            // A node whose lease ran out while reports were held back rejoins once they resume.
            if self.paused.wait_for(|p| !p).await.is_err() {
                return;
            }
            match self.session(&mut leave).await {
                End::Removed => {
                    self.state.removed.fetch_add(1, Ordering::Relaxed);
                }
                End::Failed => {
                    self.state.failed.fetch_add(1, Ordering::Relaxed);
                    tokio::select! {
                        _ = tokio::time::sleep(RETRY_AFTER) => {}
                        _ = &mut leave => return,
                    }
                }
                End::Stop => {
                    self.state.set(Phase::Left);
                    return;
                }
            }
        }
    }

    async fn session(&mut self, leave: &mut oneshot::Receiver<()>) -> End {
        let (tx, rx) = mpsc::channel(OUTBOUND);
        if tx.send(self.announce()).await.is_err() {
            return End::Failed;
        }
        let mut client = RegistryClient::new(self.channel.clone());
        let mut answers = match client.session(ReceiverStream::new(rx)).await {
            Ok(r) => r.into_inner(),
            Err(_) => return End::Failed,
        };
        match answers.message().await {
            Ok(Some(RouterMessage {
                msg: Some(router_message::Msg::Accepted(_)),
            })) => {
                self.state.accepted.fetch_add(1, Ordering::AcqRel);
                self.state.set(Phase::Registered);
            }
            _ => return End::Failed,
        }
        let start = Instant::now() + self.offset;
        let mut tick = interval_at(start, self.interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if !*self.paused.borrow() && tx.send(report()).await.is_err() {
                        return End::Failed;
                    }
                }
                msg = answers.message() => match msg {
                    Ok(Some(RouterMessage { msg: Some(router_message::Msg::Removed(_)) })) => {
                        return End::Removed
                    }
                    // Drain requests and the like: nothing to do for a simulated node.
                    Ok(Some(RouterMessage { msg: Some(m) })) if !is_rejected(&m) => {}
                    _ => return End::Failed,
                },
                res = &mut *leave => {
                    if res.is_ok() {
                        send_leave(&tx, &mut answers).await;
                    }
                    return End::Stop;
                }
            }
        }
    }

    fn announce(&self) -> NodeMessage {
        NodeMessage {
            msg: Some(node_message::Msg::Announce(Announce {
                node_id: self.id.to_string(),
                pool: self.pool.to_string(),
                address: self.address.clone(),
                capacity: CAPACITY,
                weight: 1,
                report_interval_ms: u32::try_from(self.interval.as_millis()).unwrap_or(u32::MAX),
                ..Announce::default()
            })),
        }
    }
}

fn is_rejected(m: &router_message::Msg) -> bool {
    matches!(m, router_message::Msg::Rejected(_))
}

fn report() -> NodeMessage {
    NodeMessage {
        msg: Some(node_message::Msg::Report(LoadReport {
            busy_workers: 1,
            idle_workers: CAPACITY - 1,
            ..LoadReport::default()
        })),
    }
}

/// Sends Leave and waits (bounded) for the router to end the stream, so the Leave is delivered.
async fn send_leave(tx: &mpsc::Sender<NodeMessage>, answers: &mut Streaming<RouterMessage>) {
    let leave = NodeMessage {
        msg: Some(node_message::Msg::Leave(Leave {
            reason: "scale bench churn".to_owned(),
        })),
    };
    if tx.send(leave).await.is_ok() {
        let drain = async { while let Ok(Some(_)) = answers.message().await {} };
        let _ = tokio::time::timeout(LEAVE_GRACE, drain).await;
    }
}
