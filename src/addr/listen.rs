//! Where a uwsgi listener binds: TCP `ip:port` (v4 or `[v6]:port`) or a UNIX socket path.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

/// Where a listener binds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// `127.0.0.1:3031`, `[::1]:3031`, `0.0.0.0:3031`.
    Tcp(SocketAddr),
    /// `unix:/run/uwsgi-router/router.sock`.
    Unix(PathBuf),
}

/// A listen address that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a listen address: use ip:port, [ipv6]:port or unix:/path/to.sock")]
pub struct BadListenAddr(String);

impl FromStr for ListenAddr {
    type Err = BadListenAddr;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.strip_prefix("unix:") {
            Some(p) if p.starts_with('/') => Ok(Self::Unix(p.into())),
            Some(_) => Err(BadListenAddr(s.to_owned())),
            None => s
                .parse()
                .map(Self::Tcp)
                .map_err(|_| BadListenAddr(s.to_owned())),
        }
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(a) => write!(f, "{a}"),
            Self::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tcp_and_unix_and_displays_as_written() {
        for s in ["127.0.0.1:3031", "[::1]:3031", "unix:/run/r.sock"] {
            assert_eq!(s.parse::<ListenAddr>().unwrap().to_string(), s);
        }
        for bad in [
            "",
            "localhost:3031",
            "unix:relative.sock",
            "/run/r.sock",
            "3031",
        ] {
            assert!(bad.parse::<ListenAddr>().is_err(), "{bad}");
        }
    }
}
