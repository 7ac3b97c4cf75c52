//! Wires routerd together: config -> cluster -> dispatch -> listeners, and the signals that reload
//! (SIGHUP) and stop (SIGTERM, SIGINT) it.

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use tokio::sync::broadcast::error::RecvError;

use crate::cluster::{Cluster, ClusterEvent};
use crate::config::{Config, ConfigError};
use crate::metrics;
use crate::proxy::{Dispatch, ListenAddr, Listener, SharedDispatch};

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address from the config.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A running router.
#[derive(Debug)]
pub struct Daemon {
    cluster: Arc<Cluster>,
    dispatch: SharedDispatch,
    config: Arc<ArcSwap<Config>>,
    config_path: Option<PathBuf>,
    local_addrs: Vec<String>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Daemon {
    /// Builds the cluster from a validated `config`, binds every listener and starts serving.
    /// `config_path` is re-read on reload; without one, reload re-applies the embedded defaults.
    pub async fn start(config: Config, config_path: Option<PathBuf>) -> Result<Self, StartError> {
        let cluster = Arc::new(Cluster::default());
        cluster.apply_config(&config);
        let dispatch: SharedDispatch =
            Arc::new(ArcSwap::from_pointee(Dispatch::new(&config, &cluster)));
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let limits = Arc::new(Semaphore::new(config.limits.max_connections));
        let mode = u32::from_str_radix(&config.listen.unix_socket_mode, 8).unwrap_or(0o666);
        let mut listeners = Vec::new();
        for addr in &config.listen.uwsgi {
            let parsed: ListenAddr = addr.parse().map_err(|e| StartError::Bind {
                addr: addr.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
            })?;
            let listener = Listener::bind(&parsed, config.listen.backlog, mode)
                .await
                .map_err(|source| StartError::Bind {
                    addr: addr.clone(),
                    source,
                })?;
            listeners.push(listener);
        }
        let local_addrs = listeners.iter().map(Listener::local_addr).collect();
        for l in listeners {
            tracing::info!(address = %l.local_addr(), "listening for uwsgi clients");
            let serve = l.serve(
                dispatch.clone(),
                limits.clone(),
                shutdown.clone(),
                tracker.clone(),
            );
            tokio::spawn(serve);
        }
        metrics::describe();
        let daemon = Self {
            cluster,
            dispatch,
            config: Arc::new(ArcSwap::from_pointee(config)),
            config_path,
            local_addrs,
            shutdown,
            tracker,
        };
        tokio::spawn(daemon.cluster.clone().maintain(daemon.shutdown.clone()));
        tokio::spawn(rebuild_routes_on_change(
            daemon.cluster.clone(),
            daemon.dispatch.clone(),
            daemon.config.clone(),
            daemon.shutdown.clone(),
        ));
        Ok(daemon)
    }

    /// The listeners' bound addresses, in config order (`unix:/path` for UNIX sockets).
    pub fn local_addrs(&self) -> &[String] {
        &self.local_addrs
    }

    /// The cluster, for inspection.
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// The config in force.
    pub fn config(&self) -> Arc<Config> {
        self.config.load_full()
    }

    /// Re-reads the config file and applies it. On error the old config stays in force.
    pub fn reload(&self) -> Result<(), ConfigError> {
        let config = match &self.config_path {
            Some(path) => Config::load(path),
            None => Ok(Config::default()),
        };
        let result = config.map(|c| self.apply(c));
        match &result {
            Ok(()) => metrics::config_reload("ok"),
            Err(_) => metrics::config_reload("error"),
        }
        result
    }

    /// Applies a validated config: pools, nodes, routes, balancing and timeouts, swapped in at
    /// once. Open connections keep going. Listener and limit changes need a restart.
    pub fn apply(&self, config: Config) {
        let old = self.config.load();
        if old.listen.uwsgi != config.listen.uwsgi
            || old.limits.max_connections != config.limits.max_connections
        {
            tracing::warn!("listen addresses and limits.max_connections change only on restart");
        }
        self.cluster.apply_config(&config);
        self.dispatch
            .store(Arc::new(Dispatch::new(&config, &self.cluster)));
        self.config.store(Arc::new(config));
        tracing::info!(pools = self.cluster.pools().len(), "config applied");
    }

    /// Runs until SIGTERM or SIGINT, reloading on SIGHUP, then shuts down gracefully.
    pub async fn run_until_signalled(self) -> std::io::Result<()> {
        let mut hup = signal(SignalKind::hangup())?;
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        loop {
            tokio::select! {
                _ = hup.recv() => match self.reload() {
                    Ok(()) => tracing::info!("reloaded config on SIGHUP"),
                    Err(e) => tracing::error!(error = %e, "reload failed; keeping the previous config"),
                },
                _ = term.recv() => break,
                _ = int.recv() => break,
            }
        }
        self.shutdown().await;
        Ok(())
    }

    /// Stops accepting, lets in-flight sessions finish within the grace period, then returns.
    pub async fn shutdown(self) {
        let grace = self.config.load().timeouts.shutdown_grace;
        tracing::info!(grace = ?grace, in_flight = self.tracker.len(), "shutting down: no longer accepting");
        self.shutdown.cancel();
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = self.tracker.len(),
                "grace period over; closing the remaining sessions"
            );
        }
    }
}

/// Pools created or dropped at run time (by subscriptions, or a reload) change what routes can
/// reach: rebuild the dispatch state whenever that happens.
async fn rebuild_routes_on_change(
    cluster: Arc<Cluster>,
    dispatch: SharedDispatch,
    config: Arc<ArcSwap<Config>>,
    shutdown: CancellationToken,
) {
    let mut events = cluster.events().subscribe();
    loop {
        let event = tokio::select! {
            e = events.recv() => e,
            () = shutdown.cancelled() => return,
        };
        match event {
            Ok(ClusterEvent::PoolsChanged) | Err(RecvError::Lagged(_)) => {
                dispatch.store(Arc::new(Dispatch::new(&config.load(), &cluster)));
            }
            Ok(_) => {}
            Err(RecvError::Closed) => return,
        }
    }
}
