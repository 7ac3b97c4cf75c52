//! The router snapshot that sessions read for each request ([`Dispatch`]: the config in force and
//! its compiled routes), and its one writer ([`Dispatcher`]), fed by config reloads and by pool
//! changes of the cluster.

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::access_log::AccessLog;
use crate::cluster::{Cluster, ClusterEvent};
use crate::config::{Config, TimeoutsConfig};
use crate::routing::RouteTable;

/// What sessions read for each request; every change builds a new one and swaps it in whole.
#[derive(Debug)]
pub struct Dispatch {
    /// The config in force.
    pub config: Arc<Config>,
    /// Routing key -> pool.
    pub routes: RouteTable,
    /// Session timeouts.
    pub timeouts: TimeoutsConfig,
    /// Largest vars block accepted.
    pub max_vars_size: usize,
    /// The cluster the routes lead to (requests that match none are counted on it).
    pub cluster: Arc<Cluster>,
    /// Where sessions hand their access log line (set at start; off unless `[access_log]` is on).
    pub access_log: AccessLog,
}

impl Dispatch {
    fn new(config: Arc<Config>, cluster: &Arc<Cluster>, access_log: &AccessLog) -> Self {
        Self {
            routes: RouteTable::build(&config, cluster),
            timeouts: config.timeouts.clone(),
            max_vars_size: config.limits.max_vars_size,
            config,
            cluster: cluster.clone(),
            access_log: access_log.clone(),
        }
    }
}

/// The snapshot as every listener and session reads it: lock-free.
pub type SharedDispatch = Arc<ArcSwap<Dispatch>>;

/// The one writer of the snapshot. A config reload and a pool change can come at the same time
/// (a reload creates pools, and each creation is announced to the rebuild task): every build reads
/// the latest config and stores under one lock, so the snapshot stored last is never built from a
/// config older than one already applied.
#[derive(Debug)]
pub struct Dispatcher {
    cluster: Arc<Cluster>,
    access_log: AccessLog,
    snapshot: SharedDispatch,
    /// Held while building and storing. Control path only: sessions never take it.
    writing: Mutex<()>,
}

impl Dispatcher {
    /// Applies a validated `config` to `cluster` and builds the first snapshot; sessions write
    /// their lines to `access_log`.
    pub fn new(config: Config, cluster: Arc<Cluster>, access_log: AccessLog) -> Self {
        cluster.apply_config(&config);
        let first = Dispatch::new(Arc::new(config), &cluster, &access_log);
        Self {
            cluster,
            access_log,
            snapshot: Arc::new(ArcSwap::from_pointee(first)),
            writing: Mutex::new(()),
        }
    }

    /// The snapshot handle readers load from.
    pub fn reader(&self) -> SharedDispatch {
        self.snapshot.clone()
    }

    /// The cluster it routes to.
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// The config in force.
    pub fn config(&self) -> Arc<Config> {
        self.snapshot.load().config.clone()
    }

    /// Brings the cluster in line with a validated `config`, then routes by it.
    pub fn apply(&self, config: Config) {
        let _writing = self.lock();
        self.cluster.apply_config(&config);
        self.store(Arc::new(config));
    }

    /// Rebuilds the routes of the config in force over the cluster's pools as they are now.
    pub fn rebuild(&self) {
        let _writing = self.lock();
        self.store(self.config());
    }

    fn store(&self, config: Arc<Config>) {
        self.snapshot.store(Arc::new(Dispatch::new(
            config,
            &self.cluster,
            &self.access_log,
        )));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.writing.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Rebuilds whenever pools are created or dropped at run time (by subscriptions, a reload),
    /// since that changes what routes can reach, until `shutdown`.
    pub async fn follow_pool_changes(self: Arc<Self>, shutdown: CancellationToken) {
        let mut events = self.cluster.events().subscribe();
        loop {
            let event = tokio::select! {
                e = events.recv() => e,
                () = shutdown.cancelled() => return,
            };
            match event {
                Ok(ClusterEvent::PoolsChanged) | Err(RecvError::Lagged(_)) => self.rebuild(),
                Ok(_) => {}
                Err(RecvError::Closed) => return,
            }
        }
    }
}
