//! The node's operator state (in rotation, drained or in maintenance; a weight override), which
//! the agent keeps for every router: an operator's change on any router reaches the agent over
//! that router's session, is written to the state file (whole, atomically: a temp file renamed
//! over it) and then sent to every router; each (re)announce carries it, so a router that
//! restarts or starts later agrees. It holds until an operator resumes the node, across restarts
//! of the agent, of uWSGI and of the routers.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::api::{AdminMode, AdminState};

/// Why the state file could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the state file {path}: {cause} — fix or remove it (it holds operators' drains, maintenance and weight of this node)")]
pub struct StateFileError {
    path: String,
    cause: String,
}

/// The file as written.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    /// Format version: 1.
    version: u32,
    /// `active`, `drain` or `maintenance`.
    mode: String,
    /// The operator's weight override; 0 = none.
    #[serde(default)]
    weight: u32,
    /// Who made the last change, and why.
    #[serde(default)]
    actor: String,
    #[serde(default)]
    reason: String,
}

/// The node's operator state, where it is kept, and the sessions' view of it.
#[derive(Debug)]
pub(crate) struct AdminStore {
    path: Option<PathBuf>,
    tx: watch::Sender<AdminState>,
}

impl AdminStore {
    /// The state kept in `path` (in memory only when `None`), loaded from it if it exists.
    pub(crate) fn load(path: Option<&Path>) -> Result<Self, StateFileError> {
        let state = match path {
            Some(p) => read(p).map_err(|cause| StateFileError {
                path: p.display().to_string(),
                cause,
            })?,
            None => AdminState::default(),
        };
        if state != AdminState::default() {
            tracing::info!(
                mode = mode_name(&state),
                weight = state.weight,
                actor = state.actor,
                reason = state.reason,
                "operator state restored from the state file"
            );
        }
        Ok(Self {
            path: path.map(Path::to_path_buf),
            tx: watch::channel(state).0,
        })
    }

    /// The state now, with a receiver that sees each later change.
    pub(crate) fn subscribe(&self) -> watch::Receiver<AdminState> {
        self.tx.subscribe()
    }

    /// An operator's change, passed on by `router`: kept (written to the file first), then
    /// given to every session. The same mode and weight again changes nothing.
    pub(crate) fn set(&self, state: AdminState, router: &str) {
        let same = |now: &AdminState| now.mode == state.mode && now.weight == state.weight;
        if same(&self.tx.borrow()) {
            return;
        }
        tracing::info!(%router, mode = mode_name(&state), weight = state.weight, actor = state.actor, reason = state.reason, "an operator changed the node's state: applying it on every router");
        if let Some(path) = &self.path {
            if let Err(e) = write_atomically(path, &state) {
                tracing::warn!(path = %path.display(), error = %e, "node state not saved: this change will not survive an agent restart; check the state_file directory's permissions");
            }
        }
        self.tx.send_replace(state);
    }
}

fn mode_name(state: &AdminState) -> &'static str {
    match AdminMode::try_from(state.mode) {
        Ok(AdminMode::Active) => "active",
        Ok(AdminMode::Drain) => "drain",
        Ok(AdminMode::Maintenance) | Err(_) => "maintenance",
    }
}

/// The state in `path`; the default (in rotation, no override) when there is no file.
fn read(path: &Path) -> Result<AdminState, String> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(AdminState::default()),
        Err(e) => return Err(e.to_string()),
    };
    let file: StateFile = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    if file.version != 1 {
        return Err(format!("version {} is not 1", file.version));
    }
    let mode = match file.mode.as_str() {
        "active" => AdminMode::Active,
        "drain" => AdminMode::Drain,
        "maintenance" => AdminMode::Maintenance,
        other => {
            return Err(format!(
                "mode {other:?} is not active, drain or maintenance"
            ))
        }
    };
    if file.weight > 1000 {
        return Err(format!("weight {} is not 0 to 1000", file.weight));
    }
    Ok(AdminState {
        mode: mode as i32,
        weight: file.weight,
        actor: file.actor,
        reason: file.reason,
    })
}

fn write_atomically(path: &Path, state: &AdminState) -> io::Result<()> {
    let file = StateFile {
        version: 1,
        mode: mode_name(state).to_owned(),
        weight: state.weight,
        actor: state.actor.clone(),
        reason: state.reason.clone(),
    };
    let text = serde_json::to_vec_pretty(&file).map_err(io::Error::other)?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maintenance(weight: u32) -> AdminState {
        AdminState {
            mode: AdminMode::Maintenance as i32,
            weight,
            actor: "token ops#1".into(),
            reason: "disk swap".into(),
        }
    }

    #[test]
    fn a_change_is_kept_in_the_file_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.state.json");
        let store = AdminStore::load(Some(&path)).unwrap();
        let mut rx = store.subscribe();
        assert_eq!(*rx.borrow_and_update(), AdminState::default());
        store.set(maintenance(7), "http://r1");
        assert!(rx.has_changed().unwrap());
        assert_eq!(*rx.borrow_and_update(), maintenance(7));
        // The same state from another router (the operator asked twice) is no change.
        store.set(maintenance(7), "http://r2");
        assert!(!rx.has_changed().unwrap());
        let again = AdminStore::load(Some(&path)).unwrap();
        assert_eq!(*again.subscribe().borrow(), maintenance(7));
    }

    #[test]
    fn a_broken_file_stops_the_start_with_advice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.state.json");
        for text in [
            "not json",
            r#"{"version": 2, "mode": "active"}"#,
            r#"{"version": 1, "mode": "asleep"}"#,
            r#"{"version": 1, "mode": "active", "weight": 5000}"#,
        ] {
            std::fs::write(&path, text).unwrap();
            let e = AdminStore::load(Some(&path)).unwrap_err().to_string();
            assert!(e.contains("fix or remove it"), "{text}: {e}");
        }
    }
}
