//! routerd under systemd (`Type=notify`): READY=1 once it serves, RELOADING=1 then READY=1
//! around a reload (refused or not), STOPPING=1 when it begins to shut down, each a datagram on
//! NOTIFY_SOCKET; and the last reload's result and time in /metrics.

mod support;

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use support::binary::{logged_addr, routerd_command};
use support::process::Process;

/// The next notification, within `limit`.
fn next(socket: &UnixDatagram, limit: Duration) -> String {
    socket.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).expect("a notification in time");
    String::from_utf8_lossy(&buf[..n]).trim().to_owned()
}

#[test]
fn routerd_tells_systemd_when_it_is_ready_reloading_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    let config = dir.path().join("routerd.toml");
    std::fs::write(
        &config,
        "[listen]\nuwsgi = [\"127.0.0.1:0\"]\n[control]\nlisten = \"\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let mut cmd = routerd_command(&config);
    cmd.env("NOTIFY_SOCKET", &socket_path);
    let mut routerd = Process::spawn("routerd", cmd, dir.path());

    assert_eq!(next(&socket, Duration::from_secs(10)), "READY=1");
    assert!(
        routerd.log().contains("listening for uwsgi clients"),
        "ready only once it listens: {}",
        routerd.log()
    );
    let metrics = logged_addr(&routerd.log(), "serving /metrics").expect("a metrics address");
    assert_eq!(
        gauge(metrics, "uwsgi_router_config_last_reload_success"),
        1.0
    );
    assert_eq!(
        gauge(metrics, "uwsgi_router_config_last_reload_timestamp_seconds"),
        0.0
    );
    routerd.signal("HUP");
    assert_eq!(next(&socket, Duration::from_secs(10)), "RELOADING=1");
    assert_eq!(next(&socket, Duration::from_secs(10)), "READY=1");
    assert_eq!(
        gauge(metrics, "uwsgi_router_config_last_reload_success"),
        1.0
    );
    // A refused reload: ready again (the old config serves), and the gauge says it failed.
    std::fs::write(&config, "[listen]\nuwsgi = \"not a list\"\n").unwrap();
    routerd.signal("HUP");
    assert_eq!(next(&socket, Duration::from_secs(10)), "RELOADING=1");
    assert_eq!(next(&socket, Duration::from_secs(10)), "READY=1");
    assert_eq!(
        gauge(metrics, "uwsgi_router_config_last_reload_success"),
        0.0
    );
    assert!(gauge(metrics, "uwsgi_router_config_last_reload_timestamp_seconds") > 1.7e9);
    routerd.signal("TERM");
    assert_eq!(next(&socket, Duration::from_secs(10)), "STOPPING=1");
    assert!(routerd.wait_exit(Duration::from_secs(10)).success());
}

/// The value of the unlabelled gauge `name` on routerd's /metrics at `addr`.
fn gauge(addr: std::net::SocketAddr, name: &str) -> f64 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}
