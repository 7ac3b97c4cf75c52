//! Several routers' views as one: a row per node id (or pool name) with its traffic summed, its
//! state per router when they disagree, and the routers that know it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::api::{NodeInfo, PoolInfo};

/// A node or pool merged over the routers that know it. In JSON, the API message's own fields
/// followed by `routers`.
#[derive(Debug, Clone, Serialize)]
pub struct Known<T> {
    /// The merged message.
    #[serde(flatten)]
    pub info: T,
    /// URLs of the routers that know it, in the order given.
    pub routers: Vec<String>,
}

/// A router's answer tagged with its URL (`status`, `watch` and action results in JSON).
#[derive(Debug, Clone, Serialize)]
pub struct FromRouter<T> {
    /// The router's URL.
    pub router: String,
    /// Its answer.
    #[serde(flatten)]
    pub info: T,
}

/// Merges each router's node list (URL, nodes) into one row per node id, sorted by pool and id.
/// Counters (`in_flight`, `requests_total`, `errors_total`) are summed; `state` lists each
/// router's state, comma-separated, when they differ; `latency_ms`, `ejected_for_ms` and
/// `age_seconds` take the largest value, `report_age_ms` the freshest; the rest comes from the
/// first router that knows the node.
pub fn nodes(per_router: &[(String, Vec<NodeInfo>)]) -> Vec<Known<NodeInfo>> {
    let mut by_id: BTreeMap<&str, Vec<(&str, &NodeInfo)>> = BTreeMap::new();
    for (url, list) in per_router {
        for n in list {
            by_id.entry(&n.id).or_default().push((url, n));
        }
    }
    let mut merged: Vec<Known<NodeInfo>> = by_id.into_values().map(|views| node(&views)).collect();
    merged.sort_by(|a, b| (&a.info.pool, &a.info.id).cmp(&(&b.info.pool, &b.info.id)));
    merged
}

fn node(views: &[(&str, &NodeInfo)]) -> Known<NodeInfo> {
    let mut info = views[0].1.clone();
    let rest = views[1..].iter().map(|(_, n)| *n);
    for n in rest {
        info.in_flight += n.in_flight;
        info.requests_total += n.requests_total;
        info.errors_total += n.errors_total;
        info.responses_5xx += n.responses_5xx;
        info.latency_ms = info.latency_ms.max(n.latency_ms);
        info.ejected_for_ms = info.ejected_for_ms.max(n.ejected_for_ms);
        info.age_seconds = info.age_seconds.max(n.age_seconds);
        info.report_age_ms = match (info.report_age_ms, n.report_age_ms) {
            (a, b) if a < 0 => b,
            (a, b) if b < 0 => a,
            (a, b) => a.min(b),
        };
    }
    info.state = states(views.iter().map(|(_, n)| n.state.as_str()));
    Known {
        info,
        routers: views.iter().map(|(url, _)| (*url).to_owned()).collect(),
    }
}

/// One state if all agree, else each router's, in router order: `active,draining`.
fn states<'a>(each: impl Iterator<Item = &'a str>) -> String {
    let each: Vec<&str> = each.collect();
    if each.iter().all(|s| *s == each[0]) {
        each[0].to_owned()
    } else {
        each.join(",")
    }
}

/// Merges each router's pool list into one row per pool name. Traffic (`requests_total`,
/// `errors_total`, `requests_per_second`, `in_flight`) is summed; node counts are the largest
/// any router reports, since routers mostly share their nodes.
pub fn pools(per_router: &[(String, Vec<PoolInfo>)]) -> Vec<Known<PoolInfo>> {
    let mut by_name: BTreeMap<&str, Known<PoolInfo>> = BTreeMap::new();
    for (url, list) in per_router {
        for p in list {
            let Some(m) = by_name.get_mut(p.name.as_str()) else {
                by_name.insert(
                    &p.name,
                    Known {
                        info: p.clone(),
                        routers: vec![url.clone()],
                    },
                );
                continue;
            };
            let i = &mut m.info;
            i.nodes = i.nodes.max(p.nodes);
            i.nodes_active = i.nodes_active.max(p.nodes_active);
            i.nodes_draining = i.nodes_draining.max(p.nodes_draining);
            i.nodes_ejected = i.nodes_ejected.max(p.nodes_ejected);
            i.requests_total += p.requests_total;
            i.errors_total += p.errors_total;
            i.responses_5xx += p.responses_5xx;
            i.requests_per_second += p.requests_per_second;
            i.in_flight += p.in_flight;
            m.routers.push(url.clone());
        }
    }
    by_name.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(id: &str, state: &str, requests: u64, report_age_ms: i64) -> NodeInfo {
        NodeInfo {
            id: id.into(),
            pool: "default".into(),
            state: state.into(),
            requests_total: requests,
            in_flight: 1,
            report_age_ms,
            ..Default::default()
        }
    }

    #[test]
    fn nodes_merge_by_id_with_counters_summed() {
        let a = (
            "http://a".to_owned(),
            vec![n("x", "active", 3, -1), n("y", "active", 1, 5)],
        );
        let b = ("http://b".to_owned(), vec![n("x", "active", 2, 40)]);
        let m = nodes(&[a, b]);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].info.id, "x");
        assert_eq!((m[0].info.requests_total, m[0].info.in_flight), (5, 2));
        assert_eq!(m[0].info.state, "active");
        assert_eq!(m[0].info.report_age_ms, 40);
        assert_eq!(m[0].routers, ["http://a", "http://b"]);
        assert_eq!(m[1].routers, ["http://a"]);
    }

    #[test]
    fn differing_states_are_shown_per_router() {
        let a = ("http://a".to_owned(), vec![n("x", "active", 0, -1)]);
        let b = ("http://b".to_owned(), vec![n("x", "draining", 0, -1)]);
        assert_eq!(nodes(&[a, b])[0].info.state, "active,draining");
    }

    #[test]
    fn json_has_the_proto_fields_and_routers() {
        let a = ("http://a".to_owned(), vec![n("x", "active", 3, -1)]);
        let v = serde_json::to_value(&nodes(&[a])[0]).unwrap();
        assert_eq!(v["id"], "x");
        assert_eq!(v["requests_total"], 3);
        assert_eq!(v["routers"][0], "http://a");
    }

    #[test]
    fn pools_sum_traffic_and_keep_the_largest_counts() {
        let p = |nodes, requests| PoolInfo {
            name: "default".into(),
            nodes,
            requests_total: requests,
            ..Default::default()
        };
        let m = pools(&[
            ("http://a".to_owned(), vec![p(2, 10)]),
            ("http://b".to_owned(), vec![p(3, 5)]),
        ]);
        assert_eq!(m.len(), 1);
        assert_eq!((m[0].info.nodes, m[0].info.requests_total), (3, 15));
        assert_eq!(m[0].routers.len(), 2);
    }
}
