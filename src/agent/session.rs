//! One router's Registry session loop: announce the node while it answers, report its load, end
//! the session while it does not, reconnect with backoff, and drain then leave on shutdown.
//!
//! Refusals: `REJECT_CODE_INVALID` means the announce itself is wrong (built from this agent's
//! config), so resending it cannot help: that router is given up until the agent restarts. Every
//! other refusal (unknown pool, pool full, address not allowed, id taken, rate limited) may end
//! with a router reload or another node leaving, so it is retried at the top of the backoff (~5 s).
//! Operators' changes (drain, maintenance, weight, resume) come as `admin_requested`: the agent
//! keeps them (`admin_state`) and sends them to every router, each announce carrying the state
//! kept. A router older than that sends `DrainRequested` instead, which holds on that router
//! alone: once that session ends, the agent does not re-announce there until uWSGI restarts (a
//! new master pid) or the agent restarts.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::{sleep, timeout, Instant, MissedTickBehavior};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Endpoint;
use tonic::{Code, Request, Streaming};

use super::admin_state::AdminStore;
use super::backoff::Backoff;
use super::counters::AgentCounters;
use super::probe::NodeState;
use super::stats::NodeLoad;
use crate::api::registry_client::RegistryClient;
use crate::api::{
    node_message, router_message, AdminState, Announce, LoadReport, NodeMessage, RejectCode,
    Rejected, RouterMessage,
};

/// Time for the router to answer an Announce (routerd's own announce timeout is 10 s).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// After Leave, time for the router to end the stream, so the Leave is delivered before exit.
pub(crate) const LEAVE_GRACE: Duration = Duration::from_secs(1);
/// Messages queued towards one router; a router this far behind is treated as broken.
const OUTBOUND_QUEUE: usize = 8;
/// Reason sent with Drain and Leave on shutdown.
const STOPPING: &str = "agent stopping";

/// How a session ended, and so what the loop does next.
#[derive(Debug)]
enum End {
    /// Shutdown is complete for this router.
    Stopped,
    /// The node stopped answering: wait until it answers, then re-announce.
    NodeDown,
    /// The router removed the node: re-announce.
    Removed(String),
    /// An operator drained the node here: hold until uWSGI's pid changes.
    Held(u64),
    /// The router refused the announce.
    Rejected(Rejected),
    /// Connecting, authenticating or the stream failed.
    Failed(String),
}

/// One router, as seen by the agent.
pub(crate) struct RouterLink {
    pub(crate) url: String,
    pub(crate) endpoint: Endpoint,
    pub(crate) announce: Announce,
    pub(crate) bearer: Option<MetadataValue<Ascii>>,
    pub(crate) interval: Duration,
    pub(crate) drain_timeout: Duration,
    pub(crate) node: watch::Receiver<NodeState>,
    pub(crate) counters: Arc<AgentCounters>,
    /// Where operators' changes passed on by this router are kept.
    pub(crate) admin: Arc<AdminStore>,
    /// The node's operator state, as kept: announced, and sent on each change.
    pub(crate) admin_state: watch::Receiver<AdminState>,
    /// Cancelled on shutdown: drain, leave, return.
    pub(crate) stop: CancellationToken,
}

/// What opening a session gave.
enum Opened {
    /// Accepted; the report interval the router expects.
    Live(Stream, Duration),
    /// Accepted after shutdown began: drain it by this deadline.
    Stopping(Stream, Instant),
    /// Not accepted.
    Failed(End),
}

/// An open session: what goes to the router, what comes back.
struct Stream {
    tx: mpsc::Sender<NodeMessage>,
    inbound: Streaming<RouterMessage>,
    operator_drain: bool,
}

impl RouterLink {
    /// Keeps the node announced on this router until shutdown.
    pub(crate) async fn run(mut self) {
        let mut backoff = Backoff::new();
        let mut held_pid = None;
        let mut failing = false;
        while let Some(load) = self.wait_node_up(held_pid).await {
            held_pid = None;
            let end = self.session(load, &mut backoff).await;
            let was_failing = std::mem::replace(&mut failing, matches!(end, End::Failed(_)));
            let delay = match end {
                End::Stopped => return,
                End::NodeDown => continue,
                End::Held(pid) => {
                    tracing::info!(router = %self.url, "drained by an operator; not re-announcing here until uWSGI restarts");
                    held_pid = Some(pid);
                    continue;
                }
                End::Removed(reason) => {
                    tracing::info!(router = %self.url, reason, "node removed by the router; re-announcing");
                    backoff.next_delay()
                }
                End::Rejected(r) if self.retry_rejected(&r) => backoff.max_delay(),
                End::Rejected(_) => return self.stop.cancelled().await,
                End::Failed(error) if was_failing => {
                    tracing::debug!(router = %self.url, error, "router still unreachable");
                    backoff.next_delay()
                }
                End::Failed(error) => {
                    tracing::warn!(router = %self.url, error, "router session failed; reconnecting with backoff");
                    backoff.next_delay()
                }
            };
            tokio::select! {
                () = sleep(delay) => {}
                () = self.stop.cancelled() => return,
            }
        }
    }

