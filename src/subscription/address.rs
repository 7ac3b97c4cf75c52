//! What a packet may name: the node's address (`address`) and the socket to acknowledge to
//! (`notify`), checked strictly before anything else is done with them. A packet is attacker
//! input: these bytes end up in node ids, logs, acknowledgements and connect calls.

use std::net::{IpAddr, SocketAddr};
use std::path::{Component, Path, PathBuf};

use crate::addr::NodeAddr;

/// Longest `address` accepted: a host name (253) and a port, with room to spare.
pub(super) const MAX_ADDRESS: usize = 263;
/// Longest UNIX socket path accepted: what fits `sun_path` (108 bytes, NUL included).
pub(super) const MAX_UNIX_PATH: usize = 107;
/// Longest `notify` path accepted (uWSGI copies at most 102 bytes).
pub(super) const MAX_NOTIFY_PATH: usize = 102;

/// An announced address, before it is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Announced {
    /// Where the node is, whoever sends it.
    Absolute(NodeAddr),
    /// `:PORT`, `0.0.0.0:PORT` or `[::]:PORT`: uWSGI listening on every interface, so the node
    /// is at the sender's IP. The signature does not cover the sender.
    Relative(u16),
}

/// Parses `address` as uWSGI announces it: `ip:port`, `[v6]:port`, `host:port` (DNS label
/// rules), an absolute UNIX socket path (bare, or `unix:/path`), or a relative `:port`.
/// `None` for anything else: control characters, blanks, bad names, out-of-range ports,
/// overlong values.
pub(super) fn parse_address(address: &[u8]) -> Option<Announced> {
    if address.len() > MAX_ADDRESS {
        return None;
    }
    let text = std::str::from_utf8(address).ok()?;
    let path = text.strip_prefix("unix:").unwrap_or(text);
    if path.starts_with('/') {
        return unix_path(path, MAX_UNIX_PATH)
            .map(|p| Announced::Absolute(NodeAddr::Unix(p.to_owned())));
    }
    if let Some(port) = text.strip_prefix(':') {
        return port_number(port).map(Announced::Relative);
    }
    if let Ok(ip) = text.parse::<SocketAddr>() {
        // Only the plain forms: no scope id, nothing Rust's parser may forgive.
        if ip.port() == 0 || !plain_ip_literal(text) {
            return None;
        }
        return Some(if ip.ip().is_unspecified() {
            Announced::Relative(ip.port())
        } else {
            Announced::Absolute(NodeAddr::Ip(SocketAddr::new(
                ip.ip().to_canonical(),
                ip.port(),
            )))
        });
    }
    let (host, port) = text.rsplit_once(':')?;
    let port = port_number(port)?;
    host_name(host).then(|| Announced::Absolute(NodeAddr::Dns(host.to_ascii_lowercase(), port)))
}

/// Digits, or a bracketed IPv6 literal of hex digits, `:` and `.`: what `ip:port` may hold.
fn plain_ip_literal(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_hexdigit() || b".:[]".contains(&b))
}

/// A port, 1..65535, digits only.
fn port_number(text: &str) -> Option<u16> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|&p| p != 0)
}

/// A DNS name by the label rules (RFC 1123): labels of 1..63 letters, digits and inner hyphens,
/// 253 characters at most, no trailing dot, and a last label that is not all digits (so a
/// malformed IPv4 address is not taken for a name).
pub(super) fn host_name(host: &str) -> bool {
    if host.is_empty() || host.len() > 253 {
        return false;
    }
    let labels: Vec<&str> = host.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    labels.iter().all(label_ok)
        && !labels
            .last()
            .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
}

/// An absolute path of at most `max` bytes with no control character, no empty, `.` or `..`
/// component: the form a socket path takes when nobody is playing games with it.
fn unix_path(path: &str, max: usize) -> Option<&Path> {
    let p = Path::new(path);
    let clean = path.len() <= max
        && path.len() > 1
        && !path.chars().any(char::is_control)
        && !path.contains("//")
        && !path.ends_with('/')
        && p.components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
        && !path.split('/').any(|c| c == ".");
    clean.then_some(p)
}

