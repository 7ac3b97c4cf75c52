//! The acknowledgement uWSGI's subscription server sends when it adds a node: one text datagram
//! to the UNIX socket the node named in `notify` (its `--notify-socket`, which logs it as
//! `[notify-socket] [subscription ack] KEY => new node: ADDRESS`).

use std::os::unix::net::UnixDatagram;
use std::path::Path;

/// Longest socket path uWSGI accepts in `notify` (it copies at most 102 bytes).
const MAX_PATH: usize = 102;

/// The acknowledgement text, as uWSGI words it.
pub fn ack_message(key: &[u8], address: &[u8]) -> Vec<u8> {
    let mut msg = b"[subscription ack] ".to_vec();
    msg.extend_from_slice(key);
    msg.extend_from_slice(b" => new node: ");
    msg.extend_from_slice(address);
    msg
}

/// Sends the acknowledgement to `socket` without blocking. Best effort, as in uWSGI: a node that
/// does not listen simply misses it.
pub(super) fn acknowledge(socket: &[u8], key: &[u8], address: &[u8]) {
    let Some(path) = std::str::from_utf8(socket)
        .ok()
        .filter(|p| p.starts_with('/') && p.len() <= MAX_PATH)
    else {
        tracing::debug!(socket = %String::from_utf8_lossy(socket), "notify is not an absolute UNIX socket path; no acknowledgement sent");
        return;
    };
    let sent = UnixDatagram::unbound().and_then(|s| {
        s.set_nonblocking(true)?;
        s.send_to(&ack_message(key, address), Path::new(path))
    });
    if let Err(e) = sent {
        tracing::debug!(socket = path, error = %e, "subscription acknowledgement not delivered");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_receives_the_ack_uwsgi_would_send() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let node = UnixDatagram::bind(&path).unwrap();
        acknowledge(
            path.to_str().unwrap().as_bytes(),
            b"example.com",
            b"127.0.0.1:3031",
        );
        let mut buf = [0u8; 256];
        let n = node.recv(&mut buf).unwrap();
        assert_eq!(
            &buf[..n],
            b"[subscription ack] example.com => new node: 127.0.0.1:3031"
        );
        // Nobody listening, or not a path: nothing happens, nothing blocks.
        acknowledge(b"/nonexistent/notify.sock", b"k", b"a");
        acknowledge(b"127.0.0.1:9", b"k", b"a");
    }
}
