//! The router host: routerd, its control plane on the host's address with registry and admin
//! tokens, and nginx in front of it listening on a UNIX socket, which the test reaches from the
//! root namespace (no address outside the namespaces).

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use crate::hosts::{CONTROL_PORT, ROUTER_ADDR};
use crate::net::Network;
use crate::support::binary::{add_routerd_args, ROUTERD};
use crate::support::process::Process;
use crate::support::programs::find_program;

/// The router host: routerd, and nginx in front of it.
pub(crate) struct RouterHost {
    /// nginx's UNIX socket: the site's entrance.
    pub(crate) http: PathBuf,
    admin_token: PathBuf,
    nginx: Process,
    routerd: Process,
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
        let mut cmd = net.command("router", ROUTERD);
        add_routerd_args(&mut cmd, &conf);
        let routerd = Process::spawn("routerd", cmd, dir);

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
        let nginx = Process::spawn("nginx", cmd, dir);
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
        let limit = Duration::from_secs(20);
        let admin_token = self.admin_token.clone();
        self.routerd
            .poll_while_running("routerd's control plane answering", limit, || {
                let status = routerctl(net, &admin_token, &["status"]);
                status.status.success().then_some(())
            });
        let http = self.http.clone();
        let what = format!("nginx listening on {}", http.display());
        self.nginx
            .poll_while_running(&what, limit, || UnixStream::connect(&http).ok());
    }

    /// Runs `routerctl ARGS` on the router host, as an operator there would, with the admin token.
    pub(crate) fn routerctl(&self, net: &Network, args: &[&str]) -> Output {
        routerctl(net, &self.admin_token, args)
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

/// `routerctl ARGS` run on the router host with the admin token.
fn routerctl(net: &Network, admin_token: &Path, args: &[&str]) -> Output {
    net.command("router", env!("CARGO_BIN_EXE_routerctl"))
        .args(["--router", &format!("http://{ROUTER_ADDR}:{CONTROL_PORT}")])
        .arg("--token-file")
        .arg(admin_token)
        .args(args)
        .output()
        .expect("run routerctl")
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
