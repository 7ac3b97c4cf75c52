//! routerd under systemd (`Type=notify`): READY=1 once it serves, RELOADING=1 then READY=1
//! around a reload, STOPPING=1 when it begins to shut down, each a datagram on NOTIFY_SOCKET.

mod support;

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use support::binary::routerd_command;
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
        "[listen]\nuwsgi = [\"127.0.0.1:0\"]\n[control]\nlisten = \"\"\n[metrics]\nlisten = \"\"\n",
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
    routerd.signal("HUP");
    assert_eq!(next(&socket, Duration::from_secs(10)), "RELOADING=1");
    assert_eq!(next(&socket, Duration::from_secs(10)), "READY=1");
    routerd.signal("TERM");
    assert_eq!(next(&socket, Duration::from_secs(10)), "STOPPING=1");
    assert!(routerd.wait_exit(Duration::from_secs(10)).success());
}
