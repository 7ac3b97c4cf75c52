//! `grafana/uwsgi-router.json` is an importable dashboard whose every query uses only metrics a
//! live routerd exports: a renamed or dropped metric fails here, not on an operator's screen.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering::SeqCst;

use serde_json::Value;
use support::programs::repo_path;
use support::promql::promql_metric_names;
use support::scrape::*;
use support::*;
use uwsgi_router::clock::now_ms;

fn dashboard() -> Value {
    let path = repo_path("grafana/uwsgi-router.json");
    let text = std::fs::read_to_string(&path).expect("grafana/uwsgi-router.json exists");
    serde_json::from_str(&text).expect("the dashboard is valid JSON")
}

/// Every panel, rows' nested panels included.
fn panels(dash: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    let mut stack: Vec<&Value> = dash["panels"].as_array().unwrap().iter().collect();
    while let Some(p) = stack.pop() {
        if let Some(nested) = p["panels"].as_array() {
            stack.extend(nested);
        }
        out.push(p);
    }
    out
}

/// Every PromQL expression: panel targets, and the series of `label_values(...)` variables.
fn queries(dash: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in panels(dash) {
        for t in p["targets"].as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or_default().to_owned();
            out.push((
                title,
                t["expr"].as_str().expect("a target has expr").to_owned(),
            ));
        }
    }
    for v in dash["templating"]["list"].as_array().unwrap() {
        let q = v["query"]["query"]
            .as_str()
            .or(v["query"].as_str())
            .unwrap();
        let inner = q
            .strip_prefix("label_values(")
            .and_then(|q| q.rsplit_once(','))
            .map(|(series, _label)| series.to_owned())
            .unwrap_or_else(|| panic!("variable query {q} is not label_values(series, label)"));
        out.push((format!("${}", v["name"].as_str().unwrap()), inner));
    }
    out
}

#[test]
fn the_dashboard_is_importable() {
    let dash = dashboard();
    let input = &dash["__inputs"][0];
    assert_eq!(input["name"], "DS_PROMETHEUS");
    assert_eq!(input["type"], "datasource");
    assert_eq!(input["pluginId"], "prometheus");
    assert!(dash["id"].is_null(), "an exported dashboard has no id");
    assert!(dash["schemaVersion"].as_u64().unwrap() >= 36);
    assert_eq!(dash["uid"], "uwsgi-router");
    let vars: BTreeSet<&str> = dash["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert!(vars.contains("pool") && vars.contains("node"), "{vars:?}");
    let mut ids = BTreeSet::new();
    for p in panels(&dash) {
        assert!(
            ids.insert(p["id"].as_u64().unwrap()),
            "panel id {} twice",
            p["id"]
        );
        assert!(p["gridPos"]["w"].as_u64().unwrap() <= 24);
        if p["type"] != "row" {
            assert_eq!(
                p["datasource"]["uid"], "${DS_PROMETHEUS}",
                "{} uses the imported data source",
                p["title"]
            );
            for t in p["targets"].as_array().unwrap() {
                assert_eq!(t["datasource"]["uid"], "${DS_PROMETHEUS}");
            }
        }
    }
    let titles: Vec<String> = panels(&dash)
        .iter()
        .map(|p| p["title"].as_str().unwrap().to_lowercase())
        .collect();
    for wanted in [
        "requests by pool",
        "error ratio",
        "p50, p95, p99",
        "nodes by state",
        "load vs capacity",
        "in flight",
        "retries",
        "ejections",
        "registrations",
    ] {
        assert!(
            titles.iter().any(|t| t.contains(wanted)),
            "no panel about {wanted}: {titles:?}"
        );
    }
}

#[tokio::test]
async fn every_dashboard_query_uses_metrics_routerd_exports() {
    let node = FakeNode::start("a", Behaviour::Echo).await;
    let toml = format!(
        "{}[pools.empty]\n[[routes]]\nhost = \"empty.test\"\npool = \"empty\"\n",
        pool_toml("round-robin", &[&node])
    );
    let router = start_router(&toml).await;
    let addr = router.local_addrs()[0].clone();
    // Traffic of every kind, a load report, and what the control plane records.
    assert_eq!(send(&addr, &get("h", "/"), b"").await.status, 200);
    assert_eq!(send(&addr, &get("empty.test", "/"), b"").await.status, 503);
    send_raw(&addr, &[0, 0xff, 0xff, 0]).await;
    let n = router
        .cluster()
        .pool("default")
        .unwrap()
        .node(&node.addr.to_string())
        .unwrap();
    n.load.capacity.store(4, SeqCst);
    n.load.at_ms.store(now_ms().max(1), SeqCst);
    uwsgi_router::metrics::node_registered(&"default".into(), "registered");
    uwsgi_router::metrics::registration_rejected("unauthenticated");

    let exported = scrape(&router).await;
    let names = exported.names();
    let mut missing = BTreeMap::new();
    let queries = queries(&dashboard());
    assert!(queries.len() >= 20, "{} queries", queries.len());
    for (panel, expr) in &queries {
        let used = promql_metric_names(expr);
        assert!(!used.is_empty(), "{panel}: {expr} selects no metric");
        for name in used {
            if !names.contains(name.as_str()) {
                missing.insert(name, panel.clone());
            }
        }
    }
    assert!(
        missing.is_empty(),
        "dashboard queries use metrics routerd does not export (metric -> panel): {missing:#?}"
    );
}

#[test]
fn promql_names_skip_functions_labels_and_variables() {
    let q = "histogram_quantile(0.99, sum by (le, pool) (rate(uwsgi_router_request_duration_seconds_bucket{pool=~\"$pool\", node!=\"a,b}\"}[$__rate_interval]))) / on(pool) group_left up offset 5m > bool 0.5";
    let names: Vec<_> = promql_metric_names(q).into_iter().collect();
    assert_eq!(
        names,
        ["up", "uwsgi_router_request_duration_seconds_bucket"]
    );
    assert_eq!(
        promql_metric_names("sum(rate(a_total[5m])) by (pool) / ignoring(x) b"),
        ["a_total".to_owned(), "b".to_owned()].into()
    );
}
