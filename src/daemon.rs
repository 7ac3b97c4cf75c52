//! Wires routerd together: config -> access log -> cluster -> dispatch -> listeners, and the
//! signals that reload (SIGHUP), reopen the access log (SIGUSR1) and stop (SIGTERM, SIGINT) it.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access_log::AccessLog;
use crate::cluster::Cluster;
use crate::cluster::Overrides;
use crate::config::{AccessLogConfig, AccessLogTarget, Config, ConfigError, MetricsConfig};
use crate::http::{self, Readiness};
use crate::metrics;
use crate::proxy::{Dispatcher, Front, Listener};
use crate::reloader::{Bindings, Reloader};

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The control plane could not start.
    #[error(transparent)]
    Control(#[from] crate::control::ControlError),
    /// The access log file could not be opened.
    #[error("cannot open the access log {path} (access_log.path): {source}")]
    AccessLog {
        /// The path from the config.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The state file could not be read.
    #[error(transparent)]
    StateFile(#[from] crate::cluster::StateFileError),
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
    dispatcher: Arc<Dispatcher>,
    access_log: AccessLog,
    reloader: Arc<Reloader>,
    local_addrs: Vec<String>,
    http_addrs: Vec<String>,
    subscription_addrs: Vec<String>,
    control_addr: Option<std::net::SocketAddr>,
    metrics_addr: Option<std::net::SocketAddr>,
    /// Cleared when shutdown begins: `/readyz` then answers 503.
    ready: Readiness,
    /// Stops the metrics listener, last of all.
    ops_stop: CancellationToken,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Daemon {
    /// Builds the cluster from a validated `config`, binds every listener and starts serving.
    /// `config_path` is re-read on reload; without one, reload re-applies the embedded defaults.
    pub async fn start(config: Config, config_path: Option<PathBuf>) -> Result<Self, StartError> {
        // Before any listener: its limits are sized against the open file limit.
        let nofile = crate::conn_limit::raise_nofile_limit();
        if config.metrics.listen.is_some() {
            // Before the cluster: its pools register their series with the recorder.
            metrics::install();
            metrics::config_reload_series();
        }
        let access_log = start_access_log(&config.access_log)?;
        let cluster = Arc::new(Cluster::default());
        let dispatcher = Arc::new(Dispatcher::new(
            config.clone(),
            cluster.clone(),
            access_log.clone(),
        ));
        // After the static nodes joined, before any request: what operators set still holds.
        cluster.restore_overrides(Overrides::load(config.state_file.as_deref())?);
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let limits = Arc::new(Semaphore::new(config.limits.max_connections));
        let mut listeners = Vec::new();
        let fronts = [
            (Front::Uwsgi, &config.listen.uwsgi),
            (Front::Http, &config.listen.http),
        ];
        for (front, addrs) in fronts {
            for addr in addrs {
                let listener =
                    Listener::bind(addr, config.listen.backlog, config.listen.unix_socket_mode)
                        .await
                        .map_err(|source| StartError::Bind {
                            addr: addr.to_string(),
                            source,
                        })?;
                listeners.push((front, listener));
            }
        }
        let subscriptions =
            crate::subscription::SubscriptionServer::bind(&config).map_err(|e| {
                StartError::Bind {
                    addr: e.addr,
                    source: e.source,
                }
            })?;
        let subscription_addrs = subscriptions
            .as_ref()
            .map_or_else(Vec::new, |s| s.local_addrs());
        let addrs_of = |f: Front| -> Vec<String> {
            listeners
                .iter()
                .filter(|(front, _)| *front == f)
                .map(|(_, l)| l.local_addr())
                .collect()
        };
        let local_addrs = addrs_of(Front::Uwsgi);
        let http_addrs = addrs_of(Front::Http);
        for (front, l) in listeners {
            match front {
                Front::Uwsgi => {
                    tracing::info!(address = %l.local_addr(), "listening for uwsgi clients")
                }
                Front::Http => {
                    tracing::info!(address = %l.local_addr(), "listening for HTTP clients")
                }
            }
            let serve = l.serve(
                front,
                dispatcher.reader(),
                limits.clone(),
                shutdown.clone(),
                tracker.clone(),
            );
            tokio::spawn(serve);
        }
        // Each operations listener gets its own share of the file descriptors: a flood of idle
        // connections on one cannot starve the uwsgi listeners or the other.
        let control_max = crate::conn_limit::share_of_fds(
            "control.max_connections",
            config.control.max_connections,
            nofile,
            4,
        );
        let control = crate::control::bind(&config.control)
            .await?
            .map(|b| b.with_max_connections(control_max));
        let control_addr = control.as_ref().map(crate::control::Bound::local_addr);
        let ready = readiness(&config.metrics, &cluster);
        let ops_stop = CancellationToken::new();
        let metrics_max = crate::conn_limit::share_of_fds(
            "metrics.max_connections",
            config.metrics.max_connections,
            nofile,
            16,
        );
        let metrics_addr =
            serve_metrics(&config.metrics, metrics_max, &cluster, &ready, &ops_stop).await?;
        let reloader = Arc::new(Reloader::new(dispatcher.clone(), config_path));
        let daemon = Self {
            cluster,
            dispatcher,
            access_log,
            reloader,
            local_addrs,
            http_addrs,
            subscription_addrs,
            control_addr,
            metrics_addr,
            ready,
            ops_stop,
            shutdown,
            tracker,
        };
        daemon.reloader.set_bindings(Bindings {
            listeners: daemon.local_addrs.clone(),
            control: control_addr.map_or_else(String::new, |a| a.to_string()),
            router_id: control
                .as_ref()
                .map_or_else(String::new, crate::control::Bound::router_id),
        });
        if let Some(control) = control {
            control.serve(
                daemon.cluster.clone(),
                daemon.reloader.clone(),
                daemon.shutdown.clone(),
            )?;
        }
        tokio::spawn(daemon.cluster.clone().maintain(daemon.shutdown.clone()));
        if let Some(subscriptions) = subscriptions {
            subscriptions.spawn(
                daemon.cluster.clone(),
                daemon.dispatcher.reader(),
                daemon.shutdown.clone(),
            );
        }
        tokio::spawn(
            daemon
                .dispatcher
                .clone()
                .follow_pool_changes(daemon.shutdown.clone()),
        );
        crate::notify::spawn_watchdog(daemon.ops_stop.clone());
        crate::notify::ready();
        Ok(daemon)
    }

    /// The listeners' bound addresses, in config order (`unix:/path` for UNIX sockets).
    pub fn local_addrs(&self) -> &[String] {
        &self.local_addrs
    }

    /// The HTTP listeners' bound addresses, in config order.
    pub fn http_addrs(&self) -> &[String] {
        &self.http_addrs
    }

    /// The subscription sockets' bound addresses, in config order (`unix:/path` for UNIX ones).
    pub fn subscription_addrs(&self) -> &[String] {
        &self.subscription_addrs
    }

    /// The control plane's bound address, if it is enabled.
    pub fn control_addr(&self) -> Option<std::net::SocketAddr> {
        self.control_addr
    }

    /// The bound address of the `/metrics`, `/healthz` and `/readyz` listener, if it runs.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics_addr
    }

    /// The cluster, for inspection.
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// The config in force.
    pub fn config(&self) -> Arc<Config> {
        self.dispatcher.config()
    }

    /// Re-reads the config file and applies it. On error the old config stays in force.
    pub fn reload(&self) -> Result<(), ConfigError> {
        self.reloader.reload()
    }

    /// Applies a validated config: pools, nodes, routes, balancing and timeouts, swapped in at
    /// once. Open connections keep going. Listener and limit changes need a restart.
    pub fn apply(&self, config: Config) {
        self.reloader.apply(config);
    }

    /// Has the access log writer reopen its file (SIGUSR1, after logrotate renamed it).
    pub async fn reopen_access_log(&self) {
        if self.access_log.is_on() {
            self.access_log.reopen().await;
        } else {
            tracing::info!("SIGUSR1: no access log to reopen");
        }
    }

    /// Runs until SIGTERM or SIGINT, reloading on SIGHUP and reopening the access log on
    /// SIGUSR1, then shuts down gracefully. `signals`
    /// must have been installed before [`Daemon::start`], so that no signal sent once the router
    /// accepts connections can hit the default action (which would kill the process).
    pub async fn run_until_signalled(self, mut signals: Signals) {
        loop {
            tokio::select! {
                _ = signals.hup.recv() => match self.reload() {
                    Ok(()) => tracing::info!("reloaded config on SIGHUP"),
                    Err(e) => tracing::error!(error = %e, "reload failed; keeping the previous config"),
                },
                _ = signals.usr1.recv() => self.reopen_access_log().await,
                _ = signals.term.recv() => break,
                _ = signals.int.recv() => break,
            }
        }
        self.shutdown().await;
    }

    /// Fails readiness, keeps accepting for `timeouts.shutdown_delay` (so load balancers stop
    /// sending first), stops accepting, lets in-flight sessions finish within the grace period,
    /// writes out the access log, then stops the metrics listener and returns.
    pub async fn shutdown(self) {
        crate::notify::stopping();
        self.ready.set(false);
        let delay = self.dispatcher.config().timeouts.shutdown_delay;
        if !delay.is_zero() {
            tracing::info!(delay = ?delay, "shutting down: /readyz fails; still accepting for timeouts.shutdown_delay");
            tokio::time::sleep(delay).await;
        }
        let grace = self.dispatcher.config().timeouts.shutdown_grace;
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
        if tokio::time::timeout(ACCESS_LOG_FLUSH, self.access_log.flush())
            .await
            .is_err()
        {
            tracing::warn!("the access log was not written out within {ACCESS_LOG_FLUSH:?}");
        }
        self.ops_stop.cancel();
    }
}

/// How long shutdown waits for the access log's last lines.
const ACCESS_LOG_FLUSH: std::time::Duration = std::time::Duration::from_secs(5);

/// The access log writer `config` asks for (none when it is off).
fn start_access_log(config: &AccessLogConfig) -> Result<AccessLog, StartError> {
    let log = AccessLog::start(config).map_err(|source| StartError::AccessLog {
        path: match &config.target {
            Some(AccessLogTarget::File(p)) => p.display().to_string(),
            _ => "stderr".to_owned(),
        },
        source,
    })?;
    if let Some(target) = &config.target {
        let to = match target {
            AccessLogTarget::Stderr => "stderr".to_owned(),
            AccessLogTarget::File(p) => p.display().to_string(),
        };
        tracing::info!(to, format = ?config.format, queue_size = config.queue_size, "writing the access log");
    }
    Ok(log)
}

/// The signals routerd handles, installed (replacing their default, fatal, actions) before any
/// listener is bound.
#[derive(Debug)]
pub struct Signals {
    hup: tokio::signal::unix::Signal,
    usr1: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs handlers for SIGHUP, SIGUSR1, SIGTERM and SIGINT. Needs a running tokio runtime.
    pub fn install() -> std::io::Result<Self> {
        Ok(Self {
            hup: signal(SignalKind::hangup())?,
            usr1: signal(SignalKind::user_defined1())?,
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }
}

/// `/readyz`'s answer: ready until shutdown begins and, with `metrics.readyz_requires_nodes`, while
/// every pool that has nodes has a usable one.
fn readiness(config: &MetricsConfig, cluster: &Arc<Cluster>) -> Readiness {
    let ready = Readiness::new(true);
    if !config.readyz_requires_nodes {
        return ready;
    }
    let cluster = cluster.clone();
    ready.requiring(move || {
        let waiting = cluster.pools_without_usable_node();
        (!waiting.is_empty()).then(|| format!("no usable node in pools: {}", waiting.join(", ")))
    })
}

/// Starts the listener for `/metrics`, `/healthz` and `/readyz` unless `metrics.listen` is `""`.
/// The built-in default address is best effort: if it is taken, routerd runs without it.
async fn serve_metrics(
    config: &MetricsConfig,
    max_connections: usize,
    cluster: &Arc<Cluster>,
    ready: &Readiness,
    stop: &CancellationToken,
) -> Result<Option<std::net::SocketAddr>, StartError> {
    let Some(addr) = config.listen else {
        return Ok(None);
    };
    let bound = match http::bind(addr).await {
        Ok(l) => l.local_addr().map(|a| (l, a)),
        Err(e) => Err(e),
    };
    let (listener, local) = match bound {
        Ok(b) => b,
        Err(e) if config.listen_is_default => {
            tracing::warn!(address = %addr, error = %e, "cannot listen for metrics on the default address; running without /metrics (set [metrics] listen)");
            return Ok(None);
        }
        Err(source) => {
            return Err(StartError::Bind {
                addr: format!("{addr} (metrics.listen)"),
                source,
            })
        }
    };
    let cluster = cluster.clone();
    let node_series_limit = config.node_series_limit;
    let endpoints = http::Endpoints {
        metrics: Arc::new(move || crate::scrape::render(&cluster, node_series_limit)),
        ready: ready.clone(),
    };
    tracing::info!(address = %local, max_connections, "serving /metrics, /healthz and /readyz");
    let limiter = crate::conn_limit::Limiter::new("metrics.max_connections", max_connections);
    tokio::spawn(http::serve_limited(
        listener,
        endpoints,
        limiter,
        stop.clone(),
    ));
    tokio::spawn(metrics::upkeep(stop.clone()));
    Ok(Some(local))
}
