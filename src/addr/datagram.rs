//! Where a subscription socket binds: UDP `ip:port`, or a UNIX datagram socket path (with or
//! without `unix:`, as uWSGI's `--subscribe-to /path:key` writes it).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

/// Where a subscription socket binds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DatagramAddr {
    /// UDP: `127.0.0.1:2626`, `[::1]:2626`.
    Udp(SocketAddr),
    /// UNIX datagram socket: `unix:/run/routerd/subscribe.sock` (or the bare path, as uWSGI).
    Unix(PathBuf),
}

/// An address that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a subscription address: use ip:port (UDP) or unix:/path/to.sock")]
pub struct BadDatagramAddr(String);

impl FromStr for DatagramAddr {
    type Err = BadDatagramAddr;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let path = s.strip_prefix("unix:").unwrap_or(s);
        if path.starts_with('/') {
            return Ok(Self::Unix(path.into()));
        }
        s.parse()
            .map(Self::Udp)
            .map_err(|_| BadDatagramAddr(s.to_owned()))
    }
}

impl fmt::Display for DatagramAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Udp(a) => write!(f, "{a}"),
            Self::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_udp_and_unix_addresses() {
        assert_eq!(
            "127.0.0.1:2626".parse::<DatagramAddr>().unwrap(),
            DatagramAddr::Udp("127.0.0.1:2626".parse().unwrap())
        );
        assert_eq!(
            "[::1]:2626".parse::<DatagramAddr>().unwrap(),
            DatagramAddr::Udp("[::1]:2626".parse().unwrap())
        );
        for unix in ["unix:/run/x.sock", "/run/x.sock"] {
            assert_eq!(
                unix.parse::<DatagramAddr>().unwrap(),
                DatagramAddr::Unix("/run/x.sock".into())
            );
        }
        for bad in ["", "localhost:2626", "unix:relative", "2626", "127.0.0.1"] {
            assert!(bad.parse::<DatagramAddr>().is_err(), "{bad}");
        }
    }
}
