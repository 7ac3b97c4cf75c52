//! Real uWSGI 2.0 nodes running the demo Django site join routerd as they join uWSGI's
//! FastRouter, unmodified: `--subscribe-to ROUTER:PORT:KEY` (UDP) or `/path:KEY` (UNIX datagram).
//! Browser requests go through nginx to routerd, which sends each key's requests to its own nodes
//! only; a node stopped with SIGINT unsubscribes, a SIGKILLed one is dropped after the tolerance,
//! and with `key_dir` only nodes signing with the key's private key get in. Needs nginx, uWSGI and
//! Django (`bash tests/run.sh` installs them) and openssl.

#[allow(dead_code)]
#[path = "real_stack/http.rs"]
mod http;
#[allow(dead_code)]
#[path = "real_stack/nginx.rs"]
mod nginx;
mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nginx::Nginx;
use support::binary::{routerd_command, wait_logged_addr};
use support::ports::free_addr;
use support::process::Process;
use support::programs::{find_program, repo_path};
use support::wait;
use tempfile::TempDir;

/// How long nodes may take to load Django and be routed to.
const READY: Duration = Duration::from_secs(40);

/// routerd with a UDP subscription socket, its uwsgi listener behind nginx.
struct Router {
    process: Process,
    /// Where nodes subscribe over UDP...
    subscribe: SocketAddr,
    /// ... and over a UNIX datagram socket.
    subscribe_unix: PathBuf,
    /// nginx's HTTP port in front of routerd.
    http: SocketAddr,
    _nginx: Nginx,
}

impl Router {
    /// Starts routerd with `[subscription]` plus `extra` lines in it, then nginx in front. Every
    /// listener takes an ephemeral port, read back from routerd's log.
    fn start(dir: &Path, extra: &str) -> Router {
        let subscribe_unix = dir.join("subscribe.sock");
        let conf = dir.join("routerd.toml");
        let text = format!(
            "default_pool = \"\"\n[listen]\nuwsgi = [\"127.0.0.1:0\"]\n[control]\nlisten = \"\"\n[metrics]\nlisten = \"\"\n[subscription]\nlisten = [\"127.0.0.1:0\", \"unix:{}\"]\ntolerance = \"2s\"\n{extra}",
            subscribe_unix.display()
        );
        std::fs::write(&conf, text).expect("write routerd.toml");
        let mut cmd = routerd_command(&conf);
        cmd.env("RUST_LOG", "info,uwsgi_router=debug");
        let mut process = Process::spawn("routerd", cmd, dir);
        let tcp = wait_logged_addr(&mut process, "listening for uwsgi clients");
        let subscribe = wait_logged_addr(&mut process, "listening for uWSGI subscriptions");
        let nginx = Nginx::start(&[tcp.to_string()], dir);
        Router {
            process,
            subscribe,
            subscribe_unix,
            http: nginx.ports[0],
            _nginx: nginx,
        }
    }

    fn log(&self) -> String {
        self.process.log()
    }

    /// Waits until one line of routerd's log holds every piece of `needles`; returns it.
    fn wait_log(&mut self, needles: &[&str], limit: Duration) -> String {
        let what = format!("a routerd log line with {needles:?}");
        self.process.poll_log(&what, limit, |log| {
            log.lines()
                .find(|l| needles.iter().all(|n| l.contains(n)))
                .map(str::to_owned)
        })
    }

    /// `GET /echo/...` for `host` through nginx: status and the answering node's name.
    fn get(&self, host: &str) -> (u16, String) {
        let reply = http::request(self.http, "GET", "/echo/sub", host, &[])
            .unwrap_or_else(|e| panic!("GET {host} via nginx: {e}"));
        let text = reply.text();
        let node = text
            .lines()
            .find_map(|l| l.strip_prefix("node="))
            .unwrap_or_default()
            .to_owned();
        (reply.head.status, if node.is_empty() { text } else { node })
    }

    /// The nodes answering `count` requests for `host`; every request must succeed.
    fn answered_by(&self, host: &str, count: usize) -> BTreeSet<String> {
        (0..count)
            .map(|i| {
                let (status, node) = self.get(host);
                assert_eq!(status, 200, "request {i} for {host}: {node}");
                node
            })
            .collect()
    }

