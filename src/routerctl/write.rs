//! The write commands: drain (optionally waiting until drained), resume, weight, eject, remove
//! and reload. Each is sent to every router; the report has one line per router, `ok` on stdout,
//! errors on stderr, and the exit code of the worst outcome.

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;
use tonic::Status;

use super::client::{Client, Routers};
use super::error::{partial, unreachable_routers, worst, CtlError};
use super::read::list_nodes;
use super::table::short_duration;
use super::{print, print_json, resolve};
use crate::api::{
    EjectRequest, NodeInfo, NodeRequest, ReloadRequest, ReloadResponse, SetWeightRequest,
};

/// How often `drain --wait` asks.
const WAIT_POLL: Duration = Duration::from_millis(100);

/// What to do to a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Stop new requests; in-flight ones finish.
    Drain,
    /// Out of rotation at once, until resumed.
    Maintenance,
    /// Back into rotation.
    Resume,
    /// Set (`Some`) or clear (`None`) the weight override.
    Weight(Option<u32>),
    /// Eject, for this long or the pool's base time.
    Eject(Option<Duration>),
    /// Remove now.
    Remove,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Self::Drain => "drain",
            Self::Maintenance => "maintenance",
            Self::Resume => "resume",
            Self::Weight(_) => "weight",
            Self::Eject(_) => "eject",
            Self::Remove => "remove",
        }
    }

    async fn call(self, mut c: Client, id: String, reason: String) -> Result<NodeInfo, Status> {
        let node = NodeRequest {
            id: id.clone(),
            reason: reason.clone(),
        };
        let info = match self {
            Self::Drain => c.drain_node(node).await?.into_inner(),
            Self::Maintenance => c.maintain_node(node).await?.into_inner(),
            Self::Resume => c.resume_node(node).await?.into_inner(),
            Self::Weight(w) => {
                let weight = w.unwrap_or(0);
                c.set_weight(SetWeightRequest { id, weight, reason })
                    .await?
                    .into_inner()
            }
            Self::Eject(time) => {
                let duration_ms = time.map_or(0, |t| t.as_millis() as u64);
                c.eject_node(EjectRequest {
                    id,
                    duration_ms,
                    reason,
                })
                .await?
                .into_inner()
            }
            Self::Remove => c
                .remove_node(node)
                .await?
                .into_inner()
                .node
                .unwrap_or_default(),
        };
        Ok(info)
    }

    /// What happened, for the `ok` line.
    fn describe(self, n: &NodeInfo) -> String {
        match self {
            Self::Drain | Self::Maintenance | Self::Resume => format!("{} {}", n.id, n.state),
            Self::Weight(Some(_)) => format!("{} weight {} (override)", n.id, n.weight),
            Self::Weight(None) => format!("{} weight {} (override cleared)", n.id, n.weight),
            Self::Eject(_) => format!(
                "{} ejected for {}",
                n.id,
                short_duration(Duration::from_millis(n.ejected_for_ms))
            ),
            Self::Remove => format!("{} removed", n.id),
        }
    }
}

/// One router's outcome, as `--json` prints it.
#[derive(Debug, Serialize)]
struct Outcome {
    router: String,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<NodeInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pools: Option<u32>,
}

/// Applies `action` to the node `query` names, on every router, saying `reason`.
pub async fn act(
    routers: &Routers,
    query: &str,
    action: Action,
    reason: &str,
    json: bool,
) -> Result<(), CtlError> {
    let id = resolve_id(routers, query).await?;
    let answers = routers
        .all(action.name(), |c| {
            action.call(c, id.clone(), reason.to_owned())
        })
        .await;
    let outcomes = answers
        .into_iter()
        .map(|a| a.map(|n| (action.describe(&n), Outcome::node(n))))
        .collect();
    report(routers, outcomes, json)
}

/// `drain --wait`: drains, then waits until every router that accepted the drain has nothing in
/// flight on the node (drained, in maintenance, or gone), or `timeout` passes.
pub async fn drain_and_wait(
    routers: &Routers,
    query: &str,
    timeout: Duration,
    reason: &str,
    json: bool,
) -> Result<(), CtlError> {
    let id = resolve_id(routers, query).await?;
    let answers = routers
        .all("drain", |c| {
            Action::Drain.call(c, id.clone(), reason.to_owned())
        })
        .await;
    let pending: Vec<bool> = answers.iter().map(Result::is_ok).collect();
    let outcomes = answers
        .into_iter()
        .map(|a| a.map(|n| (Action::Drain.describe(&n), Outcome::node(n))))
        .collect();
    let reported = report(routers, outcomes, json);
    match wait_drained(routers, &id, pending, timeout, json).await {
        Ok(()) => reported,
        // Both are told: what went wrong while waiting, and any router the drain failed on.
        Err(e) => worst(std::iter::once(e).chain(reported.err()).collect()),
    }
}

