//! Test support for router-agent: a fake uWSGI stats server serving the fixtures, a fake gRPC
//! Registry that records what agents send and answers as scripted, and agent configs on them.
#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};
use uwsgi_router::agent::config::FileConfig;
use uwsgi_router::agent::{AgentConfig, Flags};
use uwsgi_router::api::registry_server::{Registry, RegistryServer};
use uwsgi_router::api::{
    node_message::Msg, router_message, Accepted, Announce, Drained, LoadReport, NodeMessage,
    RejectCode, Rejected, RouterMessage,
};

/// Upper bound for any single wait; a hang fails the test instead of stalling CI.
pub const STEP: Duration = Duration::from_secs(20);
/// Poll period of every wait.
const POLL: Duration = Duration::from_millis(10);
/// The agents' report interval in these tests.
pub const INTERVAL: Duration = Duration::from_millis(100);
/// The token the fake registry expects.
pub const TOKEN: &str = "s3cret-registry-token";

/// A stats fixture's bytes: `idle`, `busy` or `queued`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/uwsgi-stats-{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(path).expect("stats fixture")
}

/// Polls `cond` every 10 ms until it holds; panics with `what` after [`STEP`].
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + STEP;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// A fake uWSGI stats server: each connection gets the current document, then EOF.
pub struct FakeStats {
    pub addr: SocketAddr,
    doc: Arc<Mutex<Vec<u8>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl FakeStats {
    /// Serves fixture `name` on an ephemeral loopback port.
    pub async fn start(name: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let s = Self {
            addr: listener.local_addr().unwrap(),
            doc: Arc::new(Mutex::new(fixture(name))),
            task: Mutex::new(None),
        };
        s.serve(listener);
        s
    }

    fn serve(&self, listener: TcpListener) {
        let doc = self.doc.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let bytes = doc.lock().unwrap().clone();
                tokio::spawn(async move {
                    use tokio::io::AsyncWriteExt;
                    let _ = conn.write_all(&bytes).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        *self.task.lock().unwrap() = Some(task);
    }

    /// Serves fixture `name` from now on.
    pub fn set(&self, name: &str) {
        *self.doc.lock().unwrap() = fixture(name);
    }

    /// Serves these bytes from now on (for malformed documents).
    pub fn set_raw(&self, bytes: &[u8]) {
        *self.doc.lock().unwrap() = bytes.to_vec();
    }

    /// Stops listening: connections are refused, as when uWSGI is down.
    pub async fn stop(&self) {
        let task = self.task.lock().unwrap().take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    /// Listens again on the same port.
    pub async fn resume(&self) {
        let listener = rebind(self.addr).await;
        self.serve(listener);
    }
}

/// Binds `addr` again, retrying while the old socket is still being closed.
async fn rebind(addr: SocketAddr) -> TcpListener {
    let deadline = Instant::now() + STEP;
    loop {
        match TcpListener::bind(addr).await {
            Ok(l) => return l,
            Err(e) => assert!(Instant::now() < deadline, "cannot rebind {addr}: {e}"),
        }
        tokio::time::sleep(POLL).await;
    }
}

/// What the fake registry saw.
#[derive(Debug, Clone)]
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

/// A token file and agent configs pointing at it.
pub struct AgentSetup {
    pub dir: TempDir,
    pub token_file: PathBuf,
}

impl AgentSetup {
    /// A temp dir holding a token file with [`TOKEN`].
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("registry.token");
        std::fs::write(&token_file, format!("\n  {TOKEN}  \n")).unwrap();
        Self { dir, token_file }
    }

    /// The flags of an agent for node `node` with stats at `stats`, reporting to `routers` every
    /// [`INTERVAL`]; `extra` flags are appended and replace the defaults of the same flag.
    pub fn args(
        &self,
        routers: &[String],
        stats: SocketAddr,
        node: &str,
        extra: &[&str],
    ) -> Vec<String> {
        let mut args: Vec<String> = Vec::new();
        for r in routers {
            args.extend(["--router".to_owned(), r.clone()]);
        }
        let defaults = [
            ("--pool", "web"),
            ("--node", node),
            ("--interval", "100ms"),
            ("--drain-timeout", "5s"),
            ("--label", "zone=test"),
            ("--weight", "5"),
        ];
        for (flag, value) in defaults {
            if !extra.contains(&flag) {
                args.extend([flag.to_owned(), value.to_owned()]);
            }
        }
        args.extend(["--stats".to_owned(), stats.to_string()]);
        args.extend([
            "--token-file".to_owned(),
            self.token_file.display().to_string(),
        ]);
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    /// The validated config of [`AgentSetup::args`].
    pub fn config(
        &self,
        routers: &[String],
        stats: SocketAddr,
        node: &str,
        extra: &[&str],
    ) -> AgentConfig {
        use clap::Parser;
        let mut argv = vec!["router-agent".to_owned()];
        argv.extend(self.args(routers, stats, node, extra));
        let flags = Flags::try_parse_from(argv).expect("agent flags");
        AgentConfig::merge(FileConfig::default(), flags).expect("agent config")
    }
}
