//! The files an operator installs on hosts, checked by the tools that will read them:
//! `deploy/systemd/*` by `systemd-analyze` (syntax, executables, hardening), uWSGI's behaviour
//! that `uwsgi@.service` relies on (Type=notify, SIGTERM with die-on-term), `deploy/uwsgi/app.ini`
//! by uWSGI in strict mode (and its socket and stats agreeing with `deploy/agent/app.toml`), and
//! `deploy/nginx/*.conf` by `nginx -t`. Needs systemd-analyze, uWSGI, Django and
//! nginx: `bash tests/run.sh` installs them.

mod support;

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use support::command::{run, said};
use support::nginx_check::nginx_t_accepts;
use support::ports::{accepts, free_addr};
use support::process::Process;
use support::programs::{find_program, repo_path};
use support::uwsgi_node::{direct_get, Socket};
use support::wait;

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
    let addr = free_addr();
    let mut cmd = Command::new(find_program("uwsgi"));
    cmd.args(["--plugin", "python3", "--master", "--processes", "1"])
        .args(["--die-on-term", "--need-app"])
        .args(["--socket", &addr.to_string()])
        .arg("--pidfile")
        .arg(dir.path().join("uwsgi.pid"))
        .args(["--module", "demosite.wsgi", "--chdir"])
        .arg(repo_path("deploy/demo/site"))
        .env("NOTIFY_SOCKET", &notify_path)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let mut uwsgi = Process::spawn("uwsgi", cmd, dir.path());

    let limit = Duration::from_secs(60);
    let mut said_so_far = String::new();
    uwsgi.poll_while_running("READY=1 from uWSGI", limit, || {
        let mut buf = [0u8; 4096];
        if let Ok(n) = notify.recv(&mut buf) {
            said_so_far.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        said_so_far.contains("READY=1").then_some(())
    });
    // A node stops after it has served (uWSGI 2.0 may miss a SIGTERM that comes within a few
    // milliseconds of READY=1, before its master loop handles signals).
    uwsgi.poll_while_running("an answer after READY=1", limit, || {
        let reply = direct_get(&Socket::Tcp(addr), "/echo/").ok()?;
        reply.contains("node=").then_some(())
    });

    let master = std::fs::read_to_string(dir.path().join("uwsgi.pid"))
        .expect("uWSGI's pidfile")
        .trim()
        .to_owned();
    let status = Command::new("kill")
        .args(["-TERM", &master])
        .status()
        .unwrap();
    assert!(status.success(), "kill -TERM {master}");
    let stopped = wait::poll_within(Duration::from_secs(20), || (!runs(&master)).then_some(()));
    if let Err(e) = stopped {
        panic!("uWSGI stopping on SIGTERM: {e}:\n{}", uwsgi.log_tail(20));
    }
    assert!(
        !accepts(addr),
        "uWSGI's socket still accepts after it exited"
    );
}

/// `deploy/uwsgi/app.ini` parses in uWSGI's strict mode (an unknown or misspelt option fails),
/// and the node address and stats socket it gives are the ones the example agent config
/// announces and reads; the stats socket sits in uwsgi@.service's RuntimeDirectory.
#[test]
fn uwsgi_ini_parses_strictly_and_agrees_with_the_agent_config() {
    let ini = repo_path("deploy/uwsgi/app.ini");
    let get = |option: &str| {
        let mut cmd = Command::new(find_program("uwsgi"));
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
    let agent: toml::Table = std::fs::read_to_string(repo_path("deploy/agent/app.toml"))
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

    let unit = std::fs::read_to_string(repo_path("deploy/systemd/uwsgi@.service")).unwrap();
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

/// Each site in `deploy/nginx/` (`uwsgi-router.conf`, uwsgi_pass; `uwsgi-router-http.conf`,
/// proxy_pass with keep-alive) is a site for nginx's http {} block: wrapped in one, with
/// Debian's uwsgi_params beside it, `nginx -t` accepts it without a warning.
#[test]
fn nginx_site_configs_pass_nginx_t() {
    let mut sites: Vec<PathBuf> = std::fs::read_dir(repo_path("deploy/nginx"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "conf"))
        .collect();
    sites.sort();
    let names: Vec<_> = sites.iter().filter_map(|p| p.file_name()).collect();
    assert_eq!(names, ["uwsgi-router-http.conf", "uwsgi-router.conf"]);
    for site in &sites {
        nginx_t_accepts(site);
    }
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
    let units = repo_path("deploy/systemd");
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
    find_program("systemd-analyze")
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
