//! Everything the front group runs against, started once: one routerd with a uwsgi listener and
//! HTTP listeners on TCP and on a UNIX socket, uWSGI's HTTP router, HAProxy in `mode tcp`, and one
//! nginx with a port per phase. The fast nodes are the bench's own.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context as _;
use tokio::time::Instant;
use uwsgi_router_bench::child::{free_port, Child};

use super::Phase;
use crate::nginx::NginxConf;
use crate::setup::{Bench, START_LIMIT};

/// The stack; dropping it kills every process it started.
pub(crate) struct Stack {
    /// nginx's HTTP port for each phase.
    ports: Vec<(Phase, SocketAddr)>,
    routerd: Child,
    uwsgi_http: Child,
    haproxy: Child,
    pub(crate) nginx: Child,
}

impl Stack {
    /// nginx's port for `p`.
    pub(crate) fn port(&self, p: Phase) -> SocketAddr {
        self.ports
            .iter()
            .find(|(k, _)| *k == p)
            .map(|(_, a)| *a)
            .expect("every phase has a port")
    }

    /// The main process of the router between nginx and the nodes in `p` (its children count too).
    pub(crate) fn router_pid(&self, p: Phase) -> Option<u32> {
        match p {
            Phase::Direct => None,
            Phase::RouterdUwsgi | Phase::RouterdHttp | Phase::RouterdHttpUnix => {
                Some(self.routerd.pid())
            }
            Phase::UwsgiHttp => Some(self.uwsgi_http.pid()),
            Phase::Haproxy => Some(self.haproxy.pid()),
        }
    }

    /// Fails with the end of its log if any process died.
    pub(crate) fn check(&mut self) -> anyhow::Result<()> {
        self.routerd.ensure_running()?;
        self.uwsgi_http.ensure_running()?;
        self.haproxy.ensure_running()?;
        self.nginx.ensure_running()
    }
}

/// Where each router listens.
struct Listeners {
    /// The nodes behind every router.
    nodes: Vec<SocketAddr>,
    routerd_uwsgi: SocketAddr,
    routerd_http: SocketAddr,
    routerd_unix: PathBuf,
    uwsgi_http: SocketAddr,
    haproxy: SocketAddr,
}

/// Starts the routers in front of `nodes`, then nginx in front of them.
pub(crate) async fn start(bench: &Bench, nodes: &[SocketAddr]) -> anyhow::Result<Stack> {
    let l = Listeners {
        nodes: nodes.to_vec(),
        routerd_uwsgi: free_port()?,
        routerd_http: free_port()?,
        routerd_unix: bench.path("front-routerd-http.sock"),
        uwsgi_http: free_port()?,
        haproxy: free_port()?,
    };
    let routerd = start_routerd(bench, &l).await?;
    let uwsgi_http = start_uwsgi_http(bench, l.uwsgi_http, nodes).await?;
    let haproxy = start_haproxy(bench, l.haproxy, nodes).await?;
    let ports: Vec<(Phase, SocketAddr)> = Phase::ALL
        .iter()
        .map(|p| Ok((*p, free_port()?)))
        .collect::<anyhow::Result<_>>()?;
    let nginx = start_nginx(bench, &l, &ports).await?;
    Ok(Stack {
        ports,
        routerd,
        uwsgi_http,
        haproxy,
        nginx,
    })
}

async fn start_routerd(bench: &Bench, l: &Listeners) -> anyhow::Result<Child> {
    let bin = bench.routerd_bin();
    anyhow::ensure!(
        bin.exists(),
        "{} not found: build it with `cargo build --release --bin routerd`",
        bin.display()
    );
    let nodes: Vec<String> = bench
        .node_addrs
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect();
    // Metrics and control off: nothing but the listeners under test.
    let config = format!(
        "[listen]\nuwsgi = [\"{}\"]\nhttp = [\"{}\", \"unix:{}\"]\n\n\
         [metrics]\nlisten = \"\"\n\n[control]\nlisten = \"\"\n\n\
         [pools.default]\nalgorithm = \"least-load\"\nnodes = [{}]\n",
        l.routerd_uwsgi,
        l.routerd_http,
        l.routerd_unix.display(),
        nodes.join(", ")
    );
    let file = bench.path("front-routerd.toml");
    std::fs::write(&file, config).with_context(|| format!("writing {}", file.display()))?;
    let mut cmd = Command::new(bin);
    cmd.arg("--config").arg(&file).env("RUST_LOG", "warn");
    let mut child = Child::spawn("front-routerd", cmd, &bench.log("front-routerd"))?;
    child.wait_listening(l.routerd_uwsgi, START_LIMIT).await?;
    child.wait_listening(l.routerd_http, START_LIMIT).await?;
    wait_unix(&mut child, &l.routerd_unix).await?;
    Ok(child)
}

