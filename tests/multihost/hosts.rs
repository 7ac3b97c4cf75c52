//! What runs on each host: nginx and routerd on the router host (nginx listening on a UNIX
//! socket, which the test reaches from the root namespace: no address outside the namespaces);
//! uWSGI with the demo Django site and a router-agent on each app host.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::net::Network;

/// routerd's control listener, on the router host's address: agents on other hosts reach it.
pub(crate) const ROUTER_ADDR: &str = "10.231.0.1";
const CONTROL_PORT: u16 = 9032;
/// The nodes' uwsgi port on their hosts.
const NODE_PORT: u16 = 3031;
/// Agents report every 500 ms; routerd drops a node three intervals after its last report.
pub(crate) const REPORT_INTERVAL: Duration = Duration::from_millis(500);
/// Pause between two probes of a bounded wait.
const POLL: Duration = Duration::from_millis(50);

/// The address of app host `i` (1-based).
pub(crate) fn app_addr(i: usize) -> String {
    format!("10.231.0.{}", 10 + i)
}

/// A process in a namespace: its own process group, logging to a file, killed when dropped.
pub(crate) struct Daemon {
    name: String,
    child: Child,
    log: PathBuf,
    exited: Option<ExitStatus>,
}

impl Daemon {
    fn spawn(name: &str, mut cmd: Command, dir: &Path) -> Daemon {
        let log = dir.join(format!("{name}.log"));
        let out = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let err = out.try_clone().unwrap();
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        Daemon {
            name: name.to_owned(),
            child,
            log,
            exited: None,
        }
    }

    /// Sends `signal` (TERM, QUIT...) to the process.
    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} {}", self.name);
    }

    /// Waits for the process to exit, at most `timeout`.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.exited = Some(status);
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} still runs {timeout:?} after it was asked to stop:\n{}",
                self.name,
                self.log_tail(20)
            );
            thread::sleep(POLL);
        }
    }

    /// Fails the test if the process has exited.
    pub(crate) fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            self.exited = Some(status);
            panic!("{} exited with {status}:\n{}", self.name, self.log_tail(30));
        }
    }

    /// The end of the log.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        let start = all.len().saturating_sub(lines);
        format!("--- {} ---\n{}", self.name, all[start..].join("\n"))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.exited.is_some() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The router host: routerd, and nginx in front of it.
pub(crate) struct RouterHost {
    /// nginx's UNIX socket: the site's entrance.
    pub(crate) http: PathBuf,
    admin_token: PathBuf,
    nginx: Daemon,
    routerd: Daemon,
}

impl RouterHost {
    /// Starts routerd (control plane on the host's address, with tokens) and nginx, and waits
    /// until both answer.
    pub(crate) fn start(net: &Network, dir: &Path) -> RouterHost {
        let registry_token = dir.join("registry.token");
        let admin_token = dir.join("admin.token");
        std::fs::write(&registry_token, "registry-0123456789abcdef0123456789\n").unwrap();
        std::fs::write(&admin_token, "admin-0123456789abcdef0123456789abcd\n").unwrap();
        let conf = dir.join("routerd.toml");
        std::fs::write(&conf, routerd_config(&registry_token, &admin_token)).unwrap();
        let mut cmd = net.command("router", env!("CARGO_BIN_EXE_routerd"));
        cmd.arg("--config").arg(&conf).env("NO_COLOR", "1");
        let routerd = Daemon::spawn("routerd", cmd, dir);

        let http = dir.join("nginx.sock");
        let nginx_conf = dir.join("nginx.conf");
        std::fs::write(&nginx_conf, nginx_config(dir, &http)).unwrap();
        let mut cmd = net.command("router", find_program("nginx"));
        cmd.arg("-p")
            .arg(dir)
            .arg("-e")
            .arg(dir.join("nginx-error.log"))
            .arg("-c")
            .arg(&nginx_conf);
        let nginx = Daemon::spawn("nginx", cmd, dir);
        let mut host = RouterHost {
            http,
            admin_token,
            nginx,
            routerd,
        };
        host.wait_ready(net);
        host
    }

