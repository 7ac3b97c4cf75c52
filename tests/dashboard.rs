//! The Grafana dashboards in `grafana/` import cleanly, and every metric their queries use is one
//! a running routerd emits: the real binary, after traffic of every kind, a registered node
//! reporting its load, a refused registration and a reload, scraped over HTTP. A renamed or
//! dropped metric fails here, not on an operator's screen.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;
use support::binary::Routerd;
use support::ports::free_addr;
use support::programs::repo_path;
use support::promql::promql_metric_names;
use support::registry_client::{announce, idle, NodeSession};
use support::scrape::scrape_at;
use support::*;

/// The registry token routerd is given.
const TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// Every dashboard in `grafana/`.
fn dashboard_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_path("grafana"))
        .expect("grafana/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no dashboard in grafana/");
    files
}

/// The dashboard at `path`, parsed.
fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("the dashboard is readable");
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()))
}

/// The router's own dashboard.
fn dashboard() -> Value {
    load(&repo_path("grafana/uwsgi-router.json"))
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
    let list = dash["templating"]["list"].as_array().unwrap();
    for v in list.iter().filter(|v| v["type"] != "datasource") {
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

/// The data source every query names: the dashboard's own `datasource` variable, so that the file
/// works as it is, imported or provisioned from a directory.
const DATASOURCE: &str = "${datasource}";

#[test]
fn the_dashboard_is_importable() {
    let dash = dashboard();
    assert!(
        dash.get("__inputs").is_none(),
        "no import-time input: file provisioning does not fill them in"
    );
    let text = std::fs::read_to_string(repo_path("grafana/uwsgi-router.json")).unwrap();
    assert!(
        !text.contains("${DS_"),
        "an import-time placeholder is left"
    );
    let list = dash["templating"]["list"].as_array().unwrap();
    let source = list
        .iter()
        .find(|v| v["name"] == "datasource")
        .expect("a datasource variable");
    assert_eq!(source["type"], "datasource");
    assert_eq!(source["query"], "prometheus");
    for v in list.iter().filter(|v| v["type"] == "query") {
        assert_eq!(v["datasource"]["uid"], DATASOURCE, "variable {}", v["name"]);
    }
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
                p["datasource"]["uid"], DATASOURCE,
                "{} uses the chosen data source",
                p["title"]
            );
            for t in p["targets"].as_array().unwrap() {
                assert_eq!(t["datasource"]["uid"], DATASOURCE, "{}", p["title"]);
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
        "open file descriptors",
        "memory",
        "cpu",
        "last config reload",
    ] {
        assert!(
            titles.iter().any(|t| t.contains(wanted)),
            "no panel about {wanted}: {titles:?}"
        );
    }
}

/// routerd with a pool serving through a fake node, a pool with no node, a pool whose one node
/// refuses connections (ejected after one failure), and a control plane that wants a token.
fn routerd_config(web: &FakeNode, token_file: &Path) -> String {
    format!(
        r#"[pools.default]
slow_start = "0s"
nodes = ["{web}"]
[pools.empty]
[pools.dead]
nodes = ["{dead}"]
connect_attempts = 1
[pools.dead.ejection]
consecutive_failures = 1
[[routes]]
host = "empty.test"
pool = "empty"
[[routes]]
host = "dead.test"
pool = "dead"
[control]
listen = "127.0.0.1:0"
registry_token_files = ["{tokens}"]
"#,
        web = web.addr,
        dead = free_addr(),
        tokens = token_file.display(),
    )
}

#[tokio::test]
async fn every_dashboard_query_uses_metrics_a_running_routerd_emits() {
    let web = FakeNode::start("web", Behaviour::Echo).await;
    let agent_node = FakeNode::start("agent-1", Behaviour::Echo).await;
    let tokens = tempfile::tempdir().unwrap();
    let token_file = tokens.path().join("registry.token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let mut routerd = Routerd::start(&routerd_config(&web, &token_file)).await;
    let (control, metrics) = (routerd.control_addr().await, routerd.metrics_addr().await);

    // Traffic of every kind: served, no node in the pool, a node refusing connections, and a
    // malformed packet.
    let uwsgi = routerd.addr.clone();
    assert_eq!(send(&uwsgi, &get("h", "/"), b"").await.status, 200);
    assert_eq!(send(&uwsgi, &get("empty.test", "/"), b"").await.status, 503);
    assert_eq!(send(&uwsgi, &get("dead.test", "/"), b"").await.status, 502);
    send_raw(&uwsgi, &[0, 0xff, 0xff, 0]).await;
    // A node registered as an agent registers it, reporting its load; a registration refused.
    let a = announce("agent-1", "default", &agent_node.addr.to_string());
    let (session, first) = NodeSession::open(control, Some(TOKEN), a.clone())
        .await
        .expect("the registration is accepted");
    assert!(
        matches!(first, uwsgi_router::api::router_message::Msg::Accepted(_)),
        "{first:?}"
    );
    let _reports = session.keep_reporting(idle());
    let refused = NodeSession::open(control, Some("wrong-token-wrong-token-wrong"), a).await;
    assert_eq!(
        refused.err().map(|e| e.code()),
        Some(tonic::Code::Unauthenticated)
    );
    // A reload.
    routerd.signal("HUP");
    routerd.wait_log("reloaded config on SIGHUP", 1, STEP).await;

    let used = dashboard_metrics();
    // The node's reports are applied asynchronously: scrape until every metric shows or the step
    // runs out, then name what is missing.
    let mut missing = BTreeMap::new();
    let every_one = wait::within(STEP, async || {
        let scraped = scrape_at(metrics).await;
        let emitted = scraped.names();
        missing = used
            .iter()
            .filter(|(name, _)| !emitted.contains(name.as_str()))
            .map(|(name, panels)| (name.clone(), panels.clone()))
            .collect();
        missing.is_empty().then_some(())
    })
    .await;
    assert!(
        every_one.is_ok(),
        "dashboard queries use metrics a running routerd does not emit (metric -> panels): \
         {missing:#?}\nrouterd's log:\n{}",
        routerd.stderr()
    );
}

/// Every metric the dashboards' queries select, with the panels (`file: title`) using it.
fn dashboard_metrics() -> BTreeMap<String, BTreeSet<String>> {
    let mut used: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut count = 0;
    for path in dashboard_files() {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let queries = queries(&load(&path));
        assert!(!queries.is_empty(), "{file} has no query");
        count += queries.len();
        for (panel, expr) in &queries {
            let names = promql_metric_names(expr);
            assert!(
                !names.is_empty(),
                "{file}: {panel}: {expr} selects no metric"
            );
            for name in names {
                used.entry(name)
                    .or_default()
                    .insert(format!("{file}: {panel}"));
            }
        }
    }
    assert!(count >= 20, "{count} queries in grafana/");
    used
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