/// The resolved node address: a relative one is at the sender's IP.
pub(super) fn resolve(announced: Announced, sender: IpAddr) -> NodeAddr {
    match announced {
        Announced::Absolute(addr) => addr,
        Announced::Relative(port) => NodeAddr::Ip(SocketAddr::new(sender, port)),
    }
}

/// Checks a `notify` value: `Some(path)` for an absolute socket path without control
/// characters, at most [`MAX_NOTIFY_PATH`] bytes. Whether it may be written to is
/// [`notify_target`]'s business.
pub(super) fn parse_notify(notify: &[u8]) -> Option<&Path> {
    let text = std::str::from_utf8(notify).ok()?;
    if text.len() > MAX_NOTIFY_PATH || text.chars().any(char::is_control) {
        return None;
    }
    Some(Path::new(text))
}

/// Why no acknowledgement goes to a notify path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum NotifyRefused {
    /// `subscription.notify_dir` is not set: nothing is acknowledged.
    #[error("subscription.notify_dir is not set, so no acknowledgement is sent")]
    NoDir,
    /// The path (after resolving symlinks) is not a socket under `notify_dir`.
    #[error("{path:?} is not a socket under subscription.notify_dir {dir:?}{why}")]
    Outside {
        /// The path the packet named.
        path: PathBuf,
        /// The configured directory.
        dir: PathBuf,
        /// More detail, starting with `: `, or empty.
        why: String,
    },
}