    /// Logs a refusal; false when retrying cannot help.
    fn retry_rejected(&self, r: &Rejected) -> bool {
        AgentCounters::inc(&self.counters.rejections);
        let code = RejectCode::try_from(r.code).unwrap_or(RejectCode::Unspecified);
        if code == RejectCode::Invalid {
            tracing::error!(router = %self.url, reason = r.reason, code = code.as_str_name(), "announce rejected as invalid; not retrying this router until the agent restarts");
            return false;
        }
        tracing::warn!(router = %self.url, reason = r.reason, code = code.as_str_name(), "refused by the router; retrying later");
        true
    }

    /// The node's load once it answers (and, when held, runs under another pid); `None` on stop.
    async fn wait_node_up(&mut self, held_pid: Option<u64>) -> Option<NodeLoad> {
        loop {
            let state = *self.node.borrow_and_update();
            if let Some(load) = state.filter(|l| Some(l.pid) != held_pid) {
                return Some(load);
            }
            tokio::select! {
                changed = self.node.changed() => changed.ok()?,
                () = self.stop.cancelled() => return None,
            }
        }
    }

    /// One session, from connect to its end.
    async fn session(&mut self, load: NodeLoad, backoff: &mut Backoff) -> End {
        let (s, expected) = match self.open_or_stop(load).await {
            Opened::Live(s, expected) => (s, expected),
            Opened::Stopping(s, deadline) => return self.drain(s, deadline).await,
            Opened::Failed(end) => return end,
        };
        let _connected = self.counters.connected();
        backoff.reset();
        // The freshest load: the stats may have been read again while connecting.
        let Some(latest) = *self.node.borrow_and_update() else {
            return End::NodeDown;
        };
        self.serve(s, expected, latest).await
    }

    /// An accepted session: a report per stats read (and more often if the router expects it),
    /// until the node stops answering, the router ends it, or shutdown.
    async fn serve(&mut self, mut s: Stream, expected: Duration, mut latest: NodeLoad) -> End {
        if let Err(end) = self.report(&s, latest) {
            return end;
        }
        let mut last_report = Instant::now();
        // A router that expects reports more often than the stats are read gets the latest load
        // again, so its lease never runs out between two reads.
        let resend = !expected.is_zero() && expected < self.interval;
        let mut keepalive = tokio::time::interval(expected.max(Duration::from_millis(100)));
        keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let end = loop {
            tokio::select! {
                () = self.stop.cancelled() => {
                    let deadline = crate::clock::deadline(self.drain_timeout);
                    return self.drain(s, deadline).await;
                }
                changed = self.node.changed() => {
                    if changed.is_err() {
                        return End::Stopped;
                    }
                    let Some(load) = *self.node.borrow_and_update() else {
                        tracing::info!(router = %self.url, "ending the session while the node does not answer");
                        break End::NodeDown;
                    };
                    latest = load;
                    if let Err(end) = self.report(&s, latest) {
                        break end;
                    }
                    last_report = Instant::now();
                }
                _ = keepalive.tick(), if resend => {
                    if last_report.elapsed() >= expected {
                        if let Err(end) = self.report(&s, latest) {
                            break end;
                        }
                        last_report = Instant::now();
                    }
                }
                changed = self.admin_state.changed() => {
                    if changed.is_err() {
                        return End::Stopped;
                    }
                    if let Err(end) = self.send_admin_state(&s) {
                        break end;
                    }
                }
                m = s.inbound.message() => {
                    if let Some(end) = self.on_message(&mut s, m) {
                        break end;
                    }
                }
            }
        };
        match end {
            End::Rejected(_) | End::Stopped => end,
            _ if s.operator_drain => End::Held(latest.pid),
            end => end,
        }
    }

    /// Opens a session; if shutdown starts meanwhile, still lets an announce already on its way
    /// be answered (within the drain timeout) so an accepted node gets drained, not stranded.
    async fn open_or_stop(&mut self, load: NodeLoad) -> Opened {
        let stop = self.stop.clone();
        let limit = self.drain_timeout;
        let open = self.open(load);
        tokio::pin!(open);
        tokio::select! {
            opened = &mut open => match opened {
                Ok((s, expected)) => Opened::Live(s, expected),
                Err(end) => Opened::Failed(end),
            },
            () = stop.cancelled() => {
                let deadline = crate::clock::deadline(limit);
                match tokio::time::timeout_at(deadline, open).await {
                    Ok(Ok((s, _))) => Opened::Stopping(s, deadline),
                    _ => Opened::Failed(End::Stopped),
                }
            }
        }
    }

