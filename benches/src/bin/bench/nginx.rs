//! nginx for the groups that put it in front (the heterogeneous pool, the front group): the
//! config's common part, Debian's `uwsgi_params`, and starting it on a config in a directory of
//! its own.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;

use uwsgi_router_bench::child::Child;

use crate::setup::{Bench, START_LIMIT};

/// The vars nginx sends to uwsgi upstreams (Debian's `uwsgi_params`).
pub(crate) const UWSGI_PARAMS: &str = "uwsgi_param QUERY_STRING $query_string;
uwsgi_param REQUEST_METHOD $request_method;
uwsgi_param CONTENT_TYPE $content_type;
uwsgi_param CONTENT_LENGTH $content_length;
uwsgi_param REQUEST_URI $request_uri;
uwsgi_param PATH_INFO $document_uri;
uwsgi_param DOCUMENT_ROOT $document_root;
uwsgi_param SERVER_PROTOCOL $server_protocol;
uwsgi_param REQUEST_SCHEME $scheme;
uwsgi_param HTTPS $https if_not_empty;
uwsgi_param REMOTE_ADDR $remote_addr;
uwsgi_param REMOTE_PORT $remote_port;
uwsgi_param SERVER_PORT $server_port;
uwsgi_param SERVER_NAME $server_name;
uwsgi_param HTTP_HOST $host;
";

/// An nginx config being written in its own directory (`bench.path(name)`).
pub(crate) struct NginxConf {
    name: String,
    dir: PathBuf,
    conf: String,
}

impl NginxConf {
    /// One worker, no access log, client keep-alive without a request limit; the `http {` block
    /// is left open for upstreams and servers. Writes `uwsgi_params` into the directory.
    pub(crate) fn new(bench: &Bench, name: &str) -> anyhow::Result<Self> {
        let dir: PathBuf = bench.path(name);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("uwsgi_params"), UWSGI_PARAMS)?;
        let d = dir.display();
        let mut conf = String::new();
        // As root, workers would switch to `nobody` and lose access to the private temp directory.
        if is_root() {
            conf.push_str("user root;\n");
        }
        let _ = write!(
            conf,
            "daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    keepalive_requests 1000000;
"
        );
        Ok(Self {
            name: name.to_owned(),
            dir,
            conf,
        })
    }

    /// The `uwsgi_params` file to `include`.
    pub(crate) fn params(&self) -> PathBuf {
        self.dir.join("uwsgi_params")
    }

    /// Appends config text inside `http {}`.
    pub(crate) fn push(&mut self, text: &str) {
        self.conf.push_str(text);
    }

    /// Closes `http {}`, writes `nginx.conf` and starts nginx on it; waits until every one of
    /// `ports` listens.
    pub(crate) async fn start(
        mut self,
        bench: &Bench,
        ports: &[SocketAddr],
    ) -> anyhow::Result<Child> {
        self.conf.push_str("}\n");
        let file = self.dir.join("nginx.conf");
        std::fs::write(&file, &self.conf)?;
        let mut cmd = Command::new(&bench.args.nginx);
        cmd.arg("-p")
            .arg(&self.dir)
            .arg("-e")
            .arg(self.dir.join("error.log"))
            .arg("-c")
            .arg(&file);
        let mut child = Child::spawn(&self.name, cmd, &bench.log(&self.name))?;
        for port in ports {
            child.wait_listening(*port, START_LIMIT).await?;
        }
        Ok(child)
    }
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}
