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
        let unapplied = restart_only_changes(&self.dispatcher.config(), &config);
        if !unapplied.is_empty() {
            tracing::warn!(
                changed = %unapplied.join(", "),
                "these settings changed but take effect only when routerd restarts; the rest of the config is applied"
            );
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

/// The settings routerd reads only at start (listeners, the control plane, the ops endpoint, the
/// access log's sink, the state file, the log format) that differ between `old` and `new`.
fn restart_only_changes(old: &Config, new: &Config) -> Vec<&'static str> {
    [
        ("listen", old.listen != new.listen),
        (
            "limits.max_connections",
            old.limits.max_connections != new.limits.max_connections,
        ),
        ("[metrics]", old.metrics != new.metrics),
        (
            "subscription.listen",
            old.subscription.listen != new.subscription.listen,
        ),
        ("[control]", old.control != new.control),
        ("[access_log]", old.access_log != new.access_log),
        ("state_file", old.state_file != new.state_file),
        ("log_format", old.log_format != new.log_format),
    ]
    .into_iter()
    .filter_map(|(name, changed)| changed.then_some(name))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Config {
        Config::parse(&format!("default_pool = \"\"\n{text}")).expect("valid config")
    }

    #[test]
    fn names_exactly_the_restart_only_settings_that_changed() {
        let old = parse("[listen]\nuwsgi = [\"127.0.0.1:3031\"]\n");
        let same_listeners_new_pool = parse(
            "[listen]\nuwsgi = [\"127.0.0.1:3031\"]\n[pools.api]\nnodes = [\"127.0.0.1:8001\"]\n",
        );
        assert!(restart_only_changes(&old, &same_listeners_new_pool).is_empty());
        let moved = parse(
            "[listen]\nuwsgi = [\"127.0.0.1:3032\"]\n[metrics]\nreadyz_requires_nodes = true\n",
        );
        assert_eq!(
            restart_only_changes(&old, &moved),
            vec!["listen", "[metrics]"]
        );
    }
}
