//! Real Prometheus tools accept what routerd serves and what `deploy/prometheus/` ships:
//! `promtool check metrics` passes a live scrape, `promtool check config`, `check rules` and
//! `test rules` pass the shipped files, every alert uses metrics routerd exports, and a real
//! Prometheus scrapes a live routerd and answers a PromQL request-rate query.

mod support;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use support::ports::free_addr;
use support::process::Process;
use support::programs::{find_program, repo_path};
use support::promql::promql_metric_names;
use support::scrape::*;
use support::wait;
use support::*;
use tokio::time::Instant;
use uwsgi_router::clock::now_ms;
use uwsgi_router::daemon::Daemon;

/// How long Prometheus may take to start, scrape and answer.
const PROMETHEUS_LIMIT: Duration = Duration::from_secs(30);

/// A router that has served every kind of outcome, with a node that reported its load.
async fn busy_router(node: &FakeNode) -> Daemon {
    let toml = format!(
        "{}[pools.empty]\n[[routes]]\nhost = \"empty.test\"\npool = \"empty\"\n",
        pool_toml("round-robin", &[node])
    );
    let router = start_router(&toml).await;
    let addr = router.local_addrs()[0].clone();
    assert_eq!(send(&addr, &get("h", "/"), b"").await.status, 200);
    assert_eq!(send(&addr, &get("empty.test", "/"), b"").await.status, 503);
    send_raw(&addr, &[0, 0xff, 0xff, 0]).await;
    let n = router
        .cluster()
        .pool("default")
        .unwrap()
        .node(&node.addr.to_string())
        .unwrap();
    let report = uwsgi_router::node::LoadReport {
        capacity: 4,
        busy: 1,
        ..Default::default()
    };
    n.record_report(&report, now_ms(), Duration::from_secs(60));
    router
}

/// Runs a promtool subcommand; fails the test with its output unless it succeeds.
fn promtool(args: &[&str], stdin: Option<&str>) -> String {
    let mut cmd = Command::new(find_program("promtool"));
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run promtool");
    if let Some(text) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[tokio::test]
async fn promtool_accepts_a_live_scrape() {
    let node = FakeNode::start("a", Behaviour::Echo).await;
    let router = busy_router(&node).await;
    let m = scrape(&router).await;
    let out = promtool(&["check", "metrics"], Some(&m.text));
    assert!(out.trim().is_empty(), "promtool has remarks:\n{out}");
}

#[test]
fn promtool_accepts_the_shipped_config_and_alert_rules() {
    let config = repo_path("deploy/prometheus/prometheus.yml");
    let rules = repo_path("deploy/prometheus/alerts.yml");
    let tests = repo_path("deploy/prometheus/alerts_test.yml");
    let out = promtool(&["check", "config", config.to_str().unwrap()], None);
    assert!(out.contains("SUCCESS"), "{out}");
    let out = promtool(&["check", "rules", rules.to_str().unwrap()], None);
    assert!(out.contains("SUCCESS: 8 rules found"), "{out}");
    let out = promtool(&["test", "rules", tests.to_str().unwrap()], None);
    assert!(out.contains("SUCCESS"), "{out}");
}

/// The `expr:` of every rule in a rules file (one line, or a `|` block).
fn rule_exprs(yaml: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut exprs = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.trim_start().strip_prefix("expr:") else {
            continue;
        };
        let rest = rest.trim();
        if rest != "|" && rest != ">" {
            exprs.push(rest.to_owned());
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let block: Vec<&str> = lines[i + 1..]
            .iter()
            .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
            .copied()
            .collect();
        exprs.push(block.join("\n"));
    }
    exprs
}

#[tokio::test]
async fn alert_rules_use_only_metrics_routerd_exports() {
    let node = FakeNode::start("a", Behaviour::Echo).await;
    let router = busy_router(&node).await;
    let exported = scrape(&router).await;
    let names = exported.names();
    let yaml = std::fs::read_to_string(repo_path("deploy/prometheus/alerts.yml")).unwrap();
    let exprs = rule_exprs(&yaml);
    assert_eq!(exprs.len(), 8, "{exprs:?}");
    for expr in &exprs {
        let used = promql_metric_names(expr);
        assert!(!used.is_empty(), "{expr} selects no metric");
        for name in used {
            // `up` is Prometheus's own, per scrape target.
            assert!(
                name == "up" || names.contains(name.as_str()),
                "alert expression uses {name}, which routerd does not export:\n{expr}"
            );
        }
    }
}

/// A Prometheus server in a temp dir, killed when dropped.
struct Prometheus {
    // Dropped first: the server goes before its temp dir.
    process: Process,
    addr: std::net::SocketAddr,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: std::net::SocketAddr) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let addr = free_addr();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: routerd\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let mut cmd = Command::new(find_program("prometheus"));
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"));
        let process = Process::spawn("prometheus", cmd, dir.path());
        Self {
            process,
            addr,
            _dir: dir,
        }
    }

    /// Runs an instant query; `None` while Prometheus is not up yet.
    async fn query(&self, promql: &str) -> Option<Vec<serde_json::Value>> {
        if tokio::net::TcpStream::connect(self.addr).await.is_err() {
            return None;
        }
        let reply = http_get(
            self.addr,
            &format!("/api/v1/query?query={}", encode(promql)),
        )
        .await;
        if reply.status != 200 {
            return None;
        }
        let body = if reply
            .head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(&reply.body)
        } else {
            reply.body
        };
        let json: serde_json::Value = serde_json::from_str(&body).ok()?;
        (json["status"] == "success").then(|| json["data"]["result"].as_array().cloned())?
    }

    /// Polls `promql` until `accept` takes its result; fails after [`PROMETHEUS_LIMIT`].
    async fn wait_for(
        &mut self,
        promql: &str,
        accept: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        let mut last = None;
        let every = Duration::from_millis(200);
        let answer = wait::within_every(every, PROMETHEUS_LIMIT, async || {
            self.process.assert_running();
            let result = self.query(promql).await?;
            if accept(&result) {
                return Some(result);
            }
            last = Some(result);
            None
        })
        .await;
        answer.unwrap_or_else(|e| {
            panic!(
                "no acceptable answer to {promql}: {e}; last: {last:?}\n{}",
                self.process.log()
            )
        })
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}

