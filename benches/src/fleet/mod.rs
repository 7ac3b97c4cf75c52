//! A simulated fleet of agents on routerd's gRPC Registry, for the scale benchmark: one Session
//! stream per node, spread over a chosen number of HTTP/2 connections (one per node, as real
//! agents, or many streams on each), each announcing its node and then reporting its load every
//! interval. The fleet can hold reports back (every lease runs out), make nodes leave and new ones
//! join (churn), and say which agents believe they are registered, to compare with the router's
//! pool (ListNodes).

mod session;

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};
use uwsgi_router::api::admin_client::AdminClient;
use uwsgi_router::api::{ListNodesRequest, ListPoolsRequest};

use session::Sim;
pub use session::{Phase, SimState};

/// ListNodes of 10,000 nodes is a few MB: far above tonic's default 4 MB limit at fleet sizes.
const MAX_ANSWER_BYTES: usize = 512 << 20;
/// Connections opened at once while connecting the fleet.
const CONNECT_BATCH: usize = 256;

/// The shape of a fleet.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// The router's control listener.
    pub control: SocketAddr,
    /// The pool every node joins.
    pub pool: String,
    /// HTTP/2 connections the sessions are spread over (round robin).
    pub connections: usize,
    /// Load report interval (the lease is three of them).
    pub interval: Duration,
}

/// One agent of the fleet.
struct Member {
    id: Arc<str>,
    state: Arc<SimState>,
    leave: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

/// Counts over the whole fleet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FleetCounts {
    /// Agents that believe their node is registered.
    pub registered: usize,
    /// `Removed` messages received since the start.
    pub removed: u64,
    /// Sessions refused or broken since the start.
    pub failed: u64,
}

/// The running fleet; dropping it ends every session.
pub struct Fleet {
    config: FleetConfig,
    channels: Vec<Channel>,
    /// Oldest first: churn makes the oldest leave.
    members: VecDeque<Member>,
    /// Members that left, kept until their Leave went out.
    gone: Vec<JoinHandle<()>>,
    paused: watch::Sender<bool>,
    next_id: usize,
}

impl Fleet {
    /// Opens `config.connections` HTTP/2 connections to the control listener.
    pub async fn connect(config: FleetConfig) -> anyhow::Result<Self> {
        let url = format!("http://{}", config.control);
        let endpoint = Endpoint::from_shared(url.clone())?
            .connect_timeout(Duration::from_secs(10))
            .tcp_nodelay(true);
        let mut channels = Vec::with_capacity(config.connections);
        while channels.len() < config.connections {
            let n = CONNECT_BATCH.min(config.connections - channels.len());
            let mut batch = tokio::task::JoinSet::new();
            for _ in 0..n {
                let e = endpoint.clone();
                batch.spawn(async move { e.connect().await });
            }
            for c in batch.join_all().await {
                channels.push(c.with_context(|| format!("connecting to {url}"))?);
            }
        }
        Ok(Self {
            config,
            channels,
            members: VecDeque::new(),
            gone: Vec::new(),
            paused: watch::channel(false).0,
            next_id: 0,
        })
    }

    /// Starts `n` new agents, each with a node id never used before in this fleet.
    pub fn join(&mut self, n: usize) {
        for _ in 0..n {
            let i = self.next_id;
            self.next_id += 1;
            let id: Arc<str> = Arc::from(format!("sim-{i}"));
            let state = Arc::new(SimState::default());
            let (leave, leave_rx) = oneshot::channel();
            let interval = self.config.interval;
            let sim = Sim {
                channel: self.channels[i % self.channels.len()].clone(),
                id: id.clone(),
                pool: Arc::from(self.config.pool.as_str()),
                // Distinct, in 127.0.0.0/8, never connected to.
                address: format!(
                    "127.{}.{}.{}:3031",
                    (i >> 16) & 255,
                    (i >> 8) & 255,
                    i & 255
                ),
                interval,
                // A golden-ratio walk over the interval: evenly spread at any fleet size.
                offset: interval.mul_f64((i as f64 * 0.618_033_988_75).fract()),
                paused: self.paused.subscribe(),
                state: state.clone(),
            };
            let task = tokio::spawn(sim.run(leave_rx));
            self.members.push_back(Member {
                id,
                state,
                leave: Some(leave),
                task,
            });
        }
    }

    /// Makes the `n` oldest agents send Leave and stop.
    pub fn leave_oldest(&mut self, n: usize) {
        self.gone.retain(|t| !t.is_finished());
        for mut m in self.members.drain(..n.min(self.members.len())) {
            if let Some(leave) = m.leave.take() {
                let _ = leave.send(());
            }
            self.gone.push(m.task);
        }
    }

    /// Holds every report back (`true`) or lets them go again (`false`).
    pub fn pause_reports(&self, paused: bool) {
        self.paused.send_replace(paused);
    }

    /// Agents in the fleet now (not counting those that left).
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// True when no agent is running.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Counts over every agent.
    pub fn counts(&self) -> FleetCounts {
        let mut c = FleetCounts::default();
        for m in &self.members {
            c.registered += usize::from(m.state.phase() == Phase::Registered);
            c.removed += m.state.removed.load(Ordering::Relaxed);
            c.failed += m.state.failed.load(Ordering::Relaxed);
        }
        c
    }

    /// Every agent that believes its node is registered, with the registration's generation.
    pub fn registered(&self) -> Vec<(Arc<str>, u64)> {
        self.members
            .iter()
            .filter(|m| m.state.phase() == Phase::Registered)
            .map(|m| (m.id.clone(), m.state.generation()))
            .collect()
    }

    /// How many nodes the router's pool holds, from the Admin API's ListPools (cheap to poll).
    pub async fn pool_size(&self) -> anyhow::Result<usize> {
        let pools = self
            .admin()
            .list_pools(ListPoolsRequest {})
            .await
            .context("ListPools")?
            .into_inner()
            .pools;
        let pool = pools
            .iter()
            .find(|p| p.name == self.config.pool)
            .with_context(|| format!("no pool {:?} on the router", self.config.pool))?;
        Ok(pool.nodes as usize)
    }

    fn admin(&self) -> AdminClient<Channel> {
        AdminClient::new(self.channels[0].clone()).max_decoding_message_size(MAX_ANSWER_BYTES)
    }

    /// The ids of the nodes in the router's pool, from the Admin API's ListNodes.
    pub async fn pool_nodes(&self) -> anyhow::Result<HashSet<String>> {
        let nodes = self
            .admin()
            .list_nodes(ListNodesRequest {
                pool: self.config.pool.clone(),
            })
            .await
            .context("ListNodes")?
            .into_inner()
            .nodes;
        Ok(nodes.into_iter().map(|n| n.id).collect())
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for m in &self.members {
            m.task.abort();
        }
        for t in &self.gone {
            t.abort();
        }
    }
}