    fn wait_ready(&mut self, net: &Network) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.routerctl(net, &["status"]).status.success() {
            self.routerd.assert_running();
            assert!(
                Instant::now() < deadline,
                "routerd's control plane never answered"
            );
            thread::sleep(POLL);
        }
        while UnixStream::connect(&self.http).is_err() {
            self.nginx.assert_running();
            assert!(
                Instant::now() < deadline,
                "nginx never listened on {:?}",
                self.http
            );
            thread::sleep(POLL);
        }
    }

    /// Runs `routerctl ARGS` on the router host, as an operator there would, with the admin token.
    pub(crate) fn routerctl(&self, net: &Network, args: &[&str]) -> Output {
        net.command("router", env!("CARGO_BIN_EXE_routerctl"))
            .args(["--router", &format!("http://{ROUTER_ADDR}:{CONTROL_PORT}")])
            .arg("--token-file")
            .arg(&self.admin_token)
            .args(args)
            .output()
            .expect("run routerctl")
    }

    /// The nodes of the pool as `routerctl nodes --json` lists them: (id, state).
    pub(crate) fn nodes(&self, net: &Network) -> Vec<(String, String)> {
        let out = self.routerctl(net, &["nodes", "--json"]);
        assert!(
            out.status.success(),
            "routerctl nodes: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        let mut nodes: Vec<(String, String)> = json["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| {
                let s = |k: &str| n[k].as_str().unwrap_or_default().to_owned();
                (s("id"), s("state"))
            })
            .collect();
        nodes.sort();
        nodes
    }

    /// Logs of routerd and nginx, for failure messages.
    pub(crate) fn log_tails(&self) -> String {
        format!("{}\n{}", self.routerd.log_tail(60), self.nginx.log_tail(10))
    }
}

