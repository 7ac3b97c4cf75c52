//! The one-command demo, `deploy/demo/run.sh`, as a newcomer runs it: nginx -> routerd -> three
//! uWSGI + Django nodes, each registered by its router-agent. Its page through nginx names every
//! node, `routerctl nodes` lists the three registered nodes, and the stop command `run.sh start` prints, run verbatim in another shell (or Ctrl-C on the
//! foreground script) leaves no process and no open port behind. The ports and the state dir
//! come from the environment, so the demo does not collide with anything else running; the
//! binaries are the ones cargo built for this test (DEMO_BIN_DIR). Needs nginx, uWSGI and
//! Django, which run.sh installs itself when they are missing.

#[allow(dead_code)]
#[path = "real_stack/http.rs"]
mod http;
mod support;

use std::collections::BTreeSet;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use support::ports::{accepts, free_port};
use support::process::{file_tail, Process};
use support::programs::repo_path;
use tempfile::TempDir;

/// Nodes the demo runs.
const NODES: [&str; 3] = ["node1", "node2", "node3"];
/// Starting includes loading Django three times on a busy 2-core machine.
const START_TIMEOUT: Duration = Duration::from_secs(180);
/// Stopping: agents drain (at most 10 s each, at once), then uWSGI, nginx, routerd.
const STOP_TIMEOUT: Duration = Duration::from_secs(90);

#[test]
fn the_demo_serves_every_node_and_stop_leaves_nothing_behind() {
    let mut demo = Demo::new();
    let output = demo.run_to_end(&["start"], START_TIMEOUT);
    assert!(
        output.contains("demo is up") && output.contains(&demo.url("/")),
        "run.sh start did not announce the demo and where to click:\n{output}"
    );

    let answered = pages_until_every_node_answered(demo.http);
    for node in NODES {
        assert!(
            answered.contains(node),
            "{node} rendered none of the pages: {answered:?}"
        );
    }
    static_file_comes_from_nginx(demo.http);
    // The same site through nginx proxy_pass with keep-alive to routerd's HTTP listener.
    let keepalive = SocketAddr::from(([127, 0, 0, 1], demo.ports[10]));
    let answered = pages_until_every_node_answered(keepalive);
    for node in NODES {
        assert!(
            answered.contains(node),
            "{node} rendered none of the pages over the HTTP listener: {answered:?}"
        );
    }
    routerctl_lists_the_registered_nodes(&demo);

    let started = demo.recorded_processes();
    assert_eq!(
        started.len(),
        1 + 1 + 2 * NODES.len(),
        "pid files of routerd, nginx, and each node's uWSGI and agent: {started:?}"
    );
    // Run as an operator would: the printed line pasted into another shell, elsewhere, without
    // the environment the demo was started with.
    let stop = printed_stop_command(&output);
    let said = demo.run_verbatim(&stop, STOP_TIMEOUT);
    assert!(said.contains("demo stopped"), "{stop} said:\n{said}");
    demo.assert_nothing_left(&started);
    // A stop that finds no demo says so and fails, rather than stopping nothing quietly.
    let mut again = Command::new("bash");
    again.arg(repo_path("deploy/demo/run.sh")).arg("stop");
    again.env("DEMO_STATE_DIR", demo.state.path().join("elsewhere"));
    let out = again.output().expect("run run.sh stop");
    assert!(!out.status.success(), "stop of no demo exits non-zero");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no demo recorded"),
        "{out:?}"
    );
}

/// The command after `Stop` in what `run.sh start` printed.
fn printed_stop_command(output: &str) -> String {
    output
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("Stop"))
        .map(|c| c.trim().to_owned())
        .unwrap_or_else(|| panic!("run.sh start printed no Stop line:\n{output}"))
}

#[test]
fn ctrl_c_stops_the_foreground_demo() {
    let mut demo = Demo::new();
    let mut script = demo.spawn(&[]);
    demo.wait_for_output(&mut script, "Ctrl-C", START_TIMEOUT);
    let reply = get(demo.http, "/echo/");
    assert_eq!(reply.head.status, 200, "GET /echo/: {}", reply.text());
    assert!(reply.text().starts_with("node=node"), "{}", reply.text());
    let started = demo.recorded_processes();

    // What a terminal sends to the foreground script on Ctrl-C.
    script.signal("INT");
    let status = script
        .poll_exit(STOP_TIMEOUT)
        .unwrap_or_else(|| panic!("run.sh still runs after Ctrl-C:\n{}", demo.output()));
    assert!(
        status.success(),
        "run.sh exited with {status} on Ctrl-C:\n{}",
        demo.output()
    );
    assert!(demo.output().contains("demo stopped"), "{}", demo.output());
    demo.stopped = true;
    demo.assert_nothing_left(&started);
}

