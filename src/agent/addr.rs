//! Where the agent connects on its own host: uWSGI's stats server and the node's uwsgi socket,
//! each a TCP `host:port` or a UNIX socket.

use std::fmt;
use std::io;
use std::path::PathBuf;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};

/// A local socket the agent talks to: TCP `host:port` (names resolved at each connect) or UNIX.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketTarget {
    /// `host:port`, `ip:port` or `[ipv6]:port`.
    Tcp(String),
    /// A UNIX socket path.
    Unix(PathBuf),
}

/// A connected stream of either kind.
pub(crate) trait Conn: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Conn for T {}

impl SocketTarget {
    /// A node's uwsgi socket: `host:port` or `unix:/path`.
    pub fn parse_node(s: &str) -> Result<Self, String> {
        match s.strip_prefix("unix:") {
            Some(path) if path.starts_with('/') => Ok(Self::Unix(path.into())),
            Some(_) => Err(format!("{s:?}: a UNIX socket needs an absolute path")),
            None => parse_host_port(s).map(|()| Self::Tcp(s.to_owned())),
        }
    }

    /// A stats server: `host:port`, `unix:/path`, or a bare path (as uWSGI's `--stats` takes it).
    pub fn parse_stats(s: &str) -> Result<Self, String> {
        if s.contains('/') && !s.starts_with("unix:") {
            return Ok(Self::Unix(s.into()));
        }
        Self::parse_node(s).map_err(|_| format!("{s:?} is neither host:port nor a socket path"))
    }

    /// Connects (no timeout here: callers bound the whole exchange).
    pub(crate) async fn connect(&self) -> io::Result<Box<dyn Conn>> {
        Ok(match self {
            Self::Tcp(a) => {
                let s = TcpStream::connect(a.as_str()).await?;
                s.set_nodelay(true)?;
                Box::new(s)
            }
            Self::Unix(p) => Box::new(UnixStream::connect(p).await?),
        })
    }
}

impl fmt::Display for SocketTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(a) => f.write_str(a),
            Self::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// Checks `host:port` shape: a non-empty host (bracketed for IPv6) and a port number.
fn parse_host_port(s: &str) -> Result<(), String> {
    let bad = || format!("{s:?} is not host:port or unix:/path");
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let host_ok = match host.strip_prefix('[') {
        Some(v6) => v6
            .strip_suffix(']')
            .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok()),
        None => !host.is_empty() && !host.contains([':', '/', ' ']),
    };
    match (host_ok, port.parse::<u16>()) {
        (true, Ok(p)) if p > 0 => Ok(()),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::SocketTarget;

    #[test]
    fn node_addresses_are_tcp_or_unix() {
        assert_eq!(
            SocketTarget::parse_node("10.0.0.5:3031"),
            Ok(SocketTarget::Tcp("10.0.0.5:3031".into()))
        );
        assert!(SocketTarget::parse_node("[fd00::5]:3031").is_ok());
        assert!(SocketTarget::parse_node("app-3.internal:3031").is_ok());
        assert_eq!(
            SocketTarget::parse_node("unix:/run/uwsgi/app.sock"),
            Ok(SocketTarget::Unix("/run/uwsgi/app.sock".into()))
        );
        for bad in [
            "",
            "3031",
            "host:",
            "host:0",
            ":3031",
            "fd00::5:3031",
            "unix:rel.sock",
        ] {
            assert!(SocketTarget::parse_node(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn stats_address_may_be_a_bare_path() {
        assert_eq!(
            SocketTarget::parse_stats("/run/uwsgi/stats.sock"),
            Ok(SocketTarget::Unix("/run/uwsgi/stats.sock".into()))
        );
        assert_eq!(
            SocketTarget::parse_stats("127.0.0.1:9191")
                .unwrap()
                .to_string(),
            "127.0.0.1:9191"
        );
        assert!(SocketTarget::parse_stats("nonsense").is_err());
    }
}
