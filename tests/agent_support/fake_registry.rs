//! A fake gRPC Registry: it records what agents send (calls, messages with their arrival time,
//! ends of streams) and answers as scripted, requiring `Bearer TOKEN`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};
use uwsgi_router::api::registry_server::{Registry, RegistryServer};
use uwsgi_router::api::{
    node_message::Msg, router_message, Accepted, Announce, Drained, LoadReport, NodeMessage,
    RejectCode, Rejected, RouterMessage,
};

use super::{rebind, INTERVAL, TOKEN};
use crate::support::wait::{wait_until, STEP};

/// What the fake registry saw. A test record, kept in order as it came: an Announce makes the
/// message variant large, and boxing it would buy nothing here.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum Seen {
    /// A Session call, with its `authorization` metadata.
    Call { authorization: Option<String> },
    /// A message of session `session` (numbered from 0 in call order).
    Msg {
        session: usize,
        msg: Msg,
        at: Instant,
    },
    /// Session `session`'s inbound stream ended or broke.
    Closed { session: usize },
}

/// How the fake registry answers.
#[derive(Debug)]
pub struct Script {
    /// Refusals for the next announces, in order; then announces are accepted.
    pub reject: VecDeque<RejectCode>,
    /// Answer Drain with Drained.
    pub answer_drain: bool,
    /// `report_interval_ms` of Accepted.
    pub report_interval_ms: u32,
}

impl Default for Script {
    fn default() -> Self {
        Self {
            reject: VecDeque::new(),
            answer_drain: true,
            report_interval_ms: INTERVAL.as_millis() as u32,
        }
    }
}

type Outbound = mpsc::Sender<Result<RouterMessage, Status>>;

#[derive(Default)]
struct State {
    seen: Mutex<Vec<Seen>>,
    script: Mutex<Script>,
    sessions: Mutex<Vec<mpsc::WeakSender<Result<RouterMessage, Status>>>>,
}

impl State {
    fn record(&self, s: Seen) {
        self.seen.lock().unwrap().push(s);
    }
}

#[derive(Clone)]
struct Handler {
    state: Arc<State>,
    kill: CancellationToken,
}

/// A fake Registry server on loopback that requires `Bearer TOKEN`.
pub struct FakeRegistry {
    pub addr: SocketAddr,
    state: Arc<State>,
    kill: CancellationToken,
    server: JoinHandle<()>,
}

impl FakeRegistry {
    /// Starts on an ephemeral port.
    pub async fn start() -> Self {
        Self::serve(TcpListener::bind("127.0.0.1:0").await.unwrap())
    }

    /// Starts on `addr` (a router coming back after a restart).
    pub async fn start_at(addr: SocketAddr) -> Self {
        Self::serve(rebind(addr).await)
    }

