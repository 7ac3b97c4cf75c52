//! Host names as routes match them: a route's `host` pattern, the split of `host:port`, and a
//! subscription key read as the exact host of a route.

/// A `host` pattern of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// `example.com` or `example.com:8080`.
    Exact(String, Option<u16>),
    /// `*.example.com`: any name ending in `.example.com` (not `example.com` itself, as nginx).
    Wildcard(String, Option<u16>),
}

/// A host pattern that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadHostPattern {
    /// The part after the last `:` is digits, but no port.
    #[error("{0:?} has a bad port")]
    Port(String),
    /// Characters or a length no host name has.
    #[error("{0:?} is not a host pattern: use example.com, *.example.com or example.com:8080")]
    Host(String),
}

impl HostPattern {
    /// Parses and lowercases a pattern, explaining what is wrong with a bad one.
    pub fn parse(s: &str) -> Result<Self, BadHostPattern> {
        let (host, port) = split_port(s.as_bytes());
        let port = match port {
            Some(p) => Some(
                std::str::from_utf8(p)
                    .ok()
                    .and_then(|p| p.parse::<u16>().ok())
                    .ok_or_else(|| BadHostPattern::Port(s.to_owned()))?,
            ),
            None => None,
        };
        let host = std::str::from_utf8(host)
            .unwrap_or_default()
            .to_ascii_lowercase();
        let (wild, name) = match host.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, host.as_str()),
        };
        let ok = !name.is_empty()
            && name.len() <= 253
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._[]:".contains(c));
        if !ok {
            return Err(BadHostPattern::Host(s.to_owned()));
        }
        Ok(if wild {
            Self::Wildcard(format!(".{name}"), port)
        } else {
            Self::Exact(name.to_owned(), port)
        })
    }
}

/// Splits `host[:port]` and `[v6]:port`; the port is only split off when it is all digits.
pub fn split_port(h: &[u8]) -> (&[u8], Option<&[u8]>) {
    let colon = if h.first() == Some(&b'[') {
        h.iter()
            .position(|&c| c == b']')
            .and_then(|e| (h.get(e + 1) == Some(&b':')).then_some(e + 1))
    } else {
        h.iter().rposition(|&c| c == b':')
    };
    match colon {
        Some(i) if i + 1 < h.len() && h[i + 1..].iter().all(u8::is_ascii_digit) => {
            (&h[..i], Some(&h[i + 1..]))
        }
        _ => (h, None),
    }
}

/// A subscription key as a route host: lowercase `name` or `name:port`, as a created pool and
/// its route are named; `None` when it cannot be one (a wildcard, blanks, not UTF-8).
pub fn key_host(key: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(key).ok()?;
    let text = text.strip_suffix('.').unwrap_or(text);
    match HostPattern::parse(text) {
        Ok(HostPattern::Exact(name, None)) => Some(name),
        Ok(HostPattern::Exact(name, Some(port))) => Some(format!("{name}:{port}")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_lowercased_and_explained() {
        assert_eq!(
            HostPattern::parse("Shop.Example.com:8080"),
            Ok(HostPattern::Exact("shop.example.com".into(), Some(8080)))
        );
        assert_eq!(
            HostPattern::parse("*.Example.com"),
            Ok(HostPattern::Wildcard(".example.com".into(), None))
        );
        assert_eq!(
            HostPattern::parse("a.test:99999"),
            Err(BadHostPattern::Port("a.test:99999".into()))
        );
        for bad in ["", "*.", "a b", "shop!.test"] {
            assert!(
                matches!(HostPattern::parse(bad), Err(BadHostPattern::Host(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn splits_ports_of_every_host_form() {
        assert_eq!(split_port(b"a.b:80"), (&b"a.b"[..], Some(&b"80"[..])));
        assert_eq!(
            split_port(b"[::1]:8080"),
            (&b"[::1]"[..], Some(&b"8080"[..]))
        );
        assert_eq!(split_port(b"[::1]"), (&b"[::1]"[..], None));
        assert_eq!(split_port(b"a.b:"), (&b"a.b:"[..], None));
        assert_eq!(split_port(b"a.b"), (&b"a.b"[..], None));
    }

    #[test]
    fn keys_read_as_exact_hosts() {
        assert_eq!(key_host(b"Example.COM.").as_deref(), Some("example.com"));
        assert_eq!(key_host(b"a.test:8080").as_deref(), Some("a.test:8080"));
        for bad in [&b"*.example.com"[..], b"a b", b"", b"\xff"] {
            assert_eq!(key_host(bad), None, "{bad:?}");
        }
    }
}
