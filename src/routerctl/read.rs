//! The read commands: `pools`, `nodes`, `node` and `status`, as tables or JSON, merged over every
//! router that answered; routers that did not are reported on stderr and set the exit code.

use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;

use super::client::Routers;
use super::error::{partial, unreachable_routers, worst, CtlError};
use super::merge::{self, FromRouter, Known};
use super::table::{age_ms, latency, left, rate, right, short_duration, Col, Table};
use super::{print, print_json, resolve};
use crate::api::{
    ListNodesRequest, ListPoolsRequest, NodeInfo, PoolInfo, StatusRequest, StatusResponse,
};

/// Each router's nodes (of `pool`, or all), the answers that came, and the errors of the others.
pub async fn list_nodes(
    routers: &Routers,
    pool: Option<&str>,
) -> (Vec<(String, Vec<NodeInfo>)>, Vec<CtlError>) {
    let pool = pool.unwrap_or_default().to_owned();
    let answers = routers
        .all("listing nodes", |mut c| {
            let pool = pool.clone();
            async move {
                let r = c.list_nodes(ListNodesRequest { pool }).await?;
                Ok(r.into_inner().nodes)
            }
        })
        .await;
    split(routers, answers)
}

/// Splits per-router answers into (URL, answer) pairs and errors.
pub fn split<T>(
    routers: &Routers,
    answers: Vec<Result<T, CtlError>>,
) -> (Vec<(String, T)>, Vec<CtlError>) {
    let mut ok = Vec::new();
    let mut errors = Vec::new();
    for (url, a) in routers.urls().into_iter().zip(answers) {
        match a {
            Ok(t) => ok.push((url, t)),
            Err(e) => errors.push(e),
        }
    }
    (ok, errors)
}

/// `routerctl pools`.
pub async fn pools(routers: &Routers, json: bool) -> Result<(), CtlError> {
    let answers = routers
        .all("listing pools", |mut c| async move {
            Ok(c.list_pools(ListPoolsRequest {}).await?.into_inner().pools)
        })
        .await;
    let (ok, errors) = split(routers, answers);
    if !ok.is_empty() {
        let pools = merge::pools(&ok);
        if json {
            #[derive(Serialize)]
            struct Out {
                pools: Vec<Known<PoolInfo>>,
                routers_unreachable: Vec<String>,
            }
            let routers_unreachable = unreachable_routers(&errors);
            print_json(&Out {
                pools,
                routers_unreachable,
            })?;
        } else {
            print(&pools_table(&pools, routers.list.len() > 1))?;
        }
    }
    partial(!ok.is_empty(), routers.list.len(), errors)
}

fn pools_table(pools: &[Known<PoolInfo>], show_routers: bool) -> String {
    let mut cols = vec![
        left("POOL"),
        left("ALGORITHM"),
        right("NODES"),
        right("ACTIVE"),
        right("DRAINING"),
        right("EJECTED"),
        right("IN-FLIGHT"),
        right("REQ/S"),
        right("REQUESTS"),
        right("ERRORS"),
        right("5XX"),
    ];
    with_routers(&mut cols, show_routers);
    let mut t = Table::new(&cols);
    for p in pools {
        let i = &p.info;
        let mut row = vec![
            i.name.clone(),
            i.algorithm.clone(),
            i.nodes.to_string(),
            i.nodes_active.to_string(),
            i.nodes_draining.to_string(),
            i.nodes_ejected.to_string(),
            i.in_flight.to_string(),
            rate(i.requests_per_second),
            i.requests_total.to_string(),
            i.errors_total.to_string(),
            i.responses_5xx.to_string(),
        ];
        push_routers(&mut row, &p.routers, show_routers);
        t.row(row);
    }
    t.render()
}

/// `routerctl nodes`.
pub async fn nodes(routers: &Routers, pool: Option<&str>, json: bool) -> Result<(), CtlError> {
    let (ok, errors) = list_nodes(routers, pool).await;
    if !ok.is_empty() {
        let nodes = merge::nodes(&ok);
        if json {
            #[derive(Serialize)]
            struct Out {
                nodes: Vec<Known<NodeInfo>>,
                routers_unreachable: Vec<String>,
            }
            let routers_unreachable = unreachable_routers(&errors);
            print_json(&Out {
                nodes,
                routers_unreachable,
            })?;
        } else {
            print(&nodes_table(&nodes, routers.list.len() > 1))?;
        }
    }
    partial(!ok.is_empty(), routers.list.len(), errors)
}