/// Polls the routers still `pending` until each has node `id` drained or gone.
async fn wait_drained(
    routers: &Routers,
    id: &str,
    mut pending: Vec<bool>,
    timeout: Duration,
    json: bool,
) -> Result<(), CtlError> {
    let deadline = crate::clock::deadline(timeout);
    let mut last: Vec<Option<NodeInfo>> = vec![None; pending.len()];
    loop {
        let answers = routers
            .all("drain --wait", |mut c| {
                let id = id.to_owned();
                async move {
                    c.get_node(NodeRequest {
                        id,
                        reason: String::new(),
                    })
                    .await
                    .map(|r| r.into_inner())
                }
            })
            .await;
        for (i, a) in answers.into_iter().enumerate() {
            let url = &routers.list[i].url;
            match a {
                _ if !pending[i] => {}
                Ok(n) if n.state == "maintenance" => {
                    let what = format!("{id} drained, in maintenance until resumed");
                    finished(&mut pending[i], url, &what, json)?
                }
                Ok(n) if n.state != "drained" => last[i] = Some(n),
                Ok(_) => finished(&mut pending[i], url, &format!("{id} drained"), json)?,
                Err(CtlError::Refused {
                    code: tonic::Code::NotFound,
                    ..
                }) => finished(
                    &mut pending[i],
                    url,
                    &format!("{id} drained and left"),
                    json,
                )?,
                Err(e) => return Err(e),
            }
        }
        if !pending.contains(&true) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(still_draining(routers, id, &pending, &last, timeout));
        }
        tokio::time::sleep(WAIT_POLL).await;
    }
}

fn finished(pending: &mut bool, url: &str, what: &str, json: bool) -> Result<(), CtlError> {
    *pending = false;
    if json {
        Ok(())
    } else {
        print(&format!("{url}  ok  {what}\n"))
    }
}

fn still_draining(
    routers: &Routers,
    id: &str,
    pending: &[bool],
    last: &[Option<NodeInfo>],
    timeout: Duration,
) -> CtlError {
    let on: Vec<String> = (0..pending.len())
        .filter(|&i| pending[i])
        .map(|i| {
            let in_flight = last[i].as_ref().map_or(0, |n| n.in_flight);
            format!("{} ({in_flight} in flight)", routers.list[i].url)
        })
        .collect();
    CtlError::Failed(format!(
        "{id} is still draining after {} on {} — wait longer with --timeout, or look at what it is serving",
        short_duration(timeout),
        on.join(", ")
    ))
}

/// `routerctl reload`, on every router.
pub async fn reload(routers: &Routers, json: bool) -> Result<(), CtlError> {
    let answers = routers
        .all("reload", |mut c| async move {
            Ok(c.reload(ReloadRequest {}).await?.into_inner())
        })
        .await;
    let outcomes = answers
        .into_iter()
        .map(|a| {
            a.map(|ReloadResponse { pools }| {
                (format!("reloaded: {pools} pool(s)"), Outcome::pools(pools))
            })
        })
        .collect();
    report(routers, outcomes, json)
}

impl Outcome {
    /// A node action that worked (the router is filled in by [`report`]).
    fn node(n: NodeInfo) -> Self {
        Self {
            router: String::new(),
            ok: true,
            error: None,
            node: Some(n),
            pools: None,
        }
    }

    /// A reload that worked.
    fn pools(pools: u32) -> Self {
        Self {
            node: None,
            pools: Some(pools),
            ..Self::node(NodeInfo::default())
        }
    }
}

/// The node id `query` names among the nodes of every router that answers.
async fn resolve_id(routers: &Routers, query: &str) -> Result<String, CtlError> {
    let (ok, errors) = list_nodes(routers, None).await;
    if ok.is_empty() {
        worst(errors)?;
    }
    // Routers that did not answer are reported when the action itself fails on them.
    resolve::resolve(
        query,
        ok.iter().flat_map(|(_, l)| l.iter().map(|n| n.id.as_str())),
    )
}

/// Prints one line per router (ok on stdout; errors on stderr, the worst one returned), or all
/// outcomes as one JSON object.
fn report(
    routers: &Routers,
    outcomes: Vec<Result<(String, Outcome), CtlError>>,
    json: bool,
) -> Result<(), CtlError> {
    let urls = routers.urls();
    let width = urls.iter().map(String::len).max().unwrap_or(0);
    let mut errors = Vec::new();
    let mut results = Vec::new();
    let mut lines = String::new();
    for (url, o) in urls.into_iter().zip(outcomes) {
        match o {
            Ok((what, mut outcome)) => {
                lines.push_str(&format!("{url:<width$}  ok  {what}\n"));
                outcome.router = url;
                results.push(outcome);
            }
            Err(e) => {
                results.push(Outcome {
                    router: url,
                    ok: false,
                    error: Some(e.to_string()),
                    node: None,
                    pools: None,
                });
                errors.push(e);
            }
        }
    }
    let applied = results.iter().any(|r| r.ok);
    if json {
        #[derive(Serialize)]
        struct Out {
            results: Vec<Outcome>,
            routers_unreachable: Vec<String>,
        }
        let routers_unreachable = unreachable_routers(&errors);
        print_json(&Out {
            results,
            routers_unreachable,
        })?;
    } else {
        print(&lines)?;
    }
    partial(applied, routers.list.len(), errors)
}
