//! Client-facing listeners (TCP v4/v6 and UNIX) and their accept loop.

use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::http::{serve_connection, ConnInfo};
use super::session::{self, Peer};
use super::SharedDispatch;
use crate::addr::ListenAddr;

/// What a listener's clients speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Front {
    /// uwsgi packets, one request per connection (nginx's `uwsgi_pass`).
    Uwsgi,
    /// HTTP/1.1 with keep-alive (nginx's `proxy_pass`, any load balancer).
    Http,
}

impl Front {
    /// Its name in logs and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            Self::Uwsgi => "uwsgi",
            Self::Http => "http",
        }
    }
}

/// A bound listener.
#[derive(Debug)]
pub enum Listener {
    /// TCP.
    Tcp(TcpListener),
    /// UNIX stream socket; the file is removed when the listener is dropped.
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// Binds `addr`. A stale UNIX socket file (nobody listening) is replaced; a live one is an error.
    pub async fn bind(addr: &ListenAddr, backlog: u32, unix_mode: u32) -> io::Result<Self> {
        match addr {
            ListenAddr::Tcp(a) => {
                let socket = if a.is_ipv4() {
                    TcpSocket::new_v4()?
                } else {
                    TcpSocket::new_v6()?
                };
                socket.set_reuseaddr(true)?;
                // Accepted sockets inherit it: one setsockopt per listener, not per client.
                socket.set_nodelay(true)?;
                socket.bind(*a)?;
                Ok(Self::Tcp(socket.listen(backlog)?))
            }
            ListenAddr::Unix(path) => {
                if path.exists() {
                    if UnixStream::connect(path).await.is_ok() {
                        return Err(io::Error::new(
                            io::ErrorKind::AddrInUse,
                            format!("{} is in use by a running process", path.display()),
                        ));
                    }
                    std::fs::remove_file(path)?;
                }
                let listener = UnixListener::bind(path)?;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(unix_mode))?;
                Ok(Self::Unix(listener, path.clone()))
            }
        }
    }

    /// The bound address, for logs (a TCP port of 0 is resolved to the real one).
    pub fn local_addr(&self) -> String {
        match self {
            Self::Tcp(l) => l
                .local_addr()
                .map_or_else(|e| e.to_string(), |a| a.to_string()),
            Self::Unix(_, p) => format!("unix:{}", p.display()),
        }
    }

    /// Accepts clients speaking `front` until `shutdown`, each session a task on `tracker`. A connection permit is
    /// taken before each accept, so beyond `limits` clients wait in the kernel backlog.
    pub async fn serve(
        self,
        front: Front,
        dispatch: SharedDispatch,
        limits: Arc<Semaphore>,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) {
        loop {
            let permit = tokio::select! {
                p = limits.clone().acquire_owned() => p.expect("the connection semaphore is never closed"),
                () = shutdown.cancelled() => break,
            };
            let accepted = tokio::select! {
                a = self.accept() => a,
                () = shutdown.cancelled() => break,
            };
            let (dispatch, shutdown) = (dispatch.clone(), shutdown.clone());
            match (accepted, front) {
                (Ok(Accepted::Tcp(stream, peer)), Front::Uwsgi) => {
                    tracker.spawn(session::run(
                        stream,
                        Peer::Tcp(peer),
                        dispatch,
                        shutdown,
                        permit,
                    ));
                }
                (Ok(Accepted::Unix(stream)), Front::Uwsgi) => {
                    tracker.spawn(session::run(stream, Peer::Unix, dispatch, shutdown, permit));
                }
                (Ok(Accepted::Tcp(stream, peer)), Front::Http) => {
                    let conn = ConnInfo {
                        peer: Some(peer),
                        local: stream.local_addr().ok(),
                    };
                    let peer = Peer::Tcp(peer);
                    tracker.spawn(serve_connection(
                        stream, conn, peer, dispatch, shutdown, permit,
                    ));
                }
                (Ok(Accepted::Unix(stream)), Front::Http) => {
                    let conn = ConnInfo {
                        peer: None,
                        local: None,
                    };
                    tracker.spawn(serve_connection(
                        stream,
                        conn,
                        Peer::Unix,
                        dispatch,
                        shutdown,
                        permit,
                    ));
                }
                (Err(e), _) => accept_failed(e).await,
            }
        }
        tracing::info!(listener = %self.local_addr(), "stopped accepting");
    }

    async fn accept(&self) -> io::Result<Accepted> {
        match self {
            Self::Tcp(l) => l.accept().await.map(|(s, p)| Accepted::Tcp(s, p)),
            Self::Unix(l, _) => l.accept().await.map(|(s, _)| Accepted::Unix(s)),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Self::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

enum Accepted {
    Tcp(tokio::net::TcpStream, SocketAddr),
    Unix(UnixStream),
}

/// Running out of file descriptors is waited out, never fatal; a client that left before we
/// accepted it is no news.
async fn accept_failed(e: io::Error) {
    match e.raw_os_error() {
        Some(libc_emfile) if libc_emfile == 24 || libc_emfile == 23 => {
            tracing::warn!(error = %e, "accept failed: out of file descriptors; raise LimitNOFILE or lower limits.max_connections");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        _ => tracing::debug!(error = %e, "accept failed"),
    }
}