/// Where an acknowledgement may go: the notify path with symlinks resolved, when that is a
/// socket inside `dir` (resolved too). The resolved path is what is written to, so a symlink
/// swapped afterwards does not redirect it.
pub(super) fn notify_target(path: &Path, dir: Option<&Path>) -> Result<PathBuf, NotifyRefused> {
    let dir = dir.ok_or(NotifyRefused::NoDir)?;
    let outside = |why: String| NotifyRefused::Outside {
        path: path.to_owned(),
        dir: dir.to_owned(),
        why,
    };
    if !path.is_absolute() || path.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(outside(String::new()));
    }
    let real_dir = dir.canonicalize().map_err(|e| outside(format!(": {e}")))?;
    let real = path.canonicalize().map_err(|e| outside(format!(": {e}")))?;
    if !real.starts_with(&real_dir) || real == real_dir {
        return Err(outside(format!(": it leads to {}", real.display())));
    }
    let is_socket = std::fs::metadata(&real).is_ok_and(|m| {
        use std::os::unix::fs::FileTypeExt;
        m.file_type().is_socket()
    });
    if !is_socket {
        return Err(outside(": not a socket".to_owned()));
    }
    Ok(real)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn absolute(a: &str) -> String {
        match parse_address(a.as_bytes()) {
            Some(Announced::Absolute(addr)) => addr.to_string(),
            other => panic!("{a:?}: {other:?}"),
        }
    }

    #[test]
    fn the_forms_uwsgi_announces_parse() {
        assert_eq!(absolute("127.0.0.1:3031"), "127.0.0.1:3031");
        assert_eq!(absolute("[::1]:3031"), "[::1]:3031");
        assert_eq!(absolute("[::ffff:10.0.0.1]:3031"), "10.0.0.1:3031");
        assert_eq!(absolute("App-1.Internal:3031"), "app-1.internal:3031");
        assert_eq!(absolute("localhost:3031"), "localhost:3031");
        assert_eq!(absolute("/run/uwsgi/app.sock"), "unix:/run/uwsgi/app.sock");
        assert_eq!(
            absolute("unix:/run/uwsgi/app.sock"),
            "unix:/run/uwsgi/app.sock"
        );
        assert_eq!(
            absolute("/run/uwsgi/café.sock"),
            "unix:/run/uwsgi/café.sock"
        );
        for relative in [":3031", "0.0.0.0:3031", "[::]:3031"] {
            assert_eq!(
                parse_address(relative.as_bytes()),
                Some(Announced::Relative(3031)),
                "{relative}"
            );
        }
    }

    #[test]
    fn junk_is_refused() {
        let long_label = format!("{}.test:80", "a".repeat(64));
        let long_name = format!("{}.test:80", ["abcdefghij"; 25].join("."));
        let long_path = format!("/run/{}", "p".repeat(103));
        let long_anything = "a".repeat(MAX_ADDRESS + 1);
        for bad in [
            &b""[..],
            b"/run/a.sock\nrouted=evil",
            b"127.0.0.1:3031\n",
            b"127.0.0.1:3031\r",
            b" 127.0.0.1:3031",
            b"127.0.0.1:3031 ",
            b"unix:/run/a\x1b[31m.sock",
            b"/run/a\x00.sock",
            b"/run/\xff.sock",
            b"/run/\xc2\x85.sock",
            b"/run//a.sock",
            b"/run/./a.sock",
            b"/run/../etc/a.sock",
            b"/run/dir/",
            b"/",
            b"unix:relative.sock",
            b"relative/a.sock",
            b"@abstract",
            long_path.as_bytes(),
            b"bad_host!:80",
            b"-lead.test:80",
            b"trail-.test:80",
            b"a..b.test:80",
            b"name.test.:80",
            long_label.as_bytes(),
            long_name.as_bytes(),
            long_anything.as_bytes(),
            b"10.0.0.999:80",
            b"10.0.0.1:0",
            b"app.test:0",
            b"app.test:65536",
            b"app.test:+80",
            b"app.test:080808",
            b"app.test",
            b":0",
            b":x",
            b"[fe80::1%2]:80",
            b"[::1]:80\t",
        ] {
            assert_eq!(
                parse_address(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(host_name("a.".repeat(126).trim_end_matches('.')));
    }

    #[test]
    fn relative_addresses_resolve_to_the_sender() {
        let sender: IpAddr = "10.1.2.3".parse().unwrap();
        let at = |a: &str| resolve(parse_address(a.as_bytes()).unwrap(), sender).to_string();
        assert_eq!(at(":3031"), "10.1.2.3:3031");
        assert_eq!(at("0.0.0.0:3031"), "10.1.2.3:3031");
        assert_eq!(at("10.9.9.9:3031"), "10.9.9.9:3031");
    }

    #[test]
    fn notify_paths_are_checked_then_confined_to_the_notify_dir() {
        assert!(parse_notify(b"/run/uwsgi/notify.sock").is_some());
        assert!(parse_notify(b"relative.sock").is_some(), "refused later");
        assert!(parse_notify(b"/run/n.sock\n").is_none());
        assert!(parse_notify(b"/run/\xff").is_none());
        assert!(parse_notify("/".repeat(103).as_bytes()).is_none());

        let dir = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let inside = dir.path().join("n.sock");
        let _listening = std::os::unix::net::UnixDatagram::bind(&inside).unwrap();
        let victim = other.path().join("v.sock");
        let _victim = std::os::unix::net::UnixDatagram::bind(&victim).unwrap();
        let link = dir.path().join("link.sock");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();

        let real_inside = inside.canonicalize().unwrap();
        assert_eq!(notify_target(&inside, Some(dir.path())), Ok(real_inside));
        assert_eq!(notify_target(&inside, None), Err(NotifyRefused::NoDir));
        let escape = dir
            .path()
            .join("..")
            .join(other.path().file_name().unwrap())
            .join("v.sock");
        for refused in [
            victim.as_path(),
            escape.as_path(),
            link.as_path(),
            file.as_path(),
            dir.path(),
            Path::new("n.sock"),
            &dir.path().join("missing.sock"),
        ] {
            assert!(
                matches!(
                    notify_target(refused, Some(dir.path())),
                    Err(NotifyRefused::Outside { .. })
                ),
                "{}",
                refused.display()
            );
        }
    }
}
