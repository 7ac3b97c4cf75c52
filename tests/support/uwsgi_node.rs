//! uWSGI nodes as the real-stack tests run them (a master and two workers serving a Django site,
//! each named by its `NODE_NAME`), and a uwsgi GET sent straight to one, not through routerd,
//! which tells when it has loaded the site and serves.

use std::fmt::{self, Display};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::packet::node_get;
use super::process::Process;
use super::programs::repo_path;

/// The Django sites the tests run.
#[derive(Debug, Clone, Copy)]
pub enum Site {
    /// `tests/django_app`: echo, upload and stream views.
    Test,
    /// `deploy/demo/site`: the demo's pages, as deployed.
    Demo,
}

impl Site {
    fn chdir(self) -> PathBuf {
        match self {
            Site::Test => repo_path("tests/django_app"),
            Site::Demo => repo_path("deploy/demo/site"),
        }
    }

    fn module(self) -> &'static str {
        match self {
            Site::Test => "demo.wsgi",
            Site::Demo => "demosite.wsgi",
        }
    }
}

/// Where a node takes uwsgi requests (or serves its stats).
#[derive(Debug, Clone)]
pub enum Socket {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A UNIX socket.
    Unix(PathBuf),
}

impl Display for Socket {
    /// As uWSGI's `--socket` and `--stats` and the agent's `--node` and `--stats` take it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Socket::Tcp(addr) => write!(f, "{addr}"),
            Socket::Unix(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Adds to `cmd` (uWSGI, or a wrapper that execs it) the arguments of node `name` serving `site`
/// on `sockets`, with its stats server on `stats`.
pub fn add_node_args(
    cmd: &mut Command,
    site: Site,
    name: &str,
    sockets: &[Socket],
    stats: &Socket,
) {
    cmd.args(["--plugin", "python3", "--master", "--processes", "2"])
        .args(["--die-on-term", "--need-app"])
        // nginx forwards every header as a var; the default 4 KiB is too small for some.
        .args(["--buffer-size", "32768"]);
    for socket in sockets {
        cmd.arg("--socket").arg(socket.to_string());
    }
    cmd.arg("--stats")
        .arg(stats.to_string())
        .args(["--module", site.module(), "--chdir"])
        .arg(site.chdir())
        .arg("--env")
        .arg(format!("NODE_NAME={name}"))
        // Keep the source tree free of __pycache__ directories.
        .env("PYTHONDONTWRITEBYTECODE", "1");
}

/// A GET of `path` sent straight to the node on `socket`: its raw HTTP reply.
pub fn direct_get(socket: &Socket, path: &str) -> io::Result<String> {
    let timeout = Some(Duration::from_secs(5));
    match socket {
        Socket::Tcp(addr) => {
            let stream = TcpStream::connect_timeout(addr, Duration::from_millis(500))?;
            stream.set_read_timeout(timeout)?;
            exchange(stream, path)
        }
        Socket::Unix(path_of_socket) => {
            let stream = UnixStream::connect(path_of_socket)?;
            stream.set_read_timeout(timeout)?;
            exchange(stream, path)
        }
    }
}

fn exchange(mut stream: impl Read + Write, path: &str) -> io::Result<String> {
    stream.write_all(&node_get(path))?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    Ok(reply)
}

/// Blocking: waits until the node `uwsgi` runs answers a GET on `socket` with its own name (the
/// socket is bound, Django is loaded and a worker accepts); fails the test with uWSGI's log if
/// it exits or `limit` passes.
pub fn wait_serving(uwsgi: &mut Process, name: &str, socket: &Socket, limit: Duration) {
    let marker = format!("node={name}\n");
    let what = format!("uWSGI {name} serving on {socket}");
    uwsgi.poll_while_running(&what, limit, || {
        let reply = direct_get(socket, "/echo/").ok()?;
        reply.contains(&marker).then_some(())
    });
}
