//! The routers the agent keeps a session with, by URL: told the URLs wanted now, it starts a
//! session for each new one, closes the session of each one gone (drain, then leave, as on
//! shutdown) and leaves the others alone. Only the discovery task holds it.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::{self, JoinSet};
use tokio_util::sync::CancellationToken;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{ClientTlsConfig, Endpoint};

use super::admin_state::AdminStore;
use super::counters::AgentCounters;
use super::probe::NodeState;
use super::session::RouterLink;
use super::AgentError;
use crate::api::Announce;

/// Time to open a TCP (and TLS) connection to a router.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// HTTP/2 pings on router connections: a router that vanished without closing its sockets is
/// noticed within interval + timeout.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// The URLs wanted, each with the name its TLS certificate is verified against when that is not
/// the URL's host (a `dns+https` name's address).
pub(crate) type Wanted = BTreeMap<String, Option<String>>;

/// What every session shares: the node's announce, state and operator state, credentials,
/// timing.
pub(crate) struct SessionParts {
    pub(crate) announce: Announce,
    pub(crate) bearer: Option<MetadataValue<Ascii>>,
    pub(crate) tls: Option<ClientTlsConfig>,
    pub(crate) interval: Duration,
    pub(crate) drain_timeout: Duration,
    pub(crate) node: watch::Receiver<NodeState>,
    pub(crate) counters: Arc<AgentCounters>,
    /// The node's operator state, shared by every session.
    pub(crate) admin: Arc<AdminStore>,
}

impl SessionParts {
    /// The session of the router at `url`, stopped (drained, left) by `stop`.
    fn link(
        &self,
        url: &str,
        tls_name: Option<&str>,
        stop: CancellationToken,
    ) -> Result<RouterLink, AgentError> {
        Ok(RouterLink {
            url: url.to_owned(),
            endpoint: self.endpoint(url, tls_name)?,
            announce: self.announce.clone(),
            bearer: self.bearer.clone(),
            interval: self.interval,
            drain_timeout: self.drain_timeout,
            node: self.node.clone(),
            counters: self.counters.clone(),
            admin_state: self.admin.subscribe(),
            admin: self.admin.clone(),
            stop,
        })
    }

    /// The gRPC endpoint of one router: connect timeout, HTTP/2 keepalive, TLS for `https://`
    /// (verified against `tls_name` when given, else the URL's host).
    pub(crate) fn endpoint(
        &self,
        url: &str,
        tls_name: Option<&str>,
    ) -> Result<Endpoint, AgentError> {
        let bad = |e: tonic::transport::Error| AgentError::Router {
            url: url.to_owned(),
            reason: e.to_string(),
        };
        let mut endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(bad)?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(true);
        if url.starts_with("https://") {
            let mut tls = self.tls.clone().ok_or_else(|| AgentError::Router {
                url: url.to_owned(),
                reason: "https needs tls_ca".to_owned(),
            })?;
            if let Some(name) = tls_name {
                tls = tls.domain_name(name);
            }
            endpoint = endpoint.tls_config(tls).map_err(bad)?;
        }
        Ok(endpoint)
    }
}

/// A live session: how to close it, and its task.
struct Live {
    stop: CancellationToken,
    task: task::Id,
}

/// The sessions, by router URL.
pub(crate) struct RouterSet {
    parts: SessionParts,
    /// The agent's stop: every session's token is a child of it.
    stop: CancellationToken,
    tasks: JoinSet<()>,
    live: BTreeMap<String, Live>,
    /// Sessions closing (draining, leaving) because their URL went, by task.
    leaving: BTreeMap<task::Id, String>,
    wanted: Wanted,
}

impl RouterSet {
    /// No session yet; `stop` ends them all.
    pub(crate) fn new(parts: SessionParts, stop: CancellationToken) -> Self {
        Self {
            parts,
            stop,
            tasks: JoinSet::new(),
            live: BTreeMap::new(),
            leaving: BTreeMap::new(),
            wanted: Wanted::new(),
        }
    }

    /// Makes the sessions match `wanted`: closes those whose URL is not in it and starts one per
    /// new URL. A URL whose previous session is still leaving starts when that one has ended.
    pub(crate) fn set(&mut self, wanted: Wanted) {
        self.wanted = wanted;
        let gone: Vec<String> = self
            .live
            .keys()
            .filter(|url| !self.wanted.contains_key(*url))
            .cloned()
            .collect();
        for url in gone {
            let Some(live) = self.live.remove(&url) else {
                continue;
            };
            tracing::info!(router = %url, "router no longer listed: draining the node there, then leaving");
            live.stop.cancel();
            self.leaving.insert(live.task, url);
        }
        for (url, tls_name) in &self.wanted {
            if self.live.contains_key(url) || self.leaving.values().any(|u| u == url) {
                continue;
            }
            let stop = self.stop.child_token();
            match self.parts.link(url, tls_name.as_deref(), stop.clone()) {
                Ok(link) => {
                    let task = self.tasks.spawn(link.run()).id();
                    self.live.insert(url.clone(), Live { stop, task });
                }
                // Agent::start built the endpoint of every kind of URL it can be given.
                Err(e) => tracing::error!(router = %url, error = %e, "cannot open a session"),
            }
        }
        self.count();
    }

    /// The next session task to end (`None` while there is none).
    pub(crate) async fn next_end(&mut self) -> Option<task::Id> {
        match self.tasks.join_next_with_id().await? {
            Ok((id, ())) => Some(id),
            Err(e) => {
                if e.is_panic() {
                    tracing::error!(error = %e, "a router session panicked");
                }
                Some(e.id())
            }
        }
    }

    /// Forgets the session task `id`, which ended. A closed session frees its URL: if that is
    /// wanted again it starts now. A live one ends by itself only when it failed for good
    /// (a panic): it is started again by the next [`RouterSet::set`], not in a loop here.
    pub(crate) fn ended(&mut self, id: task::Id) {
        if self.leaving.remove(&id).is_some() {
            if !self.stop.is_cancelled() {
                let wanted = std::mem::take(&mut self.wanted);
                self.set(wanted);
            }
            return;
        }
        self.live.retain(|_, live| live.task != id);
        self.count();
    }

    /// Shows the number of live sessions in `uwsgi_router_agent_routers`.
    fn count(&self) {
        let routers = u64::try_from(self.live.len()).unwrap_or(u64::MAX);
        self.parts.counters.routers.store(routers, Relaxed);
    }

    /// Waits for every session to end: after the agent's stop, each drains and leaves.
    pub(crate) async fn join_all(mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}
