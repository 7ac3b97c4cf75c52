//! Hosts as network namespaces: a switch namespace holding a bridge, and one namespace per host
//! joined to it by a veth pair, with private addresses that exist only inside them. The root
//! namespace gets no interface and no address. Names carry this process's id, so runs do not
//! collide; dropping the [`Network`] deletes every namespace, also when a test panics, and a
//! run that was killed has its namespaces (and the processes left in them) removed by the next.

use std::process::{Command, Output, Stdio};

/// Prefix of every namespace these tests make; the process id follows.
const PREFIX: &str = "uwrmh";
/// Prefix length of the hosts' addresses (one /24, inside the namespaces only).
pub(crate) const PREFIX_LEN: u8 = 24;

/// The namespaces of one test run.
pub(crate) struct Network {
    prefix: String,
    /// Created namespaces, in creation order.
    created: Vec<String>,
}

impl Network {
    /// Makes the switch and one namespace per `(host, address)`, each with `lo` and `eth0` up.
    /// Fails the test with a clear message when not root or when `ip netns` does not work.
    pub(crate) fn create(hosts: &[(&str, &str)]) -> Network {
        require_root();
        remove_stale_runs();
        let mut net = Network {
            prefix: format!("{PREFIX}{}-", std::process::id()),
            created: Vec::new(),
        };
        let sw = net.add("sw");
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &sw, "link", "set", "br0", "up"]);
        for &(host, addr) in hosts {
            let ns = net.add(host);
            let port = format!("p-{host}");
            ip(&[
                "-n", &sw, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                &ns,
            ]);
            ip(&["-n", &sw, "link", "set", &port, "master", "br0"]);
            ip(&["-n", &sw, "link", "set", &port, "up"]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/{PREFIX_LEN}"),
                "dev",
                "eth0",
            ]);
            ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        }
        net
    }

    fn add(&mut self, host: &str) -> String {
        let ns = self.ns(host);
        let out = run(&["netns", "add", &ns]);
        assert!(
            out.status.success(),
            "`ip netns add {ns}` failed: this test needs root and network namespaces \
             (iproute2): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.created.push(ns.clone());
        ns
    }

    /// The namespace of `host`.
    pub(crate) fn ns(&self, host: &str) -> String {
        format!("{}{host}", self.prefix)
    }

    /// `program` to be run inside `host`'s namespace (`ip netns exec` execs it: same pid).
    pub(crate) fn command(&self, host: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(ip_program());
        cmd.args(["netns", "exec", &self.ns(host)]).arg(program);
        cmd
    }

    /// Takes `host`'s network interface down (the host is cut off) or up again.
    pub(crate) fn set_link(&self, host: &str, up: bool) {
        let state = if up { "up" } else { "down" };
        ip(&["-n", &self.ns(host), "link", "set", "eth0", state]);
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for ns in self.created.iter().rev() {
            delete_namespace(ns);
        }
    }
}

/// Kills what still runs in `ns` (processes this test started) and deletes it.
fn delete_namespace(ns: &str) {
    let pids = run(&["netns", "pids", ns]);
    for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
        let _ = Command::new("kill")
            .args(["-KILL", pid])
            .stderr(Stdio::null())
            .status();
    }
    let out = run(&["netns", "del", ns]);
    if !out.status.success() {
        eprintln!(
            "could not delete network namespace {ns}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Deletes the namespaces of earlier runs whose process is gone (killed before its cleanup).
fn remove_stale_runs() {
    let out = run(&["netns", "list"]);
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or_default();
        if !pid.is_empty() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            delete_namespace(name);
        }
    }
}

fn require_root() {
    let uid = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m));
    assert_eq!(
        uid.ok(),
        Some(0),
        "the multi-host test makes network namespaces and must run as root (bash tests/run.sh \
         as root, or sudo)"
    );
}

/// Runs `ip ARGS`; fails the test if it fails.
fn ip(args: &[&str]) {
    let out = run(args);
    assert!(
        out.status.success(),
        "`ip {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn run(args: &[&str]) -> Output {
    Command::new(ip_program())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run `ip` (iproute2): {e}"))
}

fn ip_program() -> std::path::PathBuf {
    ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.is_file())
        .expect("`ip` is not installed: bash tests/run.sh installs iproute2")
}
