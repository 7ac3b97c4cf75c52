//! A real nginx with its own prefix in a temp dir: one HTTP port per uwsgi upstream (or per
//! location of the caller's).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::ports::{accepts, free_addr};
use crate::support::process::{file_tail, Process};
use crate::support::programs::find_program;

/// The `uwsgi_params` Debian's nginx ships: the vars a real deployment sends.
const UWSGI_PARAMS: &str = "/etc/nginx/uwsgi_params";

/// A running nginx and the HTTP ports in front of each upstream.
pub(crate) struct Nginx {
    /// One HTTP address per upstream given to [`Nginx::start`], in the same order.
    pub(crate) ports: Vec<SocketAddr>,
    process: Process,
    dir: PathBuf,
}

impl Nginx {
    /// Starts nginx with one server per upstream (`uwsgi_pass` targets such as `127.0.0.1:3031`
    /// or `unix:/path`), and waits until every port accepts connections.
    pub(crate) fn start(upstreams: &[String], dir: &Path) -> Nginx {
        let locations: Vec<String> = upstreams
            .iter()
            .map(|upstream| format!("include {UWSGI_PARAMS};\n            uwsgi_pass {upstream};"))
            .collect();
        Self::start_with(&locations, "", dir)
    }

    /// Starts nginx with one server per entry of `locations`, each the directives of its
    /// `location /`, and `http_extra` (`upstream` blocks...) in the `http {}` block; waits until
    /// every port accepts connections.
    pub(crate) fn start_with(locations: &[String], http_extra: &str, dir: &Path) -> Nginx {
        let ports: Vec<SocketAddr> = locations.iter().map(|_| free_addr()).collect();
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, config(dir, &ports, locations, http_extra))
            .expect("write nginx.conf");
        let mut cmd = Command::new(find_program("nginx"));
        cmd.arg("-p")
            .arg(dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(&conf);
        let mut process = Process::spawn("nginx", cmd, dir);
        for &port in &ports {
            let what = format!("nginx on {port}");
            process.poll_while_running(&what, Duration::from_secs(10), || {
                accepts(port).then_some(())
            });
        }
        Nginx {
            ports,
            process,
            dir: dir.to_owned(),
        }
    }

    /// The ends of nginx's own output and of its error log, for failure messages.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        let error_log = file_tail(&self.dir.join("error.log"), lines);
        format!(
            "{}\n--- nginx error.log ---\n{error_log}",
            self.process.log_tail(lines)
        )
    }
}

/// nginx.conf with every path inside `dir`, so nothing touches the system's nginx.
fn config(dir: &Path, ports: &[SocketAddr], locations: &[String], http_extra: &str) -> String {
    let d = dir.display();
    let mut conf = String::new();
    // Workers run as the `user` directive's user; only root may switch, and then workers must
    // stay root to reach the private temp dir and the router's UNIX socket.
    if running_as_root() {
        conf.push_str("user root;\n");
    }
    let _ = write!(
        conf,
        "daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log notice;
events {{ worker_connections 256; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    client_max_body_size 50m;
"
    );
    conf.push_str(http_extra);
    for (port, location) in ports.iter().zip(locations) {
        let _ = write!(
            conf,
            "    server {{
        listen {port};
        location / {{
            {location}
        }}
    }}
"
        );
    }
    conf.push_str("}\n");
    conf
}

/// Whether this test runs as root (the owner of our own /proc entry), without unsafe code.
fn running_as_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}
