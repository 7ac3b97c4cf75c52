//! The data plane. A listener accepts clients (a permit first, so excess waits in the kernel
//! backlog); each session reads the request head (`head`), routes it, connects to a node with
//! retries (`connect`), forwards bytes both ways (`forward`) and records the outcome (`outcome`).

mod connect;
mod forward;
mod head;
mod listener;
mod outcome;
mod session;

pub use listener::Listener;

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::cluster::Cluster;
use crate::config::{Config, TimeoutsConfig};
use crate::routing::RouteTable;

/// What sessions read for each request; a reload builds a new one and swaps it in whole.
#[derive(Debug)]
pub struct Dispatch {
    /// Routing key -> pool.
    pub routes: RouteTable,
    /// Session timeouts.
    pub timeouts: TimeoutsConfig,
    /// Largest vars block accepted.
    pub max_vars_size: usize,
}

impl Dispatch {
    /// Builds the dispatch state of a validated config over the cluster's pools.
    pub fn new(config: &Config, cluster: &Cluster) -> Self {
        Self {
            routes: RouteTable::build(config, cluster),
            timeouts: config.timeouts.clone(),
            max_vars_size: config.limits.max_vars_size,
        }
    }
}

/// The dispatch state shared by every listener and session.
pub type SharedDispatch = Arc<ArcSwap<Dispatch>>;