fn nodes_table(nodes: &[Known<NodeInfo>], show_routers: bool) -> String {
    let mut cols = vec![
        left("POOL"),
        left("NODE"),
        left("ADDRESS"),
        left("STATE"),
        left("SOURCE"),
        right("WEIGHT"),
        right("IN-FLIGHT"),
        right("REQUESTS"),
        right("ERRORS"),
        right("5XX"),
        right("LATENCY"),
        right("BUSY/CAP"),
        right("QUEUE"),
        right("REPORT"),
    ];
    with_routers(&mut cols, show_routers);
    let mut t = Table::new(&cols);
    for n in nodes {
        let i = &n.info;
        let mut row = vec![
            i.pool.clone(),
            i.id.clone(),
            i.address.clone(),
            i.state.clone(),
            i.source.clone(),
            weight(i),
            i.in_flight.to_string(),
            i.requests_total.to_string(),
            i.errors_total.to_string(),
            i.responses_5xx.to_string(),
            latency(i.latency_ms),
            load(i),
            i.queue.to_string(),
            age_ms(i.report_age_ms),
        ];
        push_routers(&mut row, &n.routers, show_routers);
        t.row(row);
    }
    t.render()
}

/// The weight in force, starred when it is an operator's override.
pub fn weight(n: &NodeInfo) -> String {
    if n.weight_override > 0 {
        format!("{}*", n.weight)
    } else {
        n.weight.to_string()
    }
}

/// Busy workers over capacity (`-` where unknown).
pub fn load(n: &NodeInfo) -> String {
    if n.capacity == 0 {
        "-".to_owned()
    } else {
        format!("{}/{}", n.busy, n.capacity)
    }
}

/// Adds the ROUTERS column when several routers were asked.
pub fn with_routers(cols: &mut Vec<Col>, show: bool) {
    if show {
        cols.push(left("ROUTERS"));
    }
}

/// Adds the ROUTERS cell: the routers' URLs without scheme, comma-separated.
pub fn push_routers(row: &mut Vec<String>, routers: &[String], show: bool) {
    if show {
        let short: Vec<&str> = routers.iter().map(|r| without_scheme(r)).collect();
        row.push(short.join(","));
    }
}

fn without_scheme(url: &str) -> &str {
    url.split_once("://").map_or(url, |(_, rest)| rest)
}

/// `routerctl node ID`.
pub async fn node(routers: &Routers, query: &str, json: bool) -> Result<(), CtlError> {
    let (ok, errors) = list_nodes(routers, None).await;
    if ok.is_empty() {
        return worst(errors);
    }
    let id = resolve::resolve(
        query,
        ok.iter().flat_map(|(_, l)| l.iter().map(|n| n.id.as_str())),
    )?;
    let nodes = merge::nodes(&ok);
    let n = nodes
        .iter()
        .find(|n| n.info.id == id)
        .expect("a resolved id is listed");
    if json {
        #[derive(Serialize)]
        struct Out<'a> {
            #[serde(flatten)]
            node: &'a Known<NodeInfo>,
            routers_unreachable: Vec<String>,
        }
        let routers_unreachable = unreachable_routers(&errors);
        print_json(&Out {
            node: n,
            routers_unreachable,
        })?;
    } else {
        print(&node_detail(n))?;
    }
    partial(true, routers.list.len(), errors)
}