fn value(series: &serde_json::Value) -> f64 {
    series["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

#[tokio::test]
async fn prometheus_scrapes_routerd_and_answers_a_request_rate_query() {
    let node = FakeNode::start("a", Behaviour::Echo).await;
    let router = start_router(&format!(
        "default_pool = \"prom\"\n[pools.prom]\nnodes = [\"{}\"]\n",
        node.addr
    ))
    .await;
    let addr = router.local_addrs()[0].clone();
    let mut prometheus = Prometheus::start(metrics_addr(&router));

    // Steady traffic while Prometheus starts and scrapes.
    let sent = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = tokio::spawn({
        let (sent, stop, addr) = (sent.clone(), stop.clone(), addr.clone());
        async move {
            let deadline = Instant::now() + PROMETHEUS_LIMIT * 2;
            while !stop.load(SeqCst) && Instant::now() < deadline {
                let r = send(&addr, &get("h", "/"), b"").await;
                assert_eq!(r.status, 200);
                sent.fetch_add(1, SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });

    let up = prometheus
        .wait_for("up{job=\"routerd\"}", |r| {
            r.len() == 1 && value(&r[0]) == 1.0
        })
        .await;
    assert_eq!(
        up[0]["metric"]["instance"],
        metrics_addr(&router).to_string()
    );
    let rate = prometheus
        .wait_for(
            "sum by (pool) (rate(uwsgi_router_requests_total{outcome=\"2xx\"}[5s]))",
            |r| r.len() == 1 && value(&r[0]) > 0.0,
        )
        .await;
    assert_eq!(rate[0]["metric"]["pool"], "prom");
    assert!(
        value(&rate[0]) < 100.0,
        "one request per 20 ms at most: {rate:?}"
    );

    // Once traffic stops, the next scrape holds exactly what was sent.
    stop.store(true, SeqCst);
    traffic.await.unwrap();
    let total = sent.load(SeqCst) as f64;
    prometheus
        .wait_for(
            &format!(
                "sum(uwsgi_router_requests_total{{pool=\"prom\",outcome=\"2xx\"}}) == {total}"
            ),
            |r| r.len() == 1,
        )
        .await;
    let p99 = prometheus
        .wait_for(
            "histogram_quantile(0.99, sum by (le) (rate(uwsgi_router_request_duration_seconds_bucket{pool=\"prom\"}[1m])))",
            |r| r.len() == 1,
        )
        .await;
    let p99 = value(&p99[0]);
    assert!(p99 > 0.0 && p99 <= 60.0, "p99 {p99}");
}