    /// Polls requests for `host` until every one of `nodes` has answered one.
    fn wait_routed(&mut self, host: &str, nodes: &[&UwsgiNode]) {
        let mut seen = BTreeSet::new();
        let names: Vec<&String> = nodes.iter().map(|n| &n.name).collect();
        let routed = wait::poll_within(READY, || {
            let (status, node) = self.get(host);
            if status == 200 {
                seen.insert(node);
            }
            self.process.assert_running();
            names.iter().all(|n| seen.contains(*n)).then_some(())
        });
        if let Err(e) = routed {
            panic!(
                "{host} reaching {names:?}: {e} (seen {seen:?}); routerd log:\n{}",
                self.process.log_tail(40)
            );
        }
    }
}

/// A uWSGI node of the demo Django site that announces itself with `--subscribe-to`.
struct UwsgiNode {
    name: String,
    addr: SocketAddr,
    pidfile: PathBuf,
    process: Process,
}

impl UwsgiNode {
    /// Starts a node subscribing with `subscribe_to` (`ADDR:KEY[,MODIFIER1,ALGO:KEYFILE]`) every
    /// second, plus `extra` flags.
    fn spawn(name: &str, dir: &Path, subscribe_to: &str, extra: &[&str]) -> UwsgiNode {
        let addr = free_addr();
        let pidfile = dir.join(format!("{name}.pid"));
        let django = repo_path("tests/django_app");
        let mut cmd = Command::new(find_program("uwsgi"));
        cmd.args(["--plugin", "python3", "--master", "--processes", "1"])
            .args(["--buffer-size", "32768", "--die-on-term"])
            .arg("--socket")
            .arg(addr.to_string())
            .args(["--module", "demo.wsgi", "--chdir"])
            .arg(&django)
            .arg("--env")
            .arg(format!("NODE_NAME={name}"))
            .arg("--pidfile")
            .arg(&pidfile)
            .args(["--subscribe-to", subscribe_to, "--subscribe-freq", "1"])
            .args(extra);
        let process = Process::spawn(&format!("uwsgi-{name}"), cmd, dir);
        UwsgiNode {
            name: name.to_owned(),
            addr,
            pidfile,
            process,
        }
    }

    /// The node's id in routerd: its address and pool.
    fn id(&self, pool: &str) -> String {
        format!("{}@{pool}", self.addr)
    }

    fn log(&self) -> String {
        self.process.log()
    }