    fn serve(listener: TcpListener) -> Self {
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let kill = CancellationToken::new();
        let handler = Handler {
            state: state.clone(),
            kill: kill.clone(),
        };
        let shutdown = kill.clone().cancelled_owned();
        let server = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(RegistryServer::new(handler))
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
                .await;
        });
        Self {
            addr,
            state,
            kill,
            server,
        }
    }

    /// The URL agents use.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Changes how it answers from now on.
    pub fn script(&self, f: impl FnOnce(&mut Script)) {
        f(&mut self.state.script.lock().unwrap());
    }

    /// Everything seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// The messages seen, with their session number.
    pub fn messages(&self) -> Vec<(usize, Msg)> {
        self.seen()
            .into_iter()
            .filter_map(|s| match s {
                Seen::Msg { session, msg, .. } => Some((session, msg)),
                _ => None,
            })
            .collect()
    }

    /// The announces seen, in order.
    pub fn announces(&self) -> Vec<Announce> {
        self.messages()
            .into_iter()
            .filter_map(|(_, m)| match m {
                Msg::Announce(a) => Some(a),
                _ => None,
            })
            .collect()
    }

    /// The load reports seen, with their arrival time.
    pub fn reports(&self) -> Vec<(LoadReport, Instant)> {
        self.seen()
            .into_iter()
            .filter_map(|s| match s {
                Seen::Msg {
                    msg: Msg::Report(r),
                    at,
                    ..
                } => Some((r, at)),
                _ => None,
            })
            .collect()
    }

    /// Sessions whose inbound stream ended.
    pub fn closed(&self) -> usize {
        self.seen()
            .iter()
            .filter(|s| matches!(s, Seen::Closed { .. }))
            .count()
    }

    /// Sends `msg` on every open session.
    pub async fn send_all(&self, msg: router_message::Msg) {
        let sessions: Vec<Outbound> = self
            .state
            .sessions
            .lock()
            .unwrap()
            .iter()
            .filter_map(|w| w.upgrade())
            .collect();
        for tx in sessions {
            let _ = tx
                .send(Ok(RouterMessage {
                    msg: Some(msg.clone()),
                }))
                .await;
        }
    }

    /// Waits until `cond` holds on what was seen.
    pub async fn wait(&self, what: &str, cond: impl Fn(&[Seen]) -> bool) {
        wait_until(what, || cond(&self.seen())).await;
    }

    /// Waits for `n` announces in total.
    pub async fn wait_announces(&self, n: usize) {
        wait_until(&format!("{n} announce(s)"), || self.announces().len() >= n).await;
    }

    /// Waits for a report matching `pred`.
    pub async fn wait_report(&self, what: &str, pred: impl Fn(&LoadReport) -> bool) {
        wait_until(what, || self.reports().iter().any(|(r, _)| pred(r))).await;
    }

    /// Waits for `n` reports in total; returns them with their arrival times.
    pub async fn wait_reports(&self, n: usize) -> Vec<(LoadReport, Instant)> {
        wait_until(format!("{n} report(s)"), || self.reports().len() >= n).await;
        self.reports()
    }

    /// Waits for a report on session `session` (numbered from 0 in call order).
    pub async fn wait_report_on_session(&self, session: usize) {
        let what = format!("a report on session {session}");
        self.wait(&what, |seen| {
            seen.iter().any(
                |e| matches!(e, Seen::Msg { session: s, msg: Msg::Report(_), .. } if *s == session),
            )
        })
        .await;
    }

    /// Waits until `n` sessions have ended.
    pub async fn wait_closed(&self, n: usize) {
        wait_until(format!("{n} session(s) to end"), || self.closed() >= n).await;
    }

    /// Stops as a crashing router would: open sessions fail, the port closes.
    pub async fn stop(self) {
        self.kill.cancel();
        let mut server = self.server;
        if tokio::time::timeout(STEP, &mut server).await.is_err() {
            server.abort();
        }
    }
}

#[tonic::async_trait]
impl Registry for Handler {
    type SessionStream = ReceiverStream<Result<RouterMessage, Status>>;

    async fn session(
        &self,
        req: Request<Streaming<NodeMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let authorization = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        self.state.record(Seen::Call {
            authorization: authorization.clone(),
        });
        if authorization.as_deref() != Some(&format!("Bearer {TOKEN}")) {
            return Err(Status::unauthenticated("bad registry token"));
        }
        let (tx, rx) = mpsc::channel(16);
        let session = {
            let mut sessions = self.state.sessions.lock().unwrap();
            sessions.push(tx.downgrade());
            sessions.len() - 1
        };
        let (state, kill) = (self.state.clone(), self.kill.clone());
        let inbound = req.into_inner();
        tokio::spawn(async move {
            tokio::select! {
                () = run_session(&state, session, inbound, &tx) => {}
                () = kill.cancelled() => {
                    let _ = tx.send(Err(Status::unavailable("router stopping"))).await;
                }
            }
            state.record(Seen::Closed { session });
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

async fn run_session(
    state: &State,
    session: usize,
    mut inbound: Streaming<NodeMessage>,
    tx: &Outbound,
) {
    while let Ok(Some(NodeMessage { msg: Some(msg) })) = inbound.message().await {
        state.record(Seen::Msg {
            session,
            msg: msg.clone(),
            at: Instant::now(),
        });
        let answer = match msg {
            Msg::Announce(_) => {
                let mut script = state.script.lock().unwrap();
                match script.reject.pop_front() {
                    Some(code) => Some(router_message::Msg::Rejected(Rejected {
                        reason: format!("scripted {}", code.as_str_name()),
                        code: code as i32,
                    })),
                    None => Some(router_message::Msg::Accepted(Accepted {
                        router_id: format!("fake-{session}"),
                        lease_ms: 3 * script.report_interval_ms.max(1),
                        report_interval_ms: script.report_interval_ms,
                    })),
                }
            }
            Msg::Drain(_) if state.script.lock().unwrap().answer_drain => {
                Some(router_message::Msg::Drained(Drained {}))
            }
            Msg::Leave(_) => return,
            _ => None,
        };
        if let Some(answer) = answer {
            let rejected = matches!(answer, router_message::Msg::Rejected(_));
            if tx
                .send(Ok(RouterMessage { msg: Some(answer) }))
                .await
                .is_err()
                || rejected
            {
                return;
            }
        }
    }
}
