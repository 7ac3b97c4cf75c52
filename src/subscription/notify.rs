//! The acknowledgement uWSGI's subscription server sends when it adds a node: one text datagram
//! to the UNIX socket the node named in `notify` (its `--notify-socket`, which logs it as
//! `[notify-socket] [subscription ack] KEY => new node: ADDRESS`). routerd sends it only to a
//! socket under `subscription.notify_dir` (see [`super::address::notify_target`]): the packet
//! names the path, and anyone can send a packet.

use std::os::unix::net::UnixDatagram;
use std::path::Path;

/// The acknowledgement text, as uWSGI words it.
pub fn ack_message(key: &[u8], address: &[u8]) -> Vec<u8> {
    let mut msg = b"[subscription ack] ".to_vec();
    msg.extend_from_slice(key);
    msg.extend_from_slice(b" => new node: ");
    msg.extend_from_slice(address);
    msg
}

/// Sends the acknowledgement to `socket`, a path already confined to the notify directory,
/// without blocking. Best effort, as in uWSGI: a node that does not listen simply misses it.
pub(super) fn acknowledge(socket: &Path, key: &[u8], address: &[u8]) {
    let sent = UnixDatagram::unbound().and_then(|s| {
        s.set_nonblocking(true)?;
        s.send_to(&ack_message(key, address), socket)
    });
    if let Err(e) = sent {
        tracing::debug!(socket = %socket.display(), error = %e, "subscription acknowledgement not delivered");
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
        acknowledge(&path, b"example.com", b"127.0.0.1:3031");
        let mut buf = [0u8; 256];
        let n = node.recv(&mut buf).unwrap();
        assert_eq!(
            &buf[..n],
            b"[subscription ack] example.com => new node: 127.0.0.1:3031"
        );
        // Nobody listening: nothing happens, nothing blocks.
        acknowledge(Path::new("/nonexistent/notify.sock"), b"k", b"a");
    }
}
