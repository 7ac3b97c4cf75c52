//! `router-agent`, the sidecar next to each uWSGI node: it reads the node's load from uWSGI's stats
//! server, keeps one Registry session per router (announce, a load report each interval), and on
//! SIGTERM drains the node on every router and leaves, so uWSGI can then stop with nothing in flight.
//!
//! Inside: `probe` reads the node each interval ([`stats`], [`health`]) and publishes its state
//! on a watch channel; each router's `session` loop follows it, reporting while the node
//! answers and ending its session while it does not (the node then leaves when its lease runs
//! out, and is re-announced when it answers again). `discovery` decides which routers those
//! are (the URLs given, and the addresses of `dns:///` names, re-resolved), and `router_set`
//! starts and closes their sessions. `admin_state` keeps the node's operator state (drain,
//! maintenance, weight), which any router passes on and every session announces and applies.

mod addr;
mod admin_state;
mod backoff;
pub mod config;
mod counters;
mod credentials;
mod discovery;
pub mod health;
mod probe;
mod router_set;
mod session;
pub mod stats;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use addr::SocketTarget;
pub use admin_state::StateFileError;
pub use config::{AgentConfig, DnsName, Flags, RouterTarget};
pub use counters::AgentCounters;
pub use credentials::CredentialsError;

use crate::api::Announce;
use crate::http::{Endpoints, Readiness};
use admin_state::AdminStore;
use discovery::Discovery;
use health::HealthCheck;
use probe::Probe;
use router_set::{RouterSet, SessionParts};
use session::LEAVE_GRACE;

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The token or TLS files could not be used.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The node's state file could not be read.
    #[error(transparent)]
    StateFile(#[from] StateFileError),
    /// A router URL was refused by the gRPC transport (e.g. TLS settings for it).
    #[error("routers: {url}: {reason}")]
    Router {
        /// The router URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The metrics listener could not be bound.
    #[error("metrics: cannot listen on {addr}: {source}")]
    Metrics {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// SIGTERM/SIGINT handlers could not be installed.
    #[error("cannot handle signals: {0}")]
    Signals(std::io::Error),
}

/// A running agent: the probe, the discovery task with one session task per router, and the
/// metrics listener.
#[derive(Debug)]
pub struct Agent {
    counters: Arc<AgentCounters>,
    stop_sessions: CancellationToken,
    stop_probe: CancellationToken,
    routers: JoinHandle<()>,
    probe: tokio::task::JoinHandle<()>,
    drain_timeout: Duration,
    metrics_addr: Option<SocketAddr>,
    ready: Readiness,
}

impl Agent {
    /// Loads the credentials, binds the metrics listener (if any), and starts the probe and a
    /// session task per router.
    pub fn start(config: AgentConfig) -> Result<Self, AgentError> {
        let bearer = config
            .token_file
            .as_deref()
            .map(credentials::bearer)
            .transpose()?;
        if bearer.is_none() {
            tracing::info!(
                "no token_file: only routers that require no registry token accept this node"
            );
        }
        let tls = credentials::tls_config(&config.tls)?;
        if config.state_file.is_none() {
            tracing::info!("no state_file: operators' drains and weights of this node are kept only until the agent restarts");
        }
        let admin = Arc::new(AdminStore::load(config.state_file.as_deref())?);
        let counters = Arc::new(AgentCounters::default());
        let stop_probe = CancellationToken::new();
        let ready = Readiness::new(true);
        let (tx, rx) = watch::channel(None);
        let announce = announce(&config);
        let parts = SessionParts {
            announce: announce.clone(),
            bearer,
            tls,
            interval: config.interval,
            drain_timeout: config.drain_timeout,
            node: rx,
            counters: counters.clone(),
            admin,
        };
        check_endpoints(&parts, &config.routers)?;
        let metrics_addr = serve_metrics(&config, &counters, &ready, &stop_probe)?;
        let stop_sessions = CancellationToken::new();
        let discovery = Discovery {
            routers: RouterSet::new(parts, stop_sessions.clone()),
            targets: config.routers.clone(),
            every: config.router_resolve_interval,
            counters: counters.clone(),
            stop: stop_sessions.clone(),
        };
        let routers = tokio::spawn(discovery.run());
        let probe = tokio::spawn(probe(&config, &counters).run(tx, stop_probe.clone()));
        let listed: Vec<String> = config.routers.iter().map(ToString::to_string).collect();
        tracing::info!(
            node = announce.node_id,
            pool = announce.pool,
            routers = ?listed,
            "agent started"
        );
        Ok(Self {
            counters,
            stop_sessions,
            stop_probe,
            routers,
            probe,
            drain_timeout: config.drain_timeout,
            metrics_addr,
            ready,
        })
    }

    /// The bound address of the metrics listener, if it is on.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The agent's counters (reports sent, stats errors, connected routers, ...).
    pub fn counters(&self) -> Arc<AgentCounters> {
        self.counters.clone()
    }

    /// Drains the node on every connected router, waits for each one's Drained (at most the
    /// drain timeout), sends Leave and stops. Routers that are not connected are not waited for.
    pub async fn shutdown(mut self) {
        self.ready.set(false);
        self.stop_sessions.cancel();
        let bound = self.drain_timeout + LEAVE_GRACE + Duration::from_secs(1);
        if tokio::time::timeout(bound, &mut self.routers)
            .await
            .is_err()
        {
            tracing::warn!("router sessions did not finish in time; stopping them");
            self.routers.abort();
            let _ = (&mut self.routers).await;
        }
        self.stop_probe.cancel();
        let _ = self.probe.await;
        tracing::info!("agent stopped");
    }
}

/// Starts the agent and runs it until SIGTERM or SIGINT (SIGHUP is logged and ignored), then
/// drains, leaves and returns.
pub async fn run(config: AgentConfig) -> Result<(), AgentError> {
    use tokio::signal::unix::{signal, SignalKind};
    // Handlers first: a signal that arrives while the agent starts must not kill it undrained.
    let mut term = signal(SignalKind::terminate()).map_err(AgentError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(AgentError::Signals)?;
    // SIGHUP's default action would kill the agent without draining its node (a `systemctl
    // reload`, a closed terminal): it has no config to reload, so it says so and carries on.
    let mut hup = signal(SignalKind::hangup()).map_err(AgentError::Signals)?;
    let agent = Agent::start(config)?;
    let name = loop {
        tokio::select! {
            _ = term.recv() => break "SIGTERM",
            _ = int.recv() => break "SIGINT",
            _ = hup.recv() => tracing::warn!("SIGHUP ignored: router-agent reads its config only at start; restart it to apply changes"),
        }
    };
    tracing::info!(signal = name, "stopping: draining the node on every router");
    agent.shutdown().await;
    Ok(())
}

/// The node probe of `config`: stats reads, and the active check when configured.
fn probe(config: &AgentConfig, counters: &Arc<AgentCounters>) -> Probe {
    let health = config.health.as_ref().map(|h| {
        let node = SocketTarget::parse_node(&config.node)
            .unwrap_or_else(|_| SocketTarget::Tcp(config.node.clone()));
        HealthCheck::new(node, h)
    });
    Probe {
        stats: config.stats.clone(),
        health,
        interval: config.interval,
        counters: counters.clone(),
    }
}

/// Binds and serves `/metrics` (and `/healthz`, `/readyz`) when `config.metrics` is set.
fn serve_metrics(
    config: &AgentConfig,
    counters: &Arc<AgentCounters>,
    ready: &Readiness,
    stop: &CancellationToken,
) -> Result<Option<SocketAddr>, AgentError> {
    let Some(addr) = config.metrics else {
        return Ok(None);
    };
    let listen_error = |source| AgentError::Metrics { addr, source };
    let std_listener = std::net::TcpListener::bind(addr).map_err(listen_error)?;
    std_listener.set_nonblocking(true).map_err(listen_error)?;
    let listener = tokio::net::TcpListener::from_std(std_listener).map_err(listen_error)?;
    let bound = listener.local_addr().map_err(listen_error)?;
    let (c, node, pool) = (
        counters.clone(),
        config.node_id.clone(),
        config.pool.clone(),
    );
    let endpoints = Endpoints {
        metrics: Arc::new(move || c.render(&node, &pool)),
        ready: ready.clone(),
    };
    tokio::spawn(crate::http::serve(listener, endpoints, stop.clone()));
    tracing::info!(addr = %bound, "serving /metrics");
    Ok(Some(bound))
}

/// The Announce of this node (capacity filled in from the stats at each connect).
fn announce(config: &AgentConfig) -> Announce {
    Announce {
        node_id: config.node_id.clone(),
        pool: config.pool.clone(),
        address: config.node.clone(),
        capacity: 0,
        weight: config.weight,
        labels: config.labels.clone().into_iter().collect(),
        version: concat!("router-agent ", env!("CARGO_PKG_VERSION")).to_owned(),
        report_interval_ms: u32::try_from(config.interval.as_millis()).unwrap_or(u32::MAX),
        // The state kept at the time of each announce, filled in by the session.
        admin: None,
    }
}

/// Builds the endpoint of every kind of router URL `routers` can give (a `dns:///` name's with
/// a placeholder address), so a URL or TLS setting the transport refuses stops the start.
fn check_endpoints(parts: &SessionParts, routers: &[RouterTarget]) -> Result<(), AgentError> {
    for target in routers {
        match target {
            RouterTarget::Url(url) => parts.endpoint(url, None).map(drop)?,
            RouterTarget::Dns(name) => {
                let url = name.url(std::net::Ipv4Addr::LOCALHOST.into());
                let tls_name = name.tls.then_some(name.host.as_str());
                parts
                    .endpoint(&url, tls_name)
                    .map_err(|e| match e {
                        AgentError::Router { reason, .. } => AgentError::Router {
                            url: name.to_string(),
                            reason,
                        },
                        other => other,
                    })
                    .map(drop)?
            }
        }
    }
    Ok(())
}
