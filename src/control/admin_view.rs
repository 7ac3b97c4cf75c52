//! What the Admin service shows: nodes, pools and cluster events as the Admin API's messages
//! (and so as `routerctl --json` prints them), read from pool snapshots and node atomics.

use crate::api::{Event, NodeInfo, PoolInfo};
use crate::clock::now_ms;
use crate::cluster::{Cluster, ClusterEvent, Pool};
use crate::node::{Node, NodeStatus, Outcome};

/// A node as routerctl shows it.
pub fn node_info(pool: &Pool, node: &Node) -> NodeInfo {
    let now = now_ms();
    let status = node.status(now, pool.settings().slow_start);
    let load = node.reported_load();
    NodeInfo {
        id: node.id().to_string(),
        pool: pool.name.to_string(),
        address: node.addr().to_string(),
        state: status.as_str().to_owned(),
        source: node.source().as_str().to_owned(),
        weight: node.weight(),
        weight_reported: node.weight_configured(),
        weight_override: node.weight_override().unwrap_or(0),
        capacity: node.capacity(),
        busy: load.map_or(0, |l| l.busy),
        queue: load.map_or(0, |l| l.queue),
        in_flight: node.in_flight(),
        requests_total: node.requests_total(),
        errors_total: node.failures_total(),
        responses_5xx: node.outcomes().count(Outcome::Responded(Some(500))),
        latency_ms: node.latency_ms(now),
        report_age_ms: load.map_or(-1, |l| now.saturating_sub(l.at_ms) as i64),
        ejected_for_ms: node
            .health()
            .ejected_until()
            .map_or(0, |u| u.saturating_sub(now)),
        labels: node.meta().labels.iter().cloned().collect(),
        version: node.meta().version.clone(),
        age_seconds: now.saturating_sub(node.joined_ms()) / 1000,
    }
}

pub(super) fn pool_info(pool: &Pool) -> PoolInfo {
    let snap = pool.snapshot();
    let infos: Vec<NodeInfo> = snap.nodes.iter().map(|n| node_info(pool, n)).collect();
    let count = |states: &[NodeStatus]| {
        infos
            .iter()
            .filter(|n| states.iter().any(|s| s.as_str() == n.state))
            .count() as u32
    };
    PoolInfo {
        name: pool.name.to_string(),
        algorithm: snap.settings.algorithm.name().to_owned(),
        nodes: infos.len() as u32,
        nodes_active: count(&[NodeStatus::Active, NodeStatus::Joining]),
        nodes_draining: count(&[
            NodeStatus::Draining,
            NodeStatus::Drained,
            NodeStatus::Maintenance,
        ]),
        nodes_ejected: count(&[NodeStatus::Ejected]),
        requests_total: infos.iter().map(|n| n.requests_total).sum(),
        errors_total: infos.iter().map(|n| n.errors_total).sum(),
        responses_5xx: infos.iter().map(|n| n.responses_5xx).sum(),
        requests_per_second: pool.requests_per_second(),
        in_flight: infos.iter().map(|n| n.in_flight).sum(),
    }
}

/// A cluster event as the Watch stream carries it.
pub(super) fn event(e: &ClusterEvent) -> Event {
    let (kind, pool, node, detail) = match e {
        ClusterEvent::NodeJoined {
            pool,
            node,
            addr,
            source,
        } => (
            "node_joined",
            &**pool,
            &**node,
            format!("{addr} ({})", source.as_str()),
        ),
        ClusterEvent::NodeLeft { pool, node, reason } => {
            ("node_left", &**pool, &**node, reason.to_string())
        }
        ClusterEvent::NodeEjected {
            pool,
            node,
            for_ms,
            cause,
        } => (
            "node_ejected",
            &**pool,
            &**node,
            format!("{cause} for {for_ms} ms"),
        ),
        ClusterEvent::NodeDraining { pool, node } => {
            ("node_draining", &**pool, &**node, String::new())
        }
        ClusterEvent::NodeDrained { pool, node } => {
            ("node_drained", &**pool, &**node, String::new())
        }
        ClusterEvent::NodeResumed { pool, node } => {
            ("node_resumed", &**pool, &**node, String::new())
        }
        ClusterEvent::OperatorAction {
            pool,
            node,
            action,
            actor,
            reason,
        } => {
            let why = if reason.is_empty() {
                String::new()
            } else {
                format!(": {reason}")
            };
            (
                "operator_action",
                &**pool,
                &**node,
                format!("{action} by {actor}{why}"),
            )
        }
        ClusterEvent::PoolsChanged => ("pools_changed", "", "", String::new()),
        ClusterEvent::ConfigReloaded => ("config_reloaded", "", "", String::new()),
    };
    stamped(kind, pool, node, detail)
}

/// An event of `kind`, dated now.
fn stamped(kind: &str, pool: &str, node: &str, detail: String) -> Event {
    let time_unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Event {
        time_unix_ms,
        kind: kind.to_owned(),
        pool: pool.to_owned(),
        node: node.to_owned(),
        detail,
    }
}

/// What a watcher that missed events is sent instead of them: a `node_state` event per node in
/// every pool (its state and address), then `resynced` with the counts. From there on the
/// watcher's view is whole again.
pub(super) fn resync(cluster: &Cluster) -> Vec<Event> {
    let now = now_ms();
    let pools = cluster.pools();
    let mut events = Vec::new();
    for pool in &pools {
        let slow_start = pool.settings().slow_start;
        for node in &pool.snapshot_arc().nodes {
            let status = node.status(now, slow_start);
            let detail = format!("{} {}", status.as_str(), node.addr());
            events.push(stamped("node_state", &pool.name, node.id(), detail));
        }
    }
    let detail = format!("{} nodes in {} pools", events.len(), pools.len());
    events.push(stamped("resynced", "", "", detail));
    events
}