/// Requests `/` through nginx from a few clients at once (least-load spreads concurrent
/// requests; one client at a time would mostly see the fastest node) until every node has
/// answered, within 6,000 requests and 60 s. Every request must succeed.
fn pages_until_every_node_answered(http: SocketAddr) -> BTreeSet<String> {
    const CLIENTS: usize = 6;
    const MAX_EACH: usize = 1_000;
    let deadline = Instant::now() + Duration::from_secs(60);
    let answered = Mutex::new(BTreeSet::new());
    let done = AtomicBool::new(false);
    thread::scope(|s| {
        for _ in 0..CLIENTS {
            s.spawn(|| {
                for _ in 0..MAX_EACH {
                    if done.load(Ordering::Relaxed) || Instant::now() > deadline {
                        return;
                    }
                    let reply = get(http, "/");
                    assert_eq!(reply.head.status, 200, "GET / via nginx: {}", reply.text());
                    let node = node_of_page(&reply.text());
                    let mut seen = answered.lock().unwrap();
                    seen.insert(node);
                    if seen.len() == NODES.len() {
                        done.store(true, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    answered.into_inner().unwrap()
}

/// The node named by the page's `data-node` attribute.
fn node_of_page(page: &str) -> String {
    let start = page
        .find("data-node=\"")
        .unwrap_or_else(|| panic!("the page names no node:\n{page}"))
        + "data-node=\"".len();
    let len = page[start..].find('"').expect("closing quote");
    page[start..start + len].to_owned()
}

fn static_file_comes_from_nginx(http: SocketAddr) {
    let reply = get(http, "/static/demo.css");
    assert_eq!(reply.head.status, 200, "GET /static/demo.css");
    let on_disk = std::fs::read(repo_path("deploy/demo/static/demo.css")).unwrap();
    assert_eq!(reply.body, on_disk, "nginx did not serve the static file");
    assert!(
        reply
            .head
            .header("server")
            .is_some_and(|s| s.starts_with("nginx")),
        "not nginx's answer"
    );
}

fn routerctl_lists_the_registered_nodes(demo: &Demo) {
    let output = Command::new(env!("CARGO_BIN_EXE_routerctl"))
        .args(["--router", &format!("http://127.0.0.1:{}", demo.control)])
        .args(["nodes", "--json"])
        .output()
        .expect("run routerctl");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "routerctl nodes failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_str(&text).expect("routerctl --json output");
    let nodes = json["nodes"].as_array().expect("a nodes array");
    let mut ids: Vec<&str> = nodes.iter().filter_map(|n| n["id"].as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["demo-node1", "demo-node2", "demo-node3"], "{text}");
    for n in nodes {
        assert_eq!(n["source"], "registered", "{n}");
        assert_eq!(n["pool"], "default", "{n}");
        let state = n["state"].as_str().unwrap_or_default();
        assert!(
            state == "active" || state == "joining",
            "a node in state {state}: {n}"
        );
    }
}

fn get(http: SocketAddr, path: &str) -> http::Response {
    http::request(http, "GET", path, "localhost", &[])
        .unwrap_or_else(|e| panic!("GET {path} via nginx on {http}: {e}"))
}

/// One demo: its state dir, its ports, and the script's output.
struct Demo {
    state: TempDir,
    out: PathBuf,
    http: SocketAddr,
    control: u16,
    ports: Vec<u16>,
    env: Vec<(&'static str, String)>,
    stopped: bool,
}

impl Demo {
    fn new() -> Demo {
        let state = tempfile::Builder::new().prefix("demo").tempdir().unwrap();
        let out = state.path().join("run.sh.out");
        // Twelve distinct ports: a port just freed may be handed out again.
        let mut ports: Vec<u16> = Vec::new();
        while ports.len() < 12 {
            let p = free_port();
            if !ports.contains(&p) {
                ports.push(p);
            }
        }
        let list = |p: &[u16]| p.iter().map(u16::to_string).collect::<Vec<_>>().join(" ");
        let bin_dir = Path::new(env!("CARGO_BIN_EXE_routerd")).parent().unwrap();
        let env = vec![
            (
                "DEMO_STATE_DIR",
                state.path().join("state").display().to_string(),
            ),
            ("DEMO_HTTP_PORT", ports[0].to_string()),
            ("DEMO_ROUTER_PORT", ports[1].to_string()),
            ("DEMO_CONTROL_PORT", ports[2].to_string()),
            ("DEMO_METRICS_PORT", ports[3].to_string()),
            ("DEMO_NODE_PORTS", list(&ports[4..7])),
            ("DEMO_STATS_PORTS", list(&ports[7..10])),
            ("DEMO_KEEPALIVE_PORT", ports[10].to_string()),
            ("DEMO_ROUTER_HTTP_PORT", ports[11].to_string()),
            ("DEMO_BIN_DIR", bin_dir.display().to_string()),
        ];
        Demo {
            http: SocketAddr::from(([127, 0, 0, 1], ports[0])),
            control: ports[2],
            state,
            out,
            ports,
            env,
            stopped: false,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    fn state_dir(&self) -> PathBuf {
        self.state.path().join("state")
    }

    /// Starts `run.sh ARGS`, its output going to the output file (emptied first).
    fn spawn(&self, args: &[&str]) -> Process {
        File::create(&self.out).expect("empty run.sh's output file");
        let mut cmd = Command::new("bash");
        cmd.arg(repo_path("deploy/demo/run.sh"))
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        Process::spawn_logging_to("run.sh", cmd, &self.out)
    }

    /// Runs `run.sh ARGS` to its end, which must be a success; returns its output.
    fn run_to_end(&mut self, args: &[&str], timeout: Duration) -> String {
        let mut script = self.spawn(args);
        let status = script.poll_exit(timeout).unwrap_or_else(|| {
            panic!(
                "run.sh {args:?} still runs after {timeout:?}:\n{}",
                self.output()
            )
        });
        assert!(
            status.success(),
            "run.sh {args:?} exited with {status}:\n{}",
            self.output()
        );
        if args == ["stop"] {
            self.stopped = true;
        }
        self.output()
    }

    /// Runs `command` in a shell, from `/`, with none of the demo's settings in the environment,
    /// to its end, which must be a success; returns its output.
    fn run_verbatim(&mut self, command: &str, timeout: Duration) -> String {
        File::create(&self.out).expect("empty the output file");
        let mut cmd = Command::new("bash");
        cmd.arg("-c").arg(command).current_dir("/");
        for (key, _) in &self.env {
            cmd.env_remove(key);
        }
        let mut script = Process::spawn_logging_to("stop", cmd, &self.out);
        let status = script.poll_exit(timeout).unwrap_or_else(|| {
            panic!("{command} still runs after {timeout:?}:\n{}", self.output())
        });
        assert!(
            status.success(),
            "{command} exited with {status}:\n{}",
            self.output()
        );
        self.stopped = true;
        self.output()
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Waits until the script's output contains `marker`; the script must keep running.
    fn wait_for_output(&self, script: &mut Process, marker: &str, timeout: Duration) {
        let what = format!("{marker:?} from run.sh");
        script.poll_log(&what, timeout, |out| out.contains(marker).then_some(()));
    }

    /// The processes the demo recorded: (name, pid, start time).
    fn recorded_processes(&self) -> Vec<(String, u32, String)> {
        let dir = self.state_dir().join("pids");
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&dir).expect("the demo's pid dir") {
            let entry = entry.unwrap();
            let text = std::fs::read_to_string(entry.path()).unwrap();
            let mut fields = text.split_whitespace();
            let pid = fields.next().and_then(|p| p.parse().ok()).expect("a pid");
            let started = fields.next().unwrap_or_default().to_owned();
            found.push((
                entry.file_name().to_string_lossy().into_owned(),
                pid,
                started,
            ));
        }
        found.sort();
        found
    }

    /// Every recorded process has exited, the pid files are gone, and no port answers.
    fn assert_nothing_left(&self, started: &[(String, u32, String)]) {
        for (name, pid, start_time) in started {
            assert!(
                !runs(*pid, start_time),
                "{name} (pid {pid}) still runs after the demo stopped"
            );
        }
        let left = std::fs::read_dir(self.state_dir().join("pids"))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(left, 0, "pid files left in the state dir");
        for &port in &self.ports {
            assert!(
                !accepts(SocketAddr::from(([127, 0, 0, 1], port))),
                "port {port} still accepts connections after the demo stopped"
            );
        }
    }
}

impl Drop for Demo {
    /// A failed test still stops its demo, and shows what the script said.
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("--- run.sh output ---\n{}", self.output());
            let logs = self.state_dir().join("logs");
            for entry in std::fs::read_dir(&logs).into_iter().flatten().flatten() {
                let tail = file_tail(&entry.path(), 15);
                eprintln!("--- {} ---\n{tail}", entry.path().display());
            }
        }
        if !self.stopped {
            // Killed with its group when dropped if it does not finish in time.
            self.spawn(&["stop"]).poll_exit(STOP_TIMEOUT);
        }
    }
}

/// Whether the process `pid`, started at `start_time` (clock ticks after boot, field 22 of
/// /proc/PID/stat), still runs; a zombie waiting to be reaped does not.
fn runs(pid: u32, start_time: &str) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // Fields after the command name, which is in parentheses and may hold spaces.
    let after = stat.rsplit_once(") ").map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    fields.first() != Some(&"Z") && fields.get(19) == Some(&start_time)
}
