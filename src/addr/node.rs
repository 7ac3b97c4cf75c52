//! Where a node listens: a TCP `host:port` (IP literal or DNS name) or a UNIX socket path.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

/// A node's uwsgi socket.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NodeAddr {
    /// An IP literal and port, connected to without a lookup.
    Ip(SocketAddr),
    /// A DNS name and port, resolved at each connect so address changes are followed.
    Dns(String, u16),
    /// A UNIX stream socket.
    Unix(PathBuf),
}

/// An address that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a node address: use host:port, [ipv6]:port or unix:/path/to.sock")]
pub struct BadNodeAddr(pub String);

impl FromStr for NodeAddr {
    type Err = BadNodeAddr;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadNodeAddr(s.to_owned());
        if let Some(path) = s.strip_prefix("unix:") {
            return if path.starts_with('/') {
                Ok(Self::Unix(path.into()))
            } else {
                Err(bad())
            };
        }
        if s.starts_with('/') {
            return Ok(Self::Unix(s.into()));
        }
        if let Ok(ip) = s.parse::<SocketAddr>() {
            return Ok(Self::Ip(ip));
        }
        let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let valid = !host.is_empty()
            && host.len() <= 253
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if !valid || port == 0 {
            return Err(bad());
        }
        Ok(Self::Dns(host.to_ascii_lowercase(), port))
    }
}

impl fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(a) => write!(f, "{a}"),
            Self::Dns(h, p) => write!(f, "{h}:{p}"),
            Self::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!(
            "127.0.0.1:3031".parse(),
            Ok(NodeAddr::Ip("127.0.0.1:3031".parse().unwrap()))
        );
        assert_eq!(
            "[::1]:3031".parse(),
            Ok(NodeAddr::Ip("[::1]:3031".parse().unwrap()))
        );
        assert_eq!(
            "App-1.Local:80".parse(),
            Ok(NodeAddr::Dns("app-1.local".into(), 80))
        );
        assert_eq!(
            "unix:/run/app.sock".parse(),
            Ok(NodeAddr::Unix("/run/app.sock".into()))
        );
        assert_eq!(
            "/run/app.sock".parse(),
            Ok(NodeAddr::Unix("/run/app.sock".into()))
        );
        for bad in [
            "",
            "host",
            "host:",
            "host:99999",
            "unix:relative",
            "a b:1",
            "::1:80x",
        ] {
            assert!(bad.parse::<NodeAddr>().is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn displays_as_parsed() {
        for s in [
            "127.0.0.1:3031",
            "[::1]:3031",
            "app.local:80",
            "unix:/run/app.sock",
        ] {
            assert_eq!(s.parse::<NodeAddr>().unwrap().to_string(), s);
        }
    }
}
