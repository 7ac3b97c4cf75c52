//! The files an operator installs on hosts, checked by the tools that will read them:
//! `deploy/systemd/*` by `systemd-analyze` (syntax, executables, hardening), uWSGI's behaviour
//! that `uwsgi@.service` relies on (Type=notify, SIGTERM with die-on-term), `deploy/uwsgi/app.ini`
//! by uWSGI in strict mode (and its socket and stats agreeing with `deploy/agent/app.toml`), and
//! `deploy/nginx/uwsgi-router.conf` by `nginx -t`. Needs systemd-analyze, uWSGI, Django and
//! nginx: `bash tests/run.sh` installs them.

#[allow(dead_code)]
#[path = "real_stack/procs.rs"]
mod procs;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The units under test, with `app` as the instance name of the templates.
const UNITS: [&str; 3] = [
    "routerd.service",
    "uwsgi@app.service",
    "router-agent@app.service",
];

/// `systemd-analyze verify` on the units, in a temp dir where `/usr/local/bin/` (where the units
/// expect the release binaries) is replaced by a directory holding this build's binaries: verify
/// checks that every Exec*= command exists. Warnings fail the test too, since verify itself
/// exits 0 on unknown keys.
#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    let dir = units_with_binaries();
    let out = run(Command::new(systemd_analyze())
        .args(["verify", "--man=no"])
        .args(UNITS)
        .current_dir(dir.path()));
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "systemd-analyze verify {UNITS:?}: {}",
        said(&out)
    );
}

/// routerd and the agent run sandboxed: `systemd-analyze security` rates their exposure 2.0 or
/// lower ("OK" is below 4.0; an unhardened service rates about 9.6).
#[test]
fn routerd_and_agent_units_are_hardened() {
    let dir = units_with_binaries();
    for unit in ["routerd.service", "router-agent@app.service"] {
        let out = run(Command::new(systemd_analyze())
            .args(["security", "--offline=true", "--no-pager", unit])
            .current_dir(dir.path()));
        let text = String::from_utf8_lossy(&out.stdout);
        let exposure: f64 = text
            .lines()
            .find_map(|l| l.split_once(&format!("Overall exposure level for {unit}: ")))
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no exposure level for {unit}: {}", said(&out)));
        assert!(
            exposure <= 2.0,
            "{unit} exposure {exposure} (want <= 2.0):\n{text}"
        );
    }
}