/// Waits until the UNIX socket at `path` accepts connections.
async fn wait_unix(child: &mut Child, path: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_LIMIT;
    loop {
        child.ensure_running()?;
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "nothing listening on {} after {START_LIMIT:?}; log:\n{}",
            path.display(),
            child.log_tail(20)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// uWSGI's HTTP router (Debian's uwsgi-core `http` plugin), one router process, static nodes
/// (round robin), HTTP/1.1 keep-alive towards its clients.
async fn start_uwsgi_http(
    bench: &Bench,
    addr: SocketAddr,
    nodes: &[SocketAddr],
) -> anyhow::Result<Child> {
    let mut cmd = Command::new(&bench.args.uwsgi);
    cmd.args(["--plugin", "http", "--master", "--die-on-term"])
        .args(["--http", &addr.to_string()])
        .args(["--http-processes", "1"])
        .arg("--http-keepalive");
    for n in nodes {
        cmd.args(["--http-to", &n.to_string()]);
    }
    let mut child = Child::spawn("front-uwsgi-http", cmd, &bench.log("front-uwsgi-http"))?;
    child.wait_listening(addr, START_LIMIT).await?;
    Ok(child)
}

/// HAProxy (Debian's `haproxy`) in `mode tcp`, `balance leastconn`, in the foreground.
async fn start_haproxy(
    bench: &Bench,
    addr: SocketAddr,
    nodes: &[SocketAddr],
) -> anyhow::Result<Child> {
    let mut conf = format!(
        "global\n    maxconn 4096\n\n\
         defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 60s\n    timeout server 60s\n\n\
         frontend front\n    bind {addr}\n    default_backend nodes\n\n\
         backend nodes\n    balance leastconn\n"
    );
    for (i, n) in nodes.iter().enumerate() {
        let _ = writeln!(conf, "    server node{} {n}", i + 1);
    }
    let file = bench.path("front-haproxy.cfg");
    std::fs::write(&file, conf).with_context(|| format!("writing {}", file.display()))?;
    let mut cmd = Command::new(&bench.args.haproxy);
    cmd.arg("-db").arg("-f").arg(&file);
    let mut child = Child::spawn("front-haproxy", cmd, &bench.log("front-haproxy"))
        .context("HAProxy is Debian's `haproxy` package")?;
    child.wait_listening(addr, START_LIMIT).await?;
    Ok(child)
}

/// The upstream of an HTTP router with `keepalive` idle connections per worker (one per client:
/// every request in flight can keep its own), as deploy/nginx/uwsgi-router-http.conf writes it.
fn keepalive_upstream(name: &str, server: &str, keepalive: usize) -> String {
    format!(
        "    upstream {name} {{
        server {server};
        keepalive {keepalive};
        keepalive_timeout 50s;
        keepalive_requests 1000;
    }}
"
    )
}

fn uwsgi_server(port: SocketAddr, params: &Path, upstream: &str) -> String {
    format!(
        "    server {{
        listen {port};
        location / {{
            include {};
            uwsgi_pass {upstream};
        }}
    }}
",
        params.display()
    )
}

fn proxy_server(port: SocketAddr, upstream: &str) -> String {
    format!(
        "    server {{
        listen {port};
        location / {{
            proxy_pass http://{upstream};
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
"
    )
}

async fn start_nginx(
    bench: &Bench,
    l: &Listeners,
    ports: &[(Phase, SocketAddr)],
) -> anyhow::Result<Child> {
    let mut conf = NginxConf::new(bench, "front-nginx")?;
    let params = conf.params();
    let keepalive = bench.args.concurrency;
    let mut text = String::from("    upstream front_least_conn {\n        least_conn;\n");
    for n in &l.nodes {
        let _ = writeln!(text, "        server {n};");
    }
    text.push_str("    }\n");
    let unix = format!("unix:{}", l.routerd_unix.display());
    text.push_str(&keepalive_upstream(
        "front_routerd_http",
        &l.routerd_http.to_string(),
        keepalive,
    ));
    text.push_str(&keepalive_upstream("front_routerd_unix", &unix, keepalive));
    text.push_str(&keepalive_upstream(
        "front_uwsgi_http",
        &l.uwsgi_http.to_string(),
        keepalive,
    ));
    for (p, port) in ports {
        let port = *port;
        text.push_str(&match p {
            Phase::Direct => uwsgi_server(port, &params, "front_least_conn"),
            Phase::RouterdUwsgi => uwsgi_server(port, &params, &l.routerd_uwsgi.to_string()),
            Phase::RouterdHttp => proxy_server(port, "front_routerd_http"),
            Phase::RouterdHttpUnix => proxy_server(port, "front_routerd_unix"),
            Phase::UwsgiHttp => proxy_server(port, "front_uwsgi_http"),
            Phase::Haproxy => uwsgi_server(port, &params, &l.haproxy.to_string()),
        });
    }
    conf.push(&text);
    let all: Vec<SocketAddr> = ports.iter().map(|(_, p)| *p).collect();
    conf.start(bench, &all).await
}
