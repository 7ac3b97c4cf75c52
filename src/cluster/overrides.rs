//! What operators set on nodes (a drain, a weight, a timed ejection), kept in `state_file` so
//! it outlives a restart, as HAProxy's `server-state-file`: written whole and atomically (a temp
//! file renamed over it) after each change, read at start, and applied to each node as it joins
//! (static nodes at start, registered and subscribed ones when they come).
//! A resume, or the node's removal by an operator, ends its entry.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{Cluster, EjectCause, Pool};
use crate::clock::now_ms;
use crate::node::{AdminState, Node};

/// One node's operator overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Override {
    /// The pool the node is in.
    pool: String,
    /// The node's id.
    node: String,
    /// Drained by an operator: no new requests until resumed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    drained: bool,
    /// The operator's weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    weight: Option<u32>,
    /// Ejected by an operator until this Unix time, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ejected_until_unix_ms: Option<u64>,
}

impl Override {
    fn is_empty(&self) -> bool {
        !self.drained && self.weight.is_none() && self.ejected_until_unix_ms.is_none()
    }
}

/// The file as written.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    /// Format version: 1.
    version: u32,
    nodes: Vec<Override>,
}

/// A change an operator made, for [`Overrides::record`].
#[derive(Debug, Clone, Copy)]
pub enum OperatorChange {
    /// Drained.
    Drained,
    /// Weight set (`Some`) or cleared.
    Weight(Option<u32>),
    /// Ejected for this long.
    Ejected(Duration),
    /// Resumed or removed: every override ends.
    Cleared,
}

/// Why the state file could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the state file {path}: {cause} — fix or remove it (it holds operators' drains, weights and ejections)")]
pub struct StateFileError {
    path: String,
    cause: String,
}

/// The operator overrides in force, by pool and node id, and where they are kept.
#[derive(Debug, Default)]
pub struct Overrides {
    path: Option<PathBuf>,
    by_node: Mutex<BTreeMap<(String, String), Override>>,
}

impl Overrides {
    /// Overrides kept in `path` (none kept when `None`), loaded from it if it exists.
    pub fn load(path: Option<&Path>) -> Result<Self, StateFileError> {
        let mut by_node = BTreeMap::new();
        if let Some(p) = path {
            let error = |cause: String| StateFileError {
                path: p.display().to_string(),
                cause,
            };
            match std::fs::read(p) {
                Ok(bytes) => {
                    let file: StateFile =
                        serde_json::from_slice(&bytes).map_err(|e| error(e.to_string()))?;
                    if file.version != 1 {
                        return Err(error(format!("version {} is not 1", file.version)));
                    }
                    for o in file.nodes {
                        by_node.insert((o.pool.clone(), o.node.clone()), o);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(error(e.to_string())),
            }
        }
        Ok(Self {
            path: path.map(Path::to_path_buf),
            by_node: Mutex::new(by_node),
        })
    }

    /// Records `change` to `node` of `pool` and writes the file.
    fn record(&self, pool: &str, node: &str, change: OperatorChange) {
        let mut map = self.by_node.lock().unwrap_or_else(|e| e.into_inner());
        let key = (pool.to_owned(), node.to_owned());
        let entry = map.entry(key.clone()).or_insert_with(|| Override {
            pool: pool.to_owned(),
            node: node.to_owned(),
            ..Override::default()
        });
        match change {
            OperatorChange::Drained => entry.drained = true,
            OperatorChange::Weight(w) => entry.weight = w,
            OperatorChange::Ejected(t) => entry.ejected_until_unix_ms = Some(unix_ms() + ms(t)),
            OperatorChange::Cleared => *entry = Override::default(),
        }
        if entry.is_empty() {
            map.remove(&key);
        }
        let Some(path) = &self.path else {
            return;
        };
        let file = StateFile {
            version: 1,
            nodes: map.values().cloned().collect(),
        };
        if let Err(e) = write_atomically(path, &file) {
            tracing::warn!(path = %path.display(), error = %e, "operator state not saved: this change will not survive a restart; check the state_file directory's permissions");
        }
    }

    /// Applies what is recorded for `node` of `pool` (which just joined).
    fn apply(&self, pool: &Pool, node: &Node) {
        let map = self.by_node.lock().unwrap_or_else(|e| e.into_inner());
        let Some(o) = map.get(&(pool.name.to_string(), node.id().to_string())) else {
            return;
        };
        if o.drained {
            node.set_admin_state(AdminState::Draining);
        }
        if let Some(w) = o.weight {
            node.set_weight_override(Some(w));
            pool.refresh();
        }
        if let Some(until) = o.ejected_until_unix_ms {
            let left = until.saturating_sub(unix_ms());
            if left > 0 {
                pool.eject(
                    node,
                    now_ms(),
                    Duration::from_millis(left),
                    EjectCause::Operator,
                );
            }
        }
        tracing::info!(pool = %pool.name, node = %node.id(), drained = o.drained, weight = ?o.weight, "operator overrides restored from the state file");
    }
}

impl Cluster {
    /// Records an operator's change to `node` of `pool`, to outlive a restart.
    pub fn record_override(&self, pool: &Pool, node: &Node, change: OperatorChange) {
        self.overrides.load().record(&pool.name, node.id(), change);
    }

    /// Keeps operator overrides in `overrides` and applies them to the nodes already in.
    pub fn restore_overrides(&self, overrides: Overrides) {
        for pool in self.pools() {
            for node in pool.snapshot().nodes.iter() {
                overrides.apply(&pool, node);
            }
        }
        self.overrides.store(Arc::new(overrides));
    }

    /// Applies the recorded overrides of a node that just joined `pool`.
    pub(super) fn apply_overrides(&self, pool: &Pool, node: &Node) {
        self.overrides.load().apply(pool, node);
    }
}

fn write_atomically(path: &Path, file: &StateFile) -> io::Result<()> {
    let text = serde_json::to_vec_pretty(file).map_err(io::Error::other)?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path)
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, ms)
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
