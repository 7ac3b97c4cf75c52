//! The datagram sockets uWSGI nodes send subscriptions to (UDP, and UNIX datagram sockets as
//! uWSGI's `--subscribe-to /path:key`), and the receive loop that hands datagrams to the handler.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::{UdpSocket, UnixDatagram};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::packet::MAX_DATAGRAM;
use crate::addr::DatagramAddr;
use crate::metrics;

/// Who sent a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatagramSource {
    /// A UDP peer.
    Udp(SocketAddr),
    /// A process on this host, through a UNIX socket.
    Unix,
}

impl DatagramSource {
    /// The sender's IP: a UNIX socket peer is local.
    pub fn ip(&self) -> IpAddr {
        match self {
            Self::Udp(a) => a.ip().to_canonical(),
            Self::Unix => IpAddr::from([127, 0, 0, 1]),
        }
    }
}

impl fmt::Display for DatagramSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Udp(a) => write!(f, "{a}"),
            Self::Unix => f.write_str("unix"),
        }
    }
}

/// A bound subscription socket; a UNIX socket's file is removed when it is dropped.
#[derive(Debug)]
pub(super) enum DatagramSocket {
    Udp(UdpSocket),
    Unix(UnixDatagram, PathBuf),
}

impl DatagramSocket {
    /// Binds `addr`. A stale UNIX socket file (nobody bound to it) is replaced; a live one is an
    /// error. `unix_mode` sets who may send (the nodes' user must be able to write).
    pub(super) fn bind(addr: &DatagramAddr, unix_mode: u32) -> io::Result<Self> {
        match addr {
            DatagramAddr::Udp(a) => {
                let std = std::net::UdpSocket::bind(a)?;
                std.set_nonblocking(true)?;
                Ok(Self::Udp(UdpSocket::from_std(std)?))
            }
            DatagramAddr::Unix(path) => {
                if path.exists() {
                    let probe = std::os::unix::net::UnixDatagram::unbound()?;
                    if probe.connect(path).is_ok() {
                        return Err(io::Error::new(
                            io::ErrorKind::AddrInUse,
                            format!("{} is in use by a running process", path.display()),
                        ));
                    }
                    std::fs::remove_file(path)?;
                }
                let socket = UnixDatagram::bind(path)?;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(unix_mode))?;
                Ok(Self::Unix(socket, path.clone()))
            }
        }
    }

    /// The bound address, `unix:/path` for UNIX sockets.
    pub(super) fn local_addr(&self) -> String {
        match self {
            Self::Udp(s) => s
                .local_addr()
                .map_or_else(|_| "udp".to_owned(), |a| a.to_string()),
            Self::Unix(_, p) => format!("unix:{}", p.display()),
        }
    }

    async fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, DatagramSource)> {
        match self {
            Self::Udp(s) => {
                let (n, from) = s.recv_from(buf).await?;
                Ok((n, DatagramSource::Udp(from)))
            }
            Self::Unix(s, _) => Ok((s.recv(buf).await?, DatagramSource::Unix)),
        }
    }

    /// Receives datagrams into `queue` until `shutdown`. A datagram that does not fit the buffer
    /// is passed on truncated to one byte over the limit, which the parser refuses as oversize.
    /// When the queue is full the datagram is dropped and counted, as the kernel would.
    pub(super) async fn receive(
        self,
        queue: mpsc::Sender<(Bytes, DatagramSource)>,
        shutdown: CancellationToken,
    ) {
        let mut buf = vec![0u8; MAX_DATAGRAM + 1];
        loop {
            let received = tokio::select! {
                r = self.recv(&mut buf) => r,
                () = shutdown.cancelled() => return,
            };
            match received {
                Ok((n, from)) => {
                    let datagram = Bytes::copy_from_slice(&buf[..n]);
                    if queue.try_send((datagram, from)).is_err() {
                        metrics::subscription_packet("overload");
                        tracing::debug!(%from, "subscription queue full; datagram dropped");
                    }
                }
                Err(e) => {
                    tracing::warn!(socket = %self.local_addr(), error = %e, "receiving a subscription failed");
                    // A persistent error must not spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

impl Drop for DatagramSocket {
    fn drop(&mut self) {
        if let Self::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stale_unix_socket_is_replaced_and_a_live_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub.sock");
        // What a crashed router leaves behind: the file, with nobody bound to it.
        drop(std::os::unix::net::UnixDatagram::bind(&path).unwrap());
        let addr = DatagramAddr::Unix(path.clone());
        let live = DatagramSocket::bind(&addr, 0o600).unwrap();
        let err = DatagramSocket::bind(&addr, 0o600).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        assert_eq!(live.local_addr(), format!("unix:{}", path.display()));
        drop(live);
        assert!(!path.exists(), "the socket file goes with the socket");
    }
}
