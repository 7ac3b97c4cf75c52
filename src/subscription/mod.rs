//! uWSGI subscriptions: nodes started with `--subscribe-to` announce themselves in datagrams, as
//! to uWSGI's FastRouter. `listener` receives them, `packet` parses them, `address` checks the
//! address and notify path they name, `signature` checks signed ones, `membership` applies them
//! to the cluster, `notify` acknowledges new nodes and `outcome` counts and logs what each
//! datagram did.

mod address;
mod listener;
mod membership;
mod notify;
mod outcome;
mod packet;
mod signature;

pub use listener::DatagramSource;
pub use notify::ack_message;
pub use outcome::Refused;
pub use packet::{Action, BadPacket, Signed, Subscription, MAX_DATAGRAM};
pub use signature::{key_file, read_public_key, verify, SignatureError};

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use self::listener::DatagramSocket;
use self::membership::Membership;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::proxy::SharedDispatch;

/// Datagrams waiting for the handler; past this they are dropped and counted (`overload`).
const QUEUE: usize = 1024;
/// How often pools created from keys are checked for having no node left.
const SWEEP_EVERY: Duration = Duration::from_millis(500);

/// A subscription socket that could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen for subscriptions on {addr}: {source}")]
pub struct BindError {
    /// The address as configured.
    pub addr: String,
    /// The OS error.
    pub source: io::Error,
}

/// The bound subscription sockets, ready to serve.
#[derive(Debug)]
pub struct SubscriptionServer {
    sockets: Vec<DatagramSocket>,
}

impl SubscriptionServer {
    /// Binds every `subscription.listen` address of a validated config; `None` when there is none.
    pub fn bind(config: &Config) -> Result<Option<Self>, BindError> {
        if !config.subscription.enabled() {
            return Ok(None);
        }
        let mode = config.listen.unix_socket_mode;
        let mut sockets = Vec::new();
        for addr in &config.subscription.listen {
            let socket = DatagramSocket::bind(addr, mode).map_err(|source| BindError {
                addr: addr.to_string(),
                source,
            })?;
            sockets.push(socket);
        }
        Ok(Some(Self { sockets }))
    }

    /// The bound addresses, in config order (`unix:/path` for UNIX sockets).
    pub fn local_addrs(&self) -> Vec<String> {
        self.sockets
            .iter()
            .map(DatagramSocket::local_addr)
            .collect()
    }

    /// Serves until `shutdown`: a receive task per socket, and one task that applies datagrams in
    /// arrival order (so two of them never race on a pool) and drops emptied key pools.
    pub fn spawn(
        self,
        cluster: Arc<Cluster>,
        dispatch: SharedDispatch,
        shutdown: CancellationToken,
    ) {
        let (queue, mut incoming) = mpsc::channel(QUEUE);
        for socket in self.sockets {
            tracing::info!(address = %socket.local_addr(), "listening for uWSGI subscriptions");
            tokio::spawn(socket.receive(queue.clone(), shutdown.clone()));
        }
        drop(queue);
        let mut membership = Membership::new(cluster, dispatch);
        tokio::spawn(async move {
            let mut sweep = tokio::time::interval(SWEEP_EVERY);
            sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    datagram = incoming.recv() => match datagram {
                        Some((bytes, from)) => membership.handle(&bytes, from),
                        None => return,
                    },
                    _ = sweep.tick() => membership.sweep(),
                    () = shutdown.cancelled() => return,
                }
            }
        });
    }
}
