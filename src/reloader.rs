//! The reloader: applies a config and reloads the file (SIGHUP or `routerctl reload`), and
//! reports the router status that `routerctl status` shows.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use crate::api::StatusResponse;
use crate::cluster::ClusterEvent;
use crate::config::{Config, ConfigError};
use crate::control::RouterControl;
use crate::metrics;
use crate::proxy::Dispatcher;

/// What the status reports that is fixed once the router has bound its listeners.
#[derive(Debug, Clone, Default)]
pub struct Bindings {
    /// uwsgi listeners as bound.
    pub listeners: Vec<String>,
    /// The control listener.
    pub control: String,
    /// `hostname@control address`.
    pub router_id: String,
}

/// The config in force and how to change it.
#[derive(Debug)]
pub struct Reloader {
    dispatcher: Arc<Dispatcher>,
    path: Option<PathBuf>,
    started: Instant,
    loaded_unix: AtomicU64,
    bindings: OnceLock<Bindings>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Reloader {
    /// A reloader handing configs to `dispatcher`, read from `path` on reload (embedded
    /// defaults without one).
    pub fn new(dispatcher: Arc<Dispatcher>, path: Option<PathBuf>) -> Self {
        Self {
            dispatcher,
            path,
            started: Instant::now(),
            loaded_unix: AtomicU64::new(unix_now()),
            bindings: OnceLock::new(),
        }
    }

    /// Records the bound listeners, once.
    pub fn set_bindings(&self, b: Bindings) {
        let _ = self.bindings.set(b);
    }

    /// Re-reads the config file and applies it. On error the old config stays in force.
    pub fn reload(&self) -> Result<(), ConfigError> {
        crate::notify::reloading();
        // Ready again whatever the outcome: a refused file leaves the old config serving.
        let _ready = ReadyAgain;
        let config = match &self.path {
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
        let old = self.dispatcher.config();
        if old.listen.uwsgi != config.listen.uwsgi
            || old.limits.max_connections != config.limits.max_connections
            || old.metrics != config.metrics
            || old.subscription.listen != config.subscription.listen
            || old.control != config.control
            || old.access_log != config.access_log
        {
            tracing::warn!("listen addresses, [control], [access_log], metrics.listen, subscription.listen and limits.max_connections change only on restart");
        }
        self.dispatcher.apply(config);
        self.loaded_unix.store(unix_now(), Relaxed);
        let cluster = self.dispatcher.cluster();
        cluster.events().emit(ClusterEvent::ConfigReloaded);
        tracing::info!(pools = cluster.pools().len(), "config applied");
    }
}

impl RouterControl for Reloader {
    fn reload(&self) -> Result<(), String> {
        Reloader::reload(self).map_err(|e| e.to_string())
    }

    fn status(&self) -> StatusResponse {
        let b = self.bindings.get().cloned().unwrap_or_default();
        StatusResponse {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_seconds: self.started.elapsed().as_secs(),
            listeners: b.listeners,
            control_listener: b.control,
            config_file: self
                .path
                .as_ref()
                .map_or_else(String::new, |p| p.display().to_string()),
            config_loaded_unix: self.loaded_unix.load(Relaxed),
            router_id: b.router_id,
        }
    }
}

/// Tells systemd the service is ready again when a reload ends, however it ends.
struct ReadyAgain;

impl Drop for ReadyAgain {
    fn drop(&mut self) {
        crate::notify::ready();
    }
}
