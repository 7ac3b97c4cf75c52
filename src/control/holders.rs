//! Which Registry session holds each node id. A node id is the key its traffic is routed by, so
//! a session may only take an id over when it comes from the node that holds it: the same node
//! address, and (while the holding session is live) the same host. Anything else is refused with
//! `ID_TAKEN`, naming the holder; a take-over tells the session it replaced, which then ends.
//! Nothing is ever displaced silently.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::api::AdminState;
use crate::clock::now_ms;
use crate::cluster::{Cluster, JoinError};
use crate::node::{Node, Source};

/// Operators' changes queued towards one agent; they come at the pace of people.
const ADMIN_QUEUE: usize = 16;

/// The live sessions, by the node id each holds.
#[derive(Debug, Default)]
pub(super) struct Holders {
    by_id: Mutex<HashMap<Arc<str>, Holder>>,
    serial: AtomicU64,
}

#[derive(Debug)]
struct Holder {
    serial: u64,
    /// The holding session's remote address.
    peer: Option<SocketAddr>,
    /// The node address it announced.
    node_addr: String,
    /// Tells the holding session who took its node over.
    replaced: oneshot::Sender<String>,
    /// Passes operators' changes to the node's agent, when it keeps the node's operator state.
    admin: Option<mpsc::Sender<AdminState>>,
}

/// Why a session may not hold the id it announced.
#[derive(Debug)]
pub(super) enum Refused {
    /// The cluster refused the node (pool, networks, size, kind).
    Join(JoinError),
    /// Another session (or a lease still running) holds the id for another node.
    Held(String),
}

/// A session's hold on its node id; dropping it (when the session ends) frees the id, unless a
/// newer session took it over meanwhile.
#[derive(Debug)]
pub(super) struct Claim {
    holders: Arc<Holders>,
    id: Arc<str>,
    serial: u64,
    /// Resolves, with the reason, when another session of the same node took the id over.
    pub(super) replaced: oneshot::Receiver<String>,
    /// Operators' changes for the node's agent (see [`Holders::tell`]); `None` when the agent
    /// keeps no operator state.
    pub(super) admin: Option<mpsc::Receiver<AdminState>>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut by_id = self.holders.lock();
        if by_id.get(&self.id).is_some_and(|h| h.serial == self.serial) {
            by_id.remove(&self.id);
        }
    }
}

impl Holders {
    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, Holder>> {
        self.by_id.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits `node` into `pool` for the session from `peer`, if the id is free or held by the
    /// same node; a session it takes over is told so.
    pub(super) fn join(
        self: &Arc<Self>,
        cluster: &Cluster,
        pool: &str,
        node: Node,
        lease: Duration,
        peer: Option<SocketAddr>,
    ) -> Result<(Arc<Node>, Claim), Refused> {
        let node_addr = node.addr().to_string();
        let id = node.id().clone();
        let (admin, admin_rx) = if node.agent_admin() {
            let (tx, rx) = mpsc::channel(ADMIN_QUEUE);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        // One lock over the check, the join and the record: two sessions racing for an id
        // cannot both pass.
        let mut by_id = self.lock();
        match by_id.get(&id) {
            Some(h) => {
                let same_host = h.peer.map(|a| a.ip()) == peer.map(|a| a.ip());
                if h.node_addr != node_addr || !same_host {
                    return Err(Refused::Held(format!(
                        "node id {id:?} is held by a live session from {} (node address {}); \
                         only that node may take it over: announce another id",
                        h.peer
                            .map_or_else(|| "an unknown address".to_owned(), |a| a.to_string()),
                        h.node_addr
                    )));
                }
            }
            None => {
                if let Some((_, held)) = cluster.find(&id) {
                    let now = now_ms();
                    let leased = held.source() == Source::Registered && !held.lease_expired(now);
                    if leased && held.addr().to_string() != node_addr {
                        return Err(Refused::Held(format!(
                            "node id {id:?} is registered at {} until its lease runs out \
                             (its session ended); announce another id, or retry after the lease",
                            held.addr()
                        )));
                    }
                }
            }
        }
        let node = cluster.join(pool, node, lease).map_err(Refused::Join)?;
        let serial = self.serial.fetch_add(1, Relaxed);
        let (tx, rx) = oneshot::channel();
        let old = by_id.insert(
            id.clone(),
            Holder {
                serial,
                peer,
                node_addr,
                replaced: tx,
                admin,
            },
        );
        drop(by_id);
        if let Some(old) = old {
            let by = peer.map_or_else(|| "an unknown address".to_owned(), |a| a.to_string());
            let _ = old.replaced.send(format!(
                "node {id:?} was taken over by a new session from {by} (same node address)"
            ));
        }
        Ok((
            node,
            Claim {
                holders: self.clone(),
                id,
                serial,
                replaced: rx,
                admin: admin_rx,
            },
        ))
    }

    /// Queues `state` for the agent of node `id` on its live session. False when no live
    /// session of an agent that keeps the node's operator state holds the id, or it is too far
    /// behind to take it.
    pub(super) fn tell(&self, id: &str, state: AdminState) -> bool {
        let by_id = self.lock();
        let Some(admin) = by_id.get(id).and_then(|h| h.admin.as_ref()) else {
            return false;
        };
        admin.try_send(state).is_ok()
    }
}
