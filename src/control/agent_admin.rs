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
            actor: clean(&state.actor).into(),
            reason: clean(&state.reason).into(),
        });
    }
    Ok(())
}

/// The mode of `state`; an unknown one (from a newer agent) is taken as maintenance, the safe
/// side: the node takes no traffic until an operator resumes it.
fn mode(state: &WireState) -> AdminMode {
    AdminMode::try_from(state.mode).unwrap_or(AdminMode::Maintenance)
}