    /// Connects, announces and waits for the answer. On success: the stream and the report
    /// interval the router expects.
    async fn open(&mut self, load: NodeLoad) -> Result<(Stream, Duration), End> {
        let channel = self
            .endpoint
            .connect()
            .await
            .map_err(|e| End::Failed(format!("cannot connect: {}", error_chain(&e))))?;
        let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
        let announce = Announce {
            capacity: load.capacity,
            // Marked seen: a change from now on is sent once the session is accepted.
            admin: Some(self.admin_state.borrow_and_update().clone()),
            ..self.announce.clone()
        };
        let _ = tx.try_send(message(node_message::Msg::Announce(announce)));
        AgentCounters::inc(&self.counters.announces);
        let mut request = Request::new(ReceiverStream::new(rx));
        if let Some(bearer) = &self.bearer {
            request
                .metadata_mut()
                .insert("authorization", bearer.clone());
        }
        let mut client = RegistryClient::new(channel);
        let answered = timeout(ANSWER_TIMEOUT, async {
            let mut inbound = client.session(request).await?.into_inner();
            let first = inbound.message().await?;
            Ok::<_, tonic::Status>((inbound, first))
        })
        .await;
        let (inbound, first) = match answered {
            Err(_) => {
                return Err(End::Failed(format!(
                    "no answer to the announce within {ANSWER_TIMEOUT:?}"
                )))
            }
            Ok(Err(status)) => return Err(End::Failed(describe(&status))),
            Ok(Ok(answer)) => answer,
        };
        match first.and_then(|m| m.msg) {
            Some(router_message::Msg::Accepted(a)) => {
                tracing::info!(router = %self.url, router_id = a.router_id, lease_ms = a.lease_ms, pool = self.announce.pool, node = self.announce.node_id, "connected: node accepted");
                let stream = Stream {
                    tx,
                    inbound,
                    operator_drain: false,
                };
                Ok((
                    stream,
                    Duration::from_millis(u64::from(a.report_interval_ms)),
                ))
            }
            Some(router_message::Msg::Rejected(r)) => Err(End::Rejected(r)),
            Some(other) => Err(End::Failed(format!(
                "the router answered the announce with {other:?}"
            ))),
            None => Err(End::Failed(
                "the router ended the session without answering the announce".to_owned(),
            )),
        }
    }

    /// Queues a load report; a router that stopped taking them ends the session.
    fn report(&self, s: &Stream, load: NodeLoad) -> Result<(), End> {
        let report = LoadReport {
            busy_workers: load.busy,
            idle_workers: load.idle,
            listen_queue: load.listen_queue,
            requests_total: load.requests,
            avg_response_time_us: load.avg_rt_us,
            // Always the current count: 0 would mean "as announced", which is wrong once it moved.
            capacity: load.capacity,
        };
        match s.tx.try_send(message(node_message::Msg::Report(report))) {
            Ok(()) => {
                AgentCounters::inc(&self.counters.reports_sent);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => Err(End::Failed(
                "the router stopped taking load reports".to_owned(),
            )),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                Err(End::Failed("the session's stream closed".to_owned()))
            }
        }
    }

    /// Handles what the router sent during the session; `Some` ends it.
    fn on_message(
        &self,
        s: &mut Stream,
        m: Result<Option<RouterMessage>, tonic::Status>,
    ) -> Option<End> {
        let msg = match m {
            Ok(Some(RouterMessage { msg: Some(msg) })) => msg,
            Ok(Some(RouterMessage { msg: None })) => return None,
            Ok(None) => return Some(End::Failed("the router ended the session".to_owned())),
            Err(status) => return Some(End::Failed(describe(&status))),
        };
        match msg {
            router_message::Msg::Removed(r) => return Some(End::Removed(r.reason)),
            router_message::Msg::Rejected(r) => return Some(End::Rejected(r)),
            router_message::Msg::DrainRequested(d) => {
                s.operator_drain = true;
                tracing::info!(router = %self.url, reason = d.reason, "an operator asked to drain this node");
            }
            router_message::Msg::Drained(_) => {
                tracing::info!(router = %self.url, "node drained on this router");
            }
            router_message::Msg::AdminRequested(state) => self.admin.set(state, &self.url),
            router_message::Msg::Accepted(_) => {}
        }
        None
    }
}

mod admin;
mod drain;

fn message(msg: node_message::Msg) -> NodeMessage {
    NodeMessage { msg: Some(msg) }
}

/// A failed call, with a hint for the statuses an operator can fix.
fn describe(status: &tonic::Status) -> String {
    let hint = match status.code() {
        Code::Unauthenticated | Code::PermissionDenied => {
            " (check token_file or the client certificate)"
        }
        Code::Unimplemented => " (no Registry there: is it routerd's control listener?)",
        Code::ResourceExhausted => {
            " (a message was over a router limit: control.max_message_bytes or control.max_sessions)"
        }
        _ => "",
    };
    format!("{:?}: {}{hint}", status.code(), status.message())
}

/// An error with its sources, since tonic's transport errors hide the cause one level down.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