/// routerd.toml of the router host. `first_byte` is short so that requests caught on a host
/// cut off the network end (504) within the test instead of after a minute.
fn routerd_config(registry_token: &Path, admin_token: &Path) -> String {
    format!(
        "[listen]
uwsgi = [\"127.0.0.1:3031\"]

[timeouts]
first_byte = \"5s\"
shutdown_grace = \"5s\"

[metrics]
listen = \"127.0.0.1:9031\"

[control]
listen = \"{ROUTER_ADDR}:{CONTROL_PORT}\"
registry_token_files = [\"{}\"]
admin_token_files = [\"{}\"]

[pools.default]
algorithm = \"least-load\"
slow_start = \"1s\"
allowed_networks = [\"10.231.0.0/24\"]
",
        registry_token.display(),
        admin_token.display(),
    )
}

fn nginx_config(dir: &Path, http: &Path) -> String {
    let d = dir.display();
    format!(
        "user root;
daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log notice;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    upstream uwsgi_routers {{
        server 127.0.0.1:3031;
    }}
    server {{
        listen unix:{http};
        location / {{
            include /etc/nginx/uwsgi_params;
            uwsgi_pass uwsgi_routers;
            uwsgi_next_upstream error timeout;
        }}
    }}
}}
",
        http = http.display()
    )
}

/// An app host: uWSGI running the demo site, and its router-agent.
pub(crate) struct AppHost {
    /// `app1`...: host name, node id and the name the pages show.
    pub(crate) id: String,
    index: usize,
    dir: PathBuf,
    uwsgi: Option<Daemon>,
    agent: Option<Daemon>,
    starts: u32,
}

impl AppHost {
    /// Host `index` (1-based), nothing started yet.
    pub(crate) fn new(index: usize, dir: &Path) -> AppHost {
        AppHost {
            id: format!("app{index}"),
            index,
            dir: dir.to_owned(),
            uwsgi: None,
            agent: None,
            starts: 0,
        }
    }

    /// The node's address, as routerd connects to it.
    pub(crate) fn addr(&self) -> String {
        format!("{}:{NODE_PORT}", app_addr(self.index))
    }

    fn socket(&self, what: &str) -> PathBuf {
        self.dir.join(format!("{}-{what}.sock", self.id))
    }

    /// Starts uWSGI: the uwsgi socket on the host's address, plus a UNIX socket through which
    /// the test checks it is ready, and the stats server (a UNIX socket) the agent reads.
    pub(crate) fn start_uwsgi(&mut self, net: &Network) {
        self.starts += 1;
        let mut cmd = net.command(&self.id, find_program("uwsgi"));
        cmd.args(["--plugin", "python3", "--master", "--processes", "2"])
            .args(["--die-on-term", "--need-app", "--buffer-size", "32768"])
            .args(["--socket", &self.addr()])
            .arg("--socket")
            .arg(self.socket("direct"))
            .arg("--stats")
            .arg(self.socket("stats"))
            .args(["--module", "demosite.wsgi", "--chdir"])
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/demo/site"))
            .args(["--env", &format!("NODE_NAME={}", self.id)])
            .env("PYTHONDONTWRITEBYTECODE", "1");
        let name = format!("uwsgi-{}-{}", self.id, self.starts);
        self.uwsgi = Some(Daemon::spawn(&name, cmd, &self.dir));
    }

    /// Waits until uWSGI answers a request with its own name.
    pub(crate) fn wait_uwsgi_ready(&mut self) {
        let marker = format!("node={}\n", self.id);
        let deadline = Instant::now() + Duration::from_secs(60);
        let socket = self.socket("direct");
        loop {
            if direct_get(&socket).is_ok_and(|r| r.contains(&marker)) {
                return;
            }
            self.uwsgi.as_mut().expect("uWSGI started").assert_running();
            assert!(
                Instant::now() < deadline,
                "uWSGI on {} never answered",
                self.id
            );
            thread::sleep(POLL);
        }
    }

    /// Starts the agent: it registers the node with routerd on the router host.
    pub(crate) fn start_agent(&mut self, net: &Network) {
        let mut cmd = net.command(&self.id, env!("CARGO_BIN_EXE_router-agent"));
        cmd.args(["--router", &format!("http://{ROUTER_ADDR}:{CONTROL_PORT}")])
            .args([
                "--pool",
                "default",
                "--node",
                &self.addr(),
                "--node-id",
                &self.id,
            ])
            .arg("--stats")
            .arg(self.socket("stats"))
            .arg("--token-file")
            .arg(self.dir.join("registry.token"))
            .args(["--interval", &format!("{}ms", REPORT_INTERVAL.as_millis())])
            .args(["--drain-timeout", "10s"])
            .env("NO_COLOR", "1");
        let name = format!("agent-{}-{}", self.id, self.starts);
        self.agent = Some(Daemon::spawn(&name, cmd, &self.dir));
    }

    /// SIGTERM to the agent, which drains the node and leaves; it must exit 0 in time.
    pub(crate) fn stop_agent(&mut self) {
        let mut agent = self.agent.take().expect("agent started");
        agent.signal("TERM");
        let status = agent.wait_exit(Duration::from_secs(20));
        assert!(
            status.success(),
            "the agent of {} exited with {status}:\n{}",
            self.id,
            agent.log_tail(20)
        );
    }

    /// SIGTERM to uWSGI (die-on-term), which must exit in time.
    pub(crate) fn stop_uwsgi(&mut self) {
        let mut uwsgi = self.uwsgi.take().expect("uWSGI started");
        uwsgi.signal("TERM");
        uwsgi.wait_exit(Duration::from_secs(20));
    }

    /// Logs of uWSGI and the agent, for failure messages.
    pub(crate) fn log_tails(&self) -> String {
        [&self.uwsgi, &self.agent]
            .into_iter()
            .flatten()
            .map(|d| d.log_tail(15))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A GET of /echo/ straight to uWSGI over its UNIX socket, as a uwsgi packet.
fn direct_get(socket: &Path) -> std::io::Result<String> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let vars = [
        ("REQUEST_METHOD", "GET"),
        ("REQUEST_URI", "/echo/"),
        ("PATH_INFO", "/echo/"),
        ("QUERY_STRING", ""),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("SERVER_NAME", "localhost"),
        ("SERVER_PORT", "80"),
        ("HTTP_HOST", "localhost"),
    ];
    let mut body = Vec::new();
    for (key, value) in vars {
        for part in [key, value] {
            body.extend_from_slice(&(part.len() as u16).to_le_bytes());
            body.extend_from_slice(part.as_bytes());
        }
    }
    let mut packet = vec![0];
    packet.extend_from_slice(&(body.len() as u16).to_le_bytes());
    packet.push(0);
    packet.extend_from_slice(&body);
    stream.write_all(&packet)?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    Ok(reply)
}

/// A program on PATH or in the sbin directories (Debian puts nginx in /usr/sbin).
fn find_program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("`{name}` is not installed: run bash tests/run.sh"))
}
