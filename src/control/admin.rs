//! The `Admin` service: what `routerctl` reads and does. Reads come from pool snapshots and node
//! atomics; actions go through the cluster, which announces them as events.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio_stream::Stream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::admin_view::{event, node_info, pool_info, resync};
use super::agent_admin;
use super::auth::Caller;
use super::holders::Holders;
use crate::api::admin_server::Admin;
use crate::api::{
    EjectRequest, Event, ListNodesRequest, ListNodesResponse, ListPoolsRequest, ListPoolsResponse,
    NodeInfo, NodeRequest, ReloadRequest, ReloadResponse, RemoveResponse, SetWeightRequest,
    StatusRequest, StatusResponse, WatchRequest,
};
use crate::cluster::{Cluster, ClusterEvent, LeaveReason, OperatorChange, Pool};
use crate::node::{AdminState, Node};

/// What the Admin service needs from the daemon besides the cluster.
pub trait RouterControl: Send + Sync + 'static {
    /// Re-reads and applies the config file; the error explains what is wrong with it.
    fn reload(&self) -> Result<(), String>;
    /// The router's status.
    fn status(&self) -> StatusResponse;
}

/// The Admin service.
#[derive(Clone)]
pub struct AdminService {
    cluster: Arc<Cluster>,
    router: Arc<dyn RouterControl>,
    /// The Registry's sessions: operators' changes to a node whose agent keeps its state go
    /// to that agent through them.
    agents: Arc<Holders>,
    /// Ends Watch streams when the router stops.
    shutdown: CancellationToken,
}

impl std::fmt::Debug for AdminService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminService").finish_non_exhaustive()
    }
}

impl AdminService {
    /// An Admin service over `cluster`.
    pub fn new(
        cluster: Arc<Cluster>,
        router: Arc<dyn RouterControl>,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            cluster,
            router,
            agents: Arc::default(),
            shutdown,
        }
    }

    /// Passes operators' changes to agents through `registry`'s sessions.
    pub(super) fn with_agents(mut self, registry: &super::RegistryService) -> Self {
        self.agents = registry.holders();
        self
    }

    fn found(&self, id: &str) -> Result<(Arc<Pool>, Arc<Node>), Status> {
        self.cluster.find(id).ok_or_else(|| not_found(id))
    }
}

/// Who made the call, as the credentials check found them.
fn caller<T>(req: &Request<T>) -> Arc<str> {
    req.extensions()
        .get::<Caller>()
        .map_or_else(|| Arc::from("anonymous"), |c| c.0.clone())
}

impl AdminService {
    /// Keeps an operator's change to `node` of `pool` where it belongs, then announces it: with
    /// the node's agent when it keeps the node's operator state (the agent applies it on every
    /// router it talks to), else in this router's state file.
    fn attribute(
        &self,
        (pool, node): (&Pool, &Node),
        (action, change): (String, OperatorChange),
        actor: Arc<str>,
        reason: &str,
    ) {
        if !node.agent_admin() {
            return self.record_here((pool, node), (action, change), actor, reason);
        }
        let state = agent_admin::wanted(node, &actor, reason);
        if !self.agents.tell(node.id(), state) {
            tracing::warn!(pool = %pool.name, node = %node.id(), %action, "the node's agent has no live session here: the change holds on this router only, until the agent announces its state again");
        }
        self.announce(pool, node, action, actor, reason);
    }

    /// Keeps an operator's change in this router's state file (ejections and removals, which
    /// are this router's own, and every change to a node whose agent keeps no state), then
    /// announces it.
    fn record_here(
        &self,
        (pool, node): (&Pool, &Node),
        (action, change): (String, OperatorChange),
        actor: Arc<str>,
        reason: &str,
    ) {
        self.cluster.record_override(pool, node, change);
        self.announce(pool, node, action, actor, reason);
    }

    /// Logs and announces that `actor` did `action` to `node` of `pool`, saying `reason`.
    fn announce(&self, pool: &Pool, node: &Node, action: String, actor: Arc<str>, reason: &str) {
        self.cluster.events().emit(ClusterEvent::OperatorAction {
            pool: pool.name.clone(),
            node: node.id().clone(),
            action,
            actor,
            reason: agent_admin::clean(reason).into(),
        });
    }
}

fn not_found(id: &str) -> Status {
    Status::not_found(format!(
        "no node with id {id:?} (routerctl nodes lists them)"
    ))
}

type EventStream = Pin<Box<dyn Stream<Item = Result<Event, Status>> + Send>>;

#[tonic::async_trait]
impl Admin for AdminService {
    async fn status(&self, _: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        Ok(Response::new(self.router.status()))
    }

    async fn list_pools(
        &self,
        _: Request<ListPoolsRequest>,
    ) -> Result<Response<ListPoolsResponse>, Status> {
        let pools = self.cluster.pools().iter().map(|p| pool_info(p)).collect();
        Ok(Response::new(ListPoolsResponse { pools }))
    }

    async fn list_nodes(
        &self,
        req: Request<ListNodesRequest>,
    ) -> Result<Response<ListNodesResponse>, Status> {
        let only = req.into_inner().pool;
        let pools = match only.as_str() {
            "" => self.cluster.pools(),
            name => vec![self
                .cluster
                .pool(name)
                .ok_or_else(|| Status::not_found(format!("no pool named {name:?}")))?],
        };
        let mut nodes: Vec<NodeInfo> = pools
            .iter()
            .flat_map(|p| {
                p.snapshot()
                    .nodes
                    .iter()
                    .map(|n| node_info(p, n))
                    .collect::<Vec<_>>()
            })
            .collect();
        nodes.sort_by(|a, b| (&a.pool, &a.id).cmp(&(&b.pool, &b.id)));
        Ok(Response::new(ListNodesResponse { nodes }))
    }

