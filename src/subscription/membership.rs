//! Applying subscriptions to the cluster. The key is routed as a request's host would be (or gets
//! a pool of its own, as uWSGI's FastRouter does); the node then joins with a lease of
//! `tolerance`, renews it and reports its load, or leaves.

use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::address::{self, Announced};
use super::listener::DatagramSource;
use super::notify;
use super::outcome::{LogLimiter, Outcome, Refused};
use super::packet::{Action, Subscription};
use super::signature::{self, ReplayGuard, SignatureError};
use crate::addr::{key_host, NodeAddr};
use crate::clock::now_ms;
use crate::cluster::{Cluster, LeaveReason, Pool, PoolSettings};
use crate::config::{Config, SubscriptionConfig};
use crate::metrics;
use crate::node::{LoadReport, Node, Source};
use crate::proxy::SharedDispatch;

/// Applies datagrams, one at a time, to the cluster.
#[derive(Debug)]
pub(super) struct Membership {
    cluster: Arc<Cluster>,
    dispatch: SharedDispatch,
    replay: ReplayGuard,
    log: LogLimiter,
}

impl Membership {
    pub(super) fn new(cluster: Arc<Cluster>, dispatch: SharedDispatch) -> Self {
        Self {
            cluster,
            dispatch,
            replay: ReplayGuard::default(),
            log: LogLimiter::default(),
        }
    }

    /// Applies one datagram, then counts and (refusals, within limits) logs what it did.
    pub(super) fn handle(&mut self, datagram: &[u8], from: DatagramSource) {
        match self.apply(datagram, from) {
            Ok(outcome) => {
                metrics::subscription_packet(outcome.label());
                if outcome == Outcome::UnknownNode {
                    tracing::debug!(%from, "unsubscribe for a node that is not subscribed");
                }
            }
            Err(refused) => {
                metrics::subscription_packet(refused.kind());
                if refused.is_rejection() {
                    metrics::registration_rejected(refused.kind());
                }
                self.log
                    .refused(&refused, from, Subscription::parse(datagram).ok());
            }
        }
    }

    /// Checks a datagram in this order: the packet, the sender, the signature, what the packet
    /// names (key, address, notify path), the address as resolved, and last the replay state,
    /// so that only a packet about to be applied is remembered as the node's last one.
    fn apply(&mut self, datagram: &[u8], from: DatagramSource) -> Result<Outcome, Refused> {
        let config = self.dispatch.load().config.clone();
        let sub = &config.subscription;
        let s = Subscription::parse(datagram)?;
        let networks = &sub.allowed_networks;
        if !networks.allows(from.ip()) {
            return Err(Refused::SenderNotAllowed(from.ip()));
        }
        let signed_at = match &sub.key_dir {
            Some(dir) => Some(check_signature(&s, dir, sub)?),
            None => None,
        };
        let host = host_key(s.key)?;
        let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let announced = address::parse_address(s.address)
            .ok_or_else(|| Refused::BadAddress(lossy(s.address)))?;
        let notify = match s.notify {
            Some(n) => Some(address::parse_notify(n).ok_or_else(|| Refused::BadNotify(lossy(n)))?),
            None => None,
        };
        let relative = signed_at.is_some() && matches!(announced, Announced::Relative(_));
        if relative && !sub.relative_networks(&host).allows(from.ip()) {
            return Err(Refused::RelativeAddress {
                address: lossy(s.address),
                sender: from.ip(),
                key: host,
            });
        }
        let addr = address::resolve(announced, from.ip());
        if !networks.allows_node(&addr) {
            return Err(Refused::AddressNotAllowed(addr.to_string()));
        }
        if let Some(unix) = signed_at {
            let window = sub.replay_window.as_secs().max(1);
            self.replay
                .check(&host, &addr, datagram, unix, unix_now(), window)?;
        }
        match s.action {
            Action::Subscribe => self.subscribe(&s, &host, addr, notify, from, &config),
            Action::Unsubscribe => self.unsubscribe(&s, &host, &addr, from),
        }
    }

    fn subscribe(
        &mut self,
        s: &Subscription<'_>,
        host: &str,
        addr: NodeAddr,
        notify: Option<&Path>,
        from: DatagramSource,
        config: &Config,
    ) -> Result<Outcome, Refused> {
        let sub = &config.subscription;
        let pool = match self.pool_for(s.key, host) {
            Some(pool) => pool,
            // No pool is made for a node that could not join it.
            None if self.subscribed_nodes() >= sub.max_nodes => {
                return Err(Refused::TooManyNodes(sub.max_nodes))
            }
            None => self.create_pool(host, config)?,
        };
        sender_allowed_in(&pool, from)?;
        let id = format!("{addr}@{}", pool.name);
        let now = now_ms();
        let known = pool.node(&id);
        if let Some(node) = known
            .as_ref()
            .filter(|n| n.source() == Source::Subscribed && n.modifiers() == s.modifiers())
        {
            node.record_report(&report(s), now, sub.tolerance);
            return Ok(Outcome::Renewed);
        }
        if known.is_none() && self.subscribed_nodes() >= sub.max_nodes {
            return Err(Refused::TooManyNodes(sub.max_nodes));
        }
        let node =
            Node::new(id, addr, Source::Subscribed, s.weight.max(1)).with_modifiers(s.modifiers());
        let node = self.cluster.join(&pool.name, node, sub.tolerance)?;
        node.record_report(&report(s), now, sub.tolerance);
        if let Some(path) = notify {
            match address::notify_target(path, sub.notify_dir.as_deref()) {
                Ok(socket) => notify::acknowledge(&socket, s.key, s.address),
                Err(why) => self.log.not_acknowledged(&why, from, s.key),
            }
        }
        Ok(Outcome::Joined)
    }