fn node_detail(n: &Known<NodeInfo>) -> String {
    let i = &n.info;
    let mut labels: Vec<String> = i.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    labels.sort();
    let weight = match i.weight_override {
        0 => format!("{} (reported {})", i.weight, i.weight_reported),
        o => format!(
            "{} (override {o}, reported {})",
            i.weight, i.weight_reported
        ),
    };
    let ejected = match i.ejected_for_ms {
        0 => "no".to_owned(),
        ms => format!("for {}", short_duration(Duration::from_millis(ms))),
    };
    let fields = [
        ("id", i.id.clone()),
        ("pool", i.pool.clone()),
        ("address", i.address.clone()),
        ("state", i.state.clone()),
        ("source", i.source.clone()),
        ("weight", weight),
        ("busy/capacity", load(i)),
        ("queue", i.queue.to_string()),
        ("in flight", i.in_flight.to_string()),
        ("requests", i.requests_total.to_string()),
        ("errors", i.errors_total.to_string()),
        ("5xx answers", i.responses_5xx.to_string()),
        ("latency", latency(i.latency_ms)),
        ("last report", age_ms(i.report_age_ms)),
        ("ejected", ejected),
        (
            "joined",
            format!("{} ago", short_duration(Duration::from_secs(i.age_seconds))),
        ),
        ("version", i.version.clone()),
        ("labels", labels.join(" ")),
        ("routers", n.routers.join(", ")),
    ];
    key_values(&fields)
}

/// `key: value` lines with the values aligned.
fn key_values(fields: &[(&str, String)]) -> String {
    let w = fields.iter().map(|(k, _)| k.len() + 1).max().unwrap_or(0);
    fields
        .iter()
        .map(|(k, v)| {
            let v = if v.is_empty() { "-" } else { v };
            format!("{:<w$}  {v}\n", format!("{k}:"))
        })
        .collect()
}

/// `routerctl status`: one row per router (they are not merged).
pub async fn status(routers: &Routers, json: bool) -> Result<(), CtlError> {
    let answers = routers
        .all("status", |mut c| async move {
            Ok(c.status(StatusRequest {}).await?.into_inner())
        })
        .await;
    let (ok, errors) = split(routers, answers);
    let answered = !ok.is_empty();
    if answered {
        let rows: Vec<FromRouter<StatusResponse>> = ok
            .into_iter()
            .map(|(router, info)| FromRouter { router, info })
            .collect();
        if json {
            #[derive(Serialize)]
            struct Out {
                routers: Vec<FromRouter<StatusResponse>>,
                routers_unreachable: Vec<String>,
            }
            let routers_unreachable = unreachable_routers(&errors);
            print_json(&Out {
                routers: rows,
                routers_unreachable,
            })?;
        } else {
            print(&status_table(&rows))?;
        }
    }
    partial(answered, routers.list.len(), errors)
}

fn status_table(rows: &[FromRouter<StatusResponse>]) -> String {
    let mut t = Table::new(&[
        left("ROUTER"),
        left("ID"),
        left("VERSION"),
        right("UPTIME"),
        left("LISTENERS"),
        left("CONFIG"),
        left("LOADED"),
    ]);
    for r in rows {
        let s = &r.info;
        let loaded = UNIX_EPOCH + Duration::from_secs(s.config_loaded_unix);
        t.row(vec![
            r.router.clone(),
            s.router_id.clone(),
            s.version.clone(),
            short_duration(Duration::from_secs(s.uptime_seconds)),
            s.listeners.join(","),
            if s.config_file.is_empty() {
                "(defaults)".to_owned()
            } else {
                s.config_file.clone()
            },
            humantime::format_rfc3339_seconds(loaded).to_string(),
        ]);
    }
    t.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_tables_star_overrides_and_list_routers_when_several() {
        let n = Known {
            info: NodeInfo {
                id: "web-1".into(),
                pool: "default".into(),
                state: "active".into(),
                weight: 7,
                weight_override: 7,
                capacity: 4,
                busy: 1,
                report_age_ms: -1,
                ..Default::default()
            },
            routers: vec!["http://a:1".into(), "http://b:2".into()],
        };
        let text = nodes_table(std::slice::from_ref(&n), true);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("POOL") && lines[0].ends_with("ROUTERS"));
        assert!(lines[1].contains(" 7* ") && lines[1].contains("1/4"));
        assert!(lines[1].ends_with("a:1,b:2"), "{}", lines[1]);
        assert!(!nodes_table(&[n], false).contains("ROUTERS"));
    }
}