    /// A graceful stop as an operator (or systemd) does it: SIGINT to the master.
    fn interrupt(&self) {
        let pid = std::fs::read_to_string(&self.pidfile).expect("uWSGI wrote its pidfile");
        let status = Command::new("kill")
            .args(["-INT", pid.trim()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -INT {}", pid.trim());
    }
}

fn temp_dir(prefix: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("create temp dir")
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn uwsgi_nodes_subscribe_get_their_key_and_leave_on_sigint_or_after_silence() {
    let dir = temp_dir("subscription-real");
    let notify_dir = format!("notify_dir = \"{}\"\n", dir.path().display());
    let mut router = Router::start(dir.path(), &notify_dir);
    let sub = router.subscribe;
    let notify = dir.path().join("n1-notify.sock");
    let notify = notify.to_str().unwrap();
    let alpha = format!("{sub}:alpha.test");
    let n1 = UwsgiNode::spawn("n1", dir.path(), &alpha, &["--notify-socket", notify]);
    // n2 announces itself over the UNIX datagram socket: `--subscribe-to /path:KEY`.
    let alpha_unix = format!("{}:alpha.test", router.subscribe_unix.display());
    let n2 = UwsgiNode::spawn("n2", dir.path(), &alpha_unix, &[]);
    let mut n3 = UwsgiNode::spawn("n3", dir.path(), &format!("{sub}:beta.test"), &[]);
    // Both alpha.test nodes answer (least-load may then favour the faster one).
    router.wait_routed("alpha.test", &[&n1, &n2]);
    router.wait_routed("beta.test", &[&n3]);

    let both: BTreeSet<String> = ["n1", "n2"].map(String::from).into();
    let alpha_nodes = router.answered_by("alpha.test", 20);
    assert!(
        alpha_nodes.is_subset(&both),
        "alpha.test went to {alpha_nodes:?}, not only to its own nodes"
    );
    assert_eq!(
        router.answered_by("beta.test", 10),
        ["n3".to_owned()].into()
    );
    let (status, text) = router.get("gamma.test");
    assert_eq!(status, 503, "a key nobody announced: {text}");
    assert!(
        router
            .log()
            .contains(&format!("node={} addr={}", n1.id("alpha.test"), n1.addr)),
        "routerd logs the join with the node's id and address"
    );
    let ack = format!(
        "[notify-socket] [subscription ack] alpha.test => new node: {}",
        n1.addr
    );
    assert!(
        n1.log().contains(&ack),
        "n1 logged no acknowledgement:\n{}",
        n1.log()
    );

    // SIGINT: uWSGI unsubscribes on its way out, and routerd takes the node out at once.
    n1.interrupt();
    router.wait_log(
        &["node left", &n1.id("alpha.test"), "unsubscribed"],
        Duration::from_secs(10),
    );
    assert_eq!(
        router.answered_by("alpha.test", 20),
        ["n2".to_owned()].into()
    );

    // SIGKILL: no goodbye; the node leaves once it has been silent for the tolerance (2 s).
    let killed = Instant::now();
    n3.process.kill_group();
    router.wait_log(
        &["node left", &n3.id("beta.test"), "lease expired"],
        Duration::from_secs(10),
    );
    let gone_after = killed.elapsed();
    assert!(
        gone_after <= Duration::from_secs(5),
        "the dead node lingered {gone_after:?}"
    );
    let mut last = (0, String::new());
    let unrouted = wait::poll_within(Duration::from_secs(10), || {
        last = router.get("beta.test");
        (last.0 == 503 && last.1.contains("no pool for host")).then_some(())
    });
    if let Err(e) = unrouted {
        panic!("beta.test no longer routed: {e}; still {last:?}");
    }
    assert_eq!(
        router.answered_by("alpha.test", 5),
        ["n2".to_owned()].into()
    );
}

#[test]
fn signed_uwsgi_subscriptions_are_accepted_and_forged_or_unsigned_ones_refused() {
    let dir = temp_dir("subscription-signed");
    let keys = dir.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    let node_key = dir.path().join("node.key");
    let forger_key = dir.path().join("forger.key");
    openssl(&["genrsa", "-out", node_key.to_str().unwrap(), "2048"]);
    openssl(&["genrsa", "-out", forger_key.to_str().unwrap(), "2048"]);
    let public = keys.join("secure.test.pem");
    openssl(&[
        "rsa",
        "-in",
        node_key.to_str().unwrap(),
        "-pubout",
        "-out",
        public.to_str().unwrap(),
    ]);
    let mut router = Router::start(dir.path(), &format!("key_dir = \"{}\"\n", keys.display()));
    let sub = router.subscribe;
    let signed_by = |key: &Path| format!("{sub}:secure.test,0,SHA1:{}", key.display());
    let good = UwsgiNode::spawn("good", dir.path(), &signed_by(&node_key), &[]);
    let forger = UwsgiNode::spawn("forger", dir.path(), &signed_by(&forger_key), &[]);
    let unsigned = UwsgiNode::spawn("unsigned", dir.path(), &format!("{sub}:secure.test"), &[]);
    router.wait_routed("secure.test", &[&good]);

    let forged = forger.addr.to_string();
    router.wait_log(&["subscription refused", &forged, "bad_signature"], READY);
    let plain = unsigned.addr.to_string();
    router.wait_log(&["subscription refused", &plain, "unsigned"], READY);
    assert_eq!(
        router.answered_by("secure.test", 20),
        ["good".to_owned()].into()
    );
    for refused in [&forger, &unsigned] {
        assert!(
            !router
                .log()
                .contains(&format!("node={}", refused.id("secure.test"))),
            "{} joined:\n{}",
            refused.name,
            router.log()
        );
    }
    // A signed unsubscribe differs from the node's last subscribe only outside the signature;
    // uWSGI dates it a second ahead, so it is not taken for a replay.
    good.interrupt();
    router.wait_log(
        &["node left", &good.id("secure.test"), "unsubscribed"],
        Duration::from_secs(10),
    );
}