    fn unsubscribe(
        &self,
        s: &Subscription<'_>,
        host: &str,
        addr: &NodeAddr,
        from: DatagramSource,
    ) -> Result<Outcome, Refused> {
        let Some(pool) = self.pool_for(s.key, host) else {
            return Ok(Outcome::UnknownNode);
        };
        sender_allowed_in(&pool, from)?;
        let id = format!("{addr}@{}", pool.name);
        match pool.node(&id) {
            Some(node) if node.source() == Source::Subscribed => {
                pool.remove(&id, LeaveReason::Unsubscribed);
                Ok(Outcome::Left)
            }
            _ => Ok(Outcome::UnknownNode),
        }
    }

    /// The pool a route sends the key to, configured or created from a key before. The route
    /// table may lag behind the cluster by one rebuild, so the pool is looked up by name: one
    /// dropped since is not joined.
    fn pool_for(&self, key: &[u8], host: &str) -> Option<Arc<Pool>> {
        let routed = self.dispatch.load().routes.route_host(key).cloned();
        if let Some(pool) = routed.and_then(|p| self.cluster.pool(&p.name)) {
            return Some(pool);
        }
        let name = self.cluster.dynamic_route(host)?;
        self.cluster.pool(&name)
    }

    fn create_pool(&self, host: &str, config: &Config) -> Result<Arc<Pool>, Refused> {
        let sub = &config.subscription;
        if !sub.create_pools {
            return Err(Refused::NoRoute(host.to_owned()));
        }
        if config.pools.contains_key(host) || self.cluster.pool(host).is_some() {
            return Err(Refused::PoolNameTaken(host.to_owned()));
        }
        if self.cluster.dynamic_route_count() >= sub.max_pools {
            return Err(Refused::TooManyPools(sub.max_pools));
        }
        let settings = PoolSettings {
            allowed_networks: sub.allowed_networks.clone(),
            ..PoolSettings::default()
        };
        tracing::info!(
            pool = host,
            "creating a pool and a route for a new subscription key"
        );
        Ok(self.cluster.add_dynamic_pool(host, host, settings))
    }

    fn subscribed_nodes(&self) -> usize {
        self.cluster
            .pools()
            .iter()
            .map(|p| p.count_members(|n| n.source() == Source::Subscribed))
            .sum()
    }

    /// Drops pools created from keys once they hold no node (expired or unsubscribed), so keys
    /// that come and go do not use up `max_pools`; a pool the config now defines is left to it.
    pub(super) fn sweep(&mut self) {
        let config = self.dispatch.load().config.clone();
        for (host, pool) in self.cluster.dynamic_routes() {
            if config.pools.contains_key(&*pool) {
                self.cluster.remove_dynamic_route(&host, false);
            } else if self.cluster.pool(&pool).is_none_or(|p| p.is_empty())
                && self.cluster.remove_dynamic_route(&host, true)
            {
                tracing::info!(%pool, "dropped the pool created for a subscription key: no node left");
            }
        }
        let window = config.subscription.replay_window.as_secs();
        self.replay.forget_before(unix_now().saturating_sub(window));
    }
}

/// Verifies the signature and returns the packet's `unix` time (checked against the replay
/// state once the node's address is known).
fn check_signature(
    s: &Subscription<'_>,
    dir: &Path,
    sub: &SubscriptionConfig,
) -> Result<u64, SignatureError> {
    let signed = s.signed.ok_or(SignatureError::Unsigned("sign"))?;
    let unix = s.unix.ok_or(SignatureError::Unsigned("unix"))?;
    let path = signature::key_file(dir, s.key);
    let key = signature::read_public_key(&path)?;
    signature::verify(key, sub.digest, signed.message, signed.signature, &path)?;
    Ok(unix)
}

/// What a subscription packet says about the node's load: uWSGI sends its cores, its listen
/// queue (`load`) and its weight, not its busy workers.
fn report(s: &Subscription<'_>) -> LoadReport {
    LoadReport {
        capacity: s.cores,
        busy: 0,
        queue: s.load,
        weight: Some(s.weight),
    }
}

fn sender_allowed_in(pool: &Pool, from: DatagramSource) -> Result<(), Refused> {
    if pool.settings().allowed_networks.allows(from.ip()) {
        Ok(())
    } else {
        Err(Refused::SenderNotAllowed(from.ip()))
    }
}

fn host_key(key: &[u8]) -> Result<String, Refused> {
    key_host(key).ok_or_else(|| Refused::BadKey(String::from_utf8_lossy(key).into_owned()))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_become_route_hosts() {
        assert_eq!(host_key(b"Example.COM").unwrap(), "example.com");
        assert_eq!(host_key(b"example.com.").unwrap(), "example.com");
        assert_eq!(host_key(b"example.com:8080").unwrap(), "example.com:8080");
        for bad in [&b"*.example.com"[..], b"a b", b"", b"\xff"] {
            assert_eq!(host_key(bad).unwrap_err().kind(), "bad_key", "{bad:?}");
        }
    }
}