    async fn get_node(&self, req: Request<NodeRequest>) -> Result<Response<NodeInfo>, Status> {
        let (pool, node) = self.found(&req.into_inner().id)?;
        Ok(Response::new(node_info(&pool, &node)))
    }

    async fn drain_node(&self, req: Request<NodeRequest>) -> Result<Response<NodeInfo>, Status> {
        let actor = caller(&req);
        let NodeRequest { id, reason } = req.into_inner();
        let (pool, node) = self.found(&id)?;
        self.cluster.drain(&id);
        let what = ("drain".to_owned(), OperatorChange::Drained);
        self.attribute((&pool, &node), what, actor, &reason);
        Ok(Response::new(node_info(&pool, &node)))
    }

    async fn maintain_node(&self, req: Request<NodeRequest>) -> Result<Response<NodeInfo>, Status> {
        let actor = caller(&req);
        let NodeRequest { id, reason } = req.into_inner();
        let (pool, node) = self.found(&id)?;
        node.set_admin_state(AdminState::Maintenance);
        // A state file keeps a static node's maintenance as a drain: out of rotation either way.
        let what = ("maintenance".to_owned(), OperatorChange::Drained);
        self.attribute((&pool, &node), what, actor, &reason);
        Ok(Response::new(node_info(&pool, &node)))
    }

    async fn resume_node(&self, req: Request<NodeRequest>) -> Result<Response<NodeInfo>, Status> {
        let actor = caller(&req);
        let NodeRequest { id, reason } = req.into_inner();
        let (pool, node) = self.cluster.resume(&id).ok_or_else(|| not_found(&id))?;
        let what = ("resume".to_owned(), OperatorChange::Cleared);
        self.attribute((&pool, &node), what, actor, &reason);
        Ok(Response::new(node_info(&pool, &node)))
    }

    async fn set_weight(
        &self,
        req: Request<SetWeightRequest>,
    ) -> Result<Response<NodeInfo>, Status> {
        let actor = caller(&req);
        let r = req.into_inner();
        if r.weight > 1000 {
            return Err(Status::invalid_argument(
                "weight must be 1 to 1000 (0 clears the override)",
            ));
        }
        let weight = (r.weight > 0).then_some(r.weight);
        let (pool, node) = self
            .cluster
            .set_weight_override(&r.id, weight)
            .ok_or_else(|| not_found(&r.id))?;
        let what = weight.map_or_else(|| "weight cleared".to_owned(), |w| format!("weight {w}"));
        let what = (what, OperatorChange::Weight(weight));
        self.attribute((&pool, &node), what, actor, &r.reason);
        Ok(Response::new(node_info(&pool, &node)))
    }

    async fn eject_node(&self, req: Request<EjectRequest>) -> Result<Response<NodeInfo>, Status> {
        let actor = caller(&req);
        let r = req.into_inner();
        let time = (r.duration_ms > 0).then(|| Duration::from_millis(r.duration_ms));
        let (pool, node) = self
            .cluster
            .eject(&r.id, time)
            .ok_or_else(|| not_found(&r.id))?;
        let took = time.unwrap_or(pool.settings().ejection.base_time);
        let what = format!("eject for {}", humantime::format_duration(took));
        self.record_here(
            (&pool, &node),
            (what, OperatorChange::Ejected(took)),
            actor,
            &r.reason,
        );
        Ok(Response::new(node_info(&pool, &node)))
    }

    async fn remove_node(
        &self,
        req: Request<NodeRequest>,
    ) -> Result<Response<RemoveResponse>, Status> {
        let actor = caller(&req);
        let NodeRequest { id, reason } = req.into_inner();
        let (pool, node) = self.found(&id)?;
        let info = node_info(&pool, &node);
        pool.remove(&id, LeaveReason::RemovedByOperator);
        let what = ("remove".to_owned(), OperatorChange::Cleared);
        self.record_here((&pool, &node), what, actor, &reason);
        Ok(Response::new(RemoveResponse { node: Some(info) }))
    }

    async fn reload(&self, _: Request<ReloadRequest>) -> Result<Response<ReloadResponse>, Status> {
        self.router.reload().map_err(Status::failed_precondition)?;
        Ok(Response::new(ReloadResponse {
            pools: self.cluster.pools().len() as u32,
        }))
    }

    type WatchStream = EventStream;

    async fn watch(&self, _: Request<WatchRequest>) -> Result<Response<Self::WatchStream>, Status> {
        let mut events = self.cluster.events().subscribe();
        let cluster = self.cluster.clone();
        let shutdown = self.shutdown.clone();
        let stream = async_stream(move |tx| async move {
            loop {
                let next = tokio::select! {
                    e = events.recv() => e,
                    () = shutdown.cancelled() => return,
                };
                match next {
                    Ok(e) => {
                        if tx.send(Ok(event(&e))).await.is_err() {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        // Missed events are replaced by the state they led to: the watcher
                        // is resynchronised, not left with a view that is wrong for ever.
                        let lag = Event {
                            kind: "lagged".into(),
                            detail: format!(
                                "{n} events were dropped: the watcher was too slow; the state \
                                 of every node follows"
                            ),
                            ..Default::default()
                        };
                        for e in std::iter::once(lag).chain(resync(&cluster)) {
                            if tx.send(Ok(e)).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(Response::new(stream))
    }
}

/// A stream fed by a task through a bounded channel; the task ends when the caller hangs up.
fn async_stream<F, Fut>(f: F) -> EventStream
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<Event, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(f(tx));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}
