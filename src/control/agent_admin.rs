//! The operator state of nodes whose agent keeps it (their Announce carried an `AdminState`):
//! the agent is the source of truth and every router mirrors it. Here: the state a router asks
//! the agent for after an operator's change, and how a router applies what the agent announces
//! or sends, with the operator's attribution carried along into the event stream.

use std::sync::Arc;

use crate::api::{AdminMode, AdminState as WireState};
use crate::cluster::{Cluster, ClusterEvent};
use crate::node::{AdminState, Node};

/// Most of an actor or reason kept, as for the Admin API's reasons.
const MAX_TEXT: usize = 200;

/// Why an agent's admin state is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("admin.weight {0} is out of range: use 1 to 1000, or 0 for no override")]
pub(super) struct BadWeight(u32);

/// `text` cut to a log line's worth, without control characters.
pub(super) fn clean(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(MAX_TEXT)
        .collect()
}

/// The state to ask `node`'s agent for: the node's state on this router now (an operator's
/// change has just been applied to it), attributed to `actor` with `reason`.
pub(super) fn wanted(node: &Node, actor: &str, reason: &str) -> WireState {
    let mode = match node.admin_state() {
        AdminState::Active => AdminMode::Active,
        AdminState::Draining | AdminState::Drained => AdminMode::Drain,
        AdminState::Maintenance => AdminMode::Maintenance,
    };
    WireState {
        mode: mode as i32,
        weight: node.weight_override().unwrap_or(0),
        actor: clean(actor),
        reason: clean(reason),
    }
}

/// Puts a node that is joining (not shared yet) in the state its agent announced: out of
/// rotation at once if drained or in maintenance (nothing of this router is in flight on it),
/// with the agent's weight override.
pub(super) fn announced(node: Node, state: &WireState) -> Result<Node, BadWeight> {
    if state.weight > 1000 {
        return Err(BadWeight(state.weight));
    }
    let node = node.with_agent_admin();
    if mode(state) != AdminMode::Active {
        node.set_admin_state(AdminState::Maintenance);
    }
    if state.weight > 0 {
        node.set_weight_override(Some(state.weight));
    }
    Ok(node)
}

/// Applies the state `node`'s agent sent (an operator's change made on some router) to this
/// router's `node`. Each real change is announced as an operator action by the operator who
/// made it; the agent's echo of a change made here changes nothing.
pub(super) fn apply(
    cluster: &Cluster,
    node: &Arc<Node>,
    state: &WireState,
) -> Result<(), BadWeight> {
    if state.weight > 1000 {
        return Err(BadWeight(state.weight));
    }
    let Some((pool, _)) = cluster.find(node.id()) else {
        return Ok(());
    };
    let mut done = Vec::new();
    let now = node.admin_state();
    match mode(state) {
        AdminMode::Active if now != AdminState::Active => {
            node.set_admin_state(AdminState::Active);
            cluster.events().emit(ClusterEvent::NodeResumed {
                pool: pool.name.clone(),
                node: node.id().clone(),
            });
            done.push("resume".to_owned());
        }
        AdminMode::Drain if now == AdminState::Active => {
            pool.drain(node.id());
            done.push("drain".to_owned());
        }
        AdminMode::Maintenance if now != AdminState::Maintenance => {
            node.set_admin_state(AdminState::Maintenance);
            done.push("maintenance".to_owned());
        }
        _ => {}
    }
    let weight = (state.weight > 0).then_some(state.weight);
    if node.weight_override() != weight {
        cluster.set_weight_override(node.id(), weight);
        done.push(weight.map_or_else(|| "weight cleared".to_owned(), |w| format!("weight {w}")));
    }
    for action in done {
        cluster.events().emit(ClusterEvent::OperatorAction {
            pool: pool.name.clone(),
            node: node.id().clone(),
            action: format!("{action} (through the node's agent)"),
            actor: actor(state).into(),
            reason: clean(&state.reason).into(),
        });
    }
    Ok(())
}

/// Who made the change the agent passes on; an agent's state written before anyone acted on the
/// node names nobody.
fn actor(state: &WireState) -> String {
    match clean(&state.actor) {
        a if a.is_empty() => "an unnamed operator".to_owned(),
        a => a,
    }
}

/// The mode of `state`; an unknown one (from a newer agent) is taken as maintenance, the safe
/// side: the node takes no traffic until an operator resumes it.
fn mode(state: &WireState) -> AdminMode {
    AdminMode::try_from(state.mode).unwrap_or(AdminMode::Maintenance)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::clock::now_ms;
    use crate::config::Config;
    use crate::node::Source;

    fn state(mode: AdminMode, weight: u32) -> WireState {
        WireState {
            mode: mode as i32,
            weight,
            actor: "token ops#1".into(),
            reason: "kernel update".into(),
        }
    }

    /// A cluster with pool `web`, and node `n` of an agent that announced `first`.
    fn joined(first: &WireState) -> (Arc<Cluster>, Arc<Node>) {
        let c = Arc::new(Cluster::default());
        c.apply_config(&Config::parse("default_pool = \"\"\n[pools.web]\n").unwrap());
        let node = Node::new("n", "127.0.0.1:1".parse().unwrap(), Source::Registered, 1);
        let node = announced(node, first).unwrap();
        let node = c.join("web", node, Duration::from_secs(3)).unwrap();
        (c, node)
    }

    #[test]
    fn a_node_announced_in_maintenance_joins_out_of_rotation_with_its_weight() {
        let (_, node) = joined(&state(AdminMode::Drain, 7));
        assert_eq!(node.admin_state(), AdminState::Maintenance);
        assert_eq!(node.weight_override(), Some(7));
        assert!(!node.is_usable(now_ms()));
        let refused = Node::new("m", "127.0.0.1:2".parse().unwrap(), Source::Registered, 1);
        assert!(announced(refused, &state(AdminMode::Active, 5000)).is_err());
    }

    #[test]
    fn an_operator_drain_ends_in_maintenance_and_the_node_stays() {
        let (c, node) = joined(&state(AdminMode::Active, 0));
        let mut events = c.events().subscribe();
        apply(&c, &node, &state(AdminMode::Drain, 0)).unwrap();
        c.maintain_once(now_ms());
        assert_eq!(node.admin_state(), AdminState::Maintenance);
        assert!(c.find("n").is_some(), "listed, in maintenance");
        let seen: Vec<_> = std::iter::from_fn(|| events.try_recv().ok()).collect();
        assert!(seen.iter().any(|e| matches!(e,
            ClusterEvent::OperatorAction { action, actor, reason, .. }
                if action.starts_with("drain") && &**actor == "token ops#1" && &**reason == "kernel update")));
        // The echo of the same state changes nothing; a resume brings it back.
        apply(&c, &node, &state(AdminMode::Drain, 0)).unwrap();
        assert_eq!(node.admin_state(), AdminState::Maintenance);
        apply(&c, &node, &state(AdminMode::Active, 0)).unwrap();
        assert!(node.is_usable(now_ms()));
    }

    #[test]
    fn the_agent_s_own_drain_to_stop_still_ends_with_the_node_gone() {
        let (c, node) = joined(&state(AdminMode::Maintenance, 0));
        node.leave_once_drained();
        c.maintain_once(now_ms());
        assert!(
            c.find("n").is_none(),
            "drained and gone, so the agent can stop"
        );
    }
}
