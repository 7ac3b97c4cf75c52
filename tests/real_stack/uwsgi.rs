//! uWSGI nodes running the demo Django site, each named by its `NODE_NAME`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::procs::{self, Proc};

/// How long a node may take to load Django and answer its first request.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The Django project the nodes serve.
pub(crate) fn django_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/django_app")
}

/// One uWSGI instance: a master and two worker processes.
pub(crate) struct Node {
    /// Its `NODE_NAME`, which the echo view reports.
    pub(crate) name: String,
    /// Its uwsgi socket.
    pub(crate) addr: SocketAddr,
    proc: Proc,
}

impl Node {
    /// Starts a node on free loopback ports; call [`Node::wait_ready`] before using it.
    pub(crate) fn spawn(name: &str, dir: &Path) -> Node {
        let addr = SocketAddr::from(([127, 0, 0, 1], procs::free_port()));
        let stats = SocketAddr::from(([127, 0, 0, 1], procs::free_port()));
        let mut cmd = Command::new(procs::find_program("uwsgi"));
        cmd.args([
            "--plugin",
            "python3",
            "--master",
            "--processes",
            "2",
            "--die-on-term",
        ])
        // nginx forwards every header as a var; the default 4 KiB is too small for some.
        .args(["--buffer-size", "32768"])
        .arg("--socket")
        .arg(addr.to_string())
        .arg("--stats")
        .arg(stats.to_string())
        .args(["--module", "demo.wsgi", "--chdir"])
        .arg(django_dir())
        .arg("--env")
        .arg(format!("NODE_NAME={name}"))
        // Keep the source tree free of __pycache__ directories.
        .env("PYTHONDONTWRITEBYTECODE", "1");
        let proc = Proc::spawn(&format!("uwsgi-{name}"), cmd, dir);
        Node {
            name: name.to_owned(),
            addr,
            proc,
        }
    }

    /// Waits until the node answers a real request with its own name: the socket is bound,
    /// Django is loaded and a worker accepts.
    pub(crate) fn wait_ready(&mut self) {
        let (addr, marker) = (self.addr, format!("node={}\n", self.name));
        let what = format!("uWSGI node {} on {addr}", self.name);
        procs::poll_until(&mut self.proc, &what, START_TIMEOUT, || {
            let reply = direct_get(addr, "/echo/ready").ok()?;
            reply.contains(&marker).then_some(())
        });
    }

    /// SIGKILLs the master and its workers (no goodbye, as a crashed host), and waits until
    /// the node's port refuses connections.
    pub(crate) fn kill(&mut self) {
        self.proc.kill_group();
        let addr = self.addr;
        for _ in 0..500 {
            if !procs::accepts(addr) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("node {} still accepts on {addr} after SIGKILL", self.name);
    }

    /// The end of the node's log, for failure messages.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        self.proc.log_tail(lines)
    }
}

/// Sends a GET straight to a node as a uwsgi packet and returns its raw HTTP reply.
fn direct_get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let vars = [
        ("REQUEST_METHOD", "GET"),
        ("REQUEST_URI", path),
        ("PATH_INFO", path),
        ("QUERY_STRING", ""),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("SERVER_NAME", "localhost"),
        ("SERVER_PORT", "80"),
        ("HTTP_HOST", "localhost"),
    ];
    stream.write_all(&uwsgi_packet(&vars))?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    Ok(reply)
}

/// A uwsgi request packet: modifier1 0, vars size (u16 LE), modifier2 0, then the vars.
pub(crate) fn uwsgi_packet(vars: &[(&str, &str)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (key, value) in vars {
        for part in [key, value] {
            let len = u16::try_from(part.len()).expect("var fits a uwsgi packet");
            body.extend_from_slice(&len.to_le_bytes());
            body.extend_from_slice(part.as_bytes());
        }
    }
    let size = u16::try_from(body.len()).expect("vars fit a uwsgi packet");
    let mut packet = vec![0];
    packet.extend_from_slice(&size.to_le_bytes());
    packet.push(0);
    packet.extend_from_slice(&body);
    packet
}
