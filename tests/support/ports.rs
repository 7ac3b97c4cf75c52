//! Loopback ports for processes that must be told theirs up front (nginx, uWSGI, a Prometheus):
//! one that was free a moment ago, and whether an address accepts connections now.

use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

/// A loopback TCP port that was free a moment ago (bound to port 0, then released).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// `127.0.0.1` and a [`free_port`].
pub fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// A loopback UDP address that was free a moment ago.
pub fn free_udp_addr() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind udp 127.0.0.1:0");
    socket.local_addr().expect("local_addr")
}

/// Whether a TCP connect to `addr` succeeds now.
pub fn accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}