/// `uwsgi@.service` is `Type=notify`: systemd waits for READY=1, so the agent (ordered after
/// it) starts once the app is loaded. Debian's uWSGI sends it to $NOTIFY_SOCKET; without it,
/// `systemctl start` would hang. And `KillSignal=SIGTERM` with die-on-term stops uWSGI.
#[test]
fn uwsgi_tells_systemd_it_is_ready_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let notify_path = dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let port = procs::free_port();
    let mut cmd = Command::new(procs::find_program("uwsgi"));
    cmd.args(["--plugin", "python3", "--master", "--processes", "1"])
        .args(["--die-on-term", "--need-app"])
        .args(["--socket", &format!("127.0.0.1:{port}")])
        .arg("--pidfile")
        .arg(dir.path().join("uwsgi.pid"))
        .args(["--module", "demosite.wsgi", "--chdir"])
        .arg(repo().join("deploy/demo/site"))
        .env("NOTIFY_SOCKET", &notify_path)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let mut uwsgi = procs::Proc::spawn("uwsgi", cmd, dir.path());

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut said_so_far = String::new();
    while !said_so_far.contains("READY=1") {
        uwsgi.assert_running();
        assert!(
            Instant::now() < deadline,
            "no READY=1 from uWSGI within 60 s; it sent {said_so_far:?}\n{}",
            uwsgi.log_tail(20)
        );
        let mut buf = [0u8; 4096];
        if let Ok(n) = notify.recv(&mut buf) {
            said_so_far.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }
    // A node stops after it has served (uWSGI 2.0 may miss a SIGTERM that comes within a few
    // milliseconds of READY=1, before its master loop handles signals).
    while !serves_echo(port) {
        uwsgi.assert_running();
        assert!(
            Instant::now() < deadline,
            "READY=1 but no answer within 60 s:\n{}",
            uwsgi.log_tail(20)
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let master = std::fs::read_to_string(dir.path().join("uwsgi.pid"))
        .expect("uWSGI's pidfile")
        .trim()
        .to_owned();
    let status = Command::new("kill")
        .args(["-TERM", &master])
        .status()
        .unwrap();
    assert!(status.success(), "kill -TERM {master}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while runs(&master) {
        assert!(
            Instant::now() < deadline,
            "uWSGI still runs 20 s after SIGTERM:\n{}",
            uwsgi.log_tail(20)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !procs::accepts(([127, 0, 0, 1], port).into()),
        "uWSGI's socket still accepts after it exited"
    );
}

/// `deploy/uwsgi/app.ini` parses in uWSGI's strict mode (an unknown or misspelt option fails),
/// and the node address and stats socket it gives are the ones the example agent config
/// announces and reads; the stats socket sits in uwsgi@.service's RuntimeDirectory.
#[test]
fn uwsgi_ini_parses_strictly_and_agrees_with_the_agent_config() {
    let ini = repo().join("deploy/uwsgi/app.ini");
    let get = |option: &str| {
        let mut cmd = Command::new(procs::find_program("uwsgi"));
        // uWSGI reads every UWSGI_* variable as an option (cargo sets UWSGI_ROUTER_GIT_COMMIT),
        // and strict mode refuses the unknown ones.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("UWSGI_") {
                cmd.env_remove(key);
            }
        }
        let out = run(cmd
            .arg("--strict")
            .arg("--ini")
            .arg(&ini)
            .args(["--get", option]));
        assert!(
            out.status.success(),
            "uwsgi --strict --ini app.ini --get {option}: {}",
            said(&out)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let agent: toml::Table = std::fs::read_to_string(repo().join("deploy/agent/app.toml"))
        .unwrap()
        .parse()
        .expect("deploy/agent/app.toml is TOML");
    assert_eq!(
        get("socket"),
        agent["node"].as_str().unwrap(),
        "node address"
    );
    let stats = get("stats");
    assert_eq!(stats, agent["stats"].as_str().unwrap(), "stats socket");
    assert_eq!(get("die-on-term"), "true", "SIGTERM must stop uWSGI");

    let unit = std::fs::read_to_string(repo().join("deploy/systemd/uwsgi@.service")).unwrap();
    let runtime_dir = unit
        .lines()
        .find_map(|l| l.strip_prefix("RuntimeDirectory="))
        .expect("uwsgi@.service has a RuntimeDirectory");
    let expected = format!("/run/{}/", runtime_dir.replace("%i", "app"));
    assert!(
        stats.starts_with(&expected),
        "stats socket {stats} is not in the unit's RuntimeDirectory {expected}"
    );
}

/// `deploy/nginx/uwsgi-router.conf` is a site for nginx's http {} block: wrapped in one, with
/// Debian's uwsgi_params beside it, `nginx -t` accepts it.
#[test]
fn nginx_site_config_passes_nginx_t() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy("/etc/nginx/uwsgi_params", d.join("uwsgi_params"))
        .expect("Debian's /etc/nginx/uwsgi_params (nginx-common)");
    let site = repo().join("deploy/nginx/uwsgi-router.conf");
    let conf = format!(
        "pid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\n\
         http {{\n    access_log {d}/access.log;\n    include {site};\n}}\n",
        d = d.display(),
        site = site.display()
    );
    std::fs::write(d.join("nginx.conf"), conf).unwrap();
    let out = run(Command::new(procs::find_program("nginx"))
        .arg("-t")
        .arg("-p")
        .arg(d)
        .arg("-e")
        .arg(d.join("error.log"))
        .arg("-c")
        .arg(d.join("nginx.conf")));
    let text = said(&out);
    assert!(
        out.status.success() && text.contains("test is successful") && !text.contains("[warn]"),
        "nginx -t on {}: {text}",
        site.display()
    );
}

/// A temp dir holding the units, with `/usr/local/bin/X` pointing at this build's `X`.
fn units_with_binaries() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    for (name, exe) in [
        ("routerd", env!("CARGO_BIN_EXE_routerd")),
        ("router-agent", env!("CARGO_BIN_EXE_router-agent")),
        ("routerctl", env!("CARGO_BIN_EXE_routerctl")),
    ] {
        std::os::unix::fs::symlink(exe, bin.join(name)).unwrap();
    }
    let units = repo().join("deploy/systemd");
    let mut found = 0;
    for entry in std::fs::read_dir(&units).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text.replace("/usr/local/bin/", &format!("{}/", bin.display()));
        std::fs::write(dir.path().join(path.file_name().unwrap()), text).unwrap();
        found += 1;
    }
    assert_eq!(found, UNITS.len(), "unit files in deploy/systemd");
    dir
}

fn systemd_analyze() -> PathBuf {
    procs::find_program("systemd-analyze")
}

/// Whether uWSGI on `port` answers a uwsgi request for /echo/ with the demo site's page.
fn serves_echo(port: u16) -> bool {
    let vars = [
        ("REQUEST_METHOD", "GET"),
        ("PATH_INFO", "/echo/"),
        ("REQUEST_URI", "/echo/"),
        ("QUERY_STRING", ""),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("SERVER_NAME", "localhost"),
        ("SERVER_PORT", "80"),
        ("HTTP_HOST", "localhost"),
    ];
    let mut body = Vec::new();
    for part in vars.iter().flat_map(|(k, v)| [k, v]) {
        body.extend_from_slice(&(part.len() as u16).to_le_bytes());
        body.extend_from_slice(part.as_bytes());
    }
    let mut packet = vec![0];
    packet.extend_from_slice(&(body.len() as u16).to_le_bytes());
    packet.push(0);
    packet.extend_from_slice(&body);
    let reply = (|| -> std::io::Result<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(&packet)?;
        let mut reply = String::new();
        stream.read_to_string(&mut reply)?;
        Ok(reply)
    })();
    reply.is_ok_and(|r| r.contains("node="))
}

/// Whether process `pid` runs (a zombie, exited but not yet reaped, does not).
fn runs(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(") ")
                .is_some_and(|(_, r)| !r.starts_with('Z'))
        })
        .unwrap_or(false)
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn said(out: &Output) -> String {
    format!(
        "exit {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
