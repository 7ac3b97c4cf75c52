//! One `routers` entry (`--router`): a router's URL, or a DNS name whose addresses are the routers
//! (`dns:///NAME:PORT`, gRPC's naming), parsed once, with errors that say what to write.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::config::Problems;

/// The accepted spellings, for error messages.
const SPELLINGS: &str =
    "http://HOST:PORT, https://HOST:PORT, dns:///NAME:PORT or dns+https:///NAME:PORT";

/// Where the agent finds one router, or a set of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouterTarget {
    /// `http://host:port` or `https://host:port`: one router, one session.
    Url(String),
    /// `dns:///NAME:PORT` or `dns+https:///NAME:PORT`: one session per address of NAME,
    /// re-resolved each `router_resolve_interval`.
    Dns(DnsName),
}

/// A DNS name whose A and AAAA records are routers, all on one control port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsName {
    /// The name, resolved with the system resolver (`/etc/hosts`, then DNS).
    pub host: String,
    /// The routers' control port.
    pub port: u16,
    /// `dns+https`: TLS to each address, the certificate verified against `host`.
    pub tls: bool,
}

impl RouterTarget {
    /// Parses one `--router` value.
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Some(rest) = s.strip_prefix("dns+https:") {
            return DnsName::parse(s, rest, true).map(Self::Dns);
        }
        if let Some(rest) = s.strip_prefix("dns:") {
            return DnsName::parse(s, rest, false).map(Self::Dns);
        }
        match s.split_once("://") {
            Some(("http" | "https", rest)) if !rest.is_empty() && !rest.starts_with('/') => {
                match tonic::transport::Endpoint::from_shared(s.to_owned()) {
                    Ok(_) => Ok(Self::Url(s.to_owned())),
                    Err(_) => Err(format!("{s:?} is not a valid URL")),
                }
            }
            _ => Err(format!("{s:?} is not {SPELLINGS}")),
        }
    }

    /// True when the routers are reached over TLS (and so need `tls_ca`).
    pub fn is_tls(&self) -> bool {
        match self {
            Self::Url(url) => url.starts_with("https://"),
            Self::Dns(name) => name.tls,
        }
    }
}

impl DnsName {
    /// `rest` is what follows `dns:` or `dns+https:` in `whole`.
    fn parse(whole: &str, rest: &str, tls: bool) -> Result<Self, String> {
        let scheme = if tls { "dns+https" } else { "dns" };
        let Some(target) = rest.strip_prefix("///") else {
            if rest.starts_with("//") {
                return Err(format!(
                    "{whole:?}: a DNS server in the URL (dns://SERVER/...) is not supported, \
                     the system resolver is used: write {scheme}:///NAME:PORT"
                ));
            }
            return Err(format!(
                "{whole:?}: write {scheme}:///NAME:PORT (three slashes: no DNS server is named)"
            ));
        };
        let Some((host, port)) = target.rsplit_once(':') else {
            return Err(format!(
                "{whole:?} has no port: write {scheme}:///{target}:PORT with the routers' \
                 control port (e.g. 9032)"
            ));
        };
        let port = match port.parse::<u16>() {
            Ok(p) if p != 0 => p,
            _ => {
                return Err(format!(
                    "{whole:?}: {port:?} is not a port (1 to 65535): write {scheme}:///NAME:PORT"
                ))
            }
        };
        if !valid_name(host) {
            let one = if tls { "https" } else { "http" };
            return Err(format!(
                "{whole:?}: {host:?} is not a DNS name (labels of letters, digits, - and _, \
                 joined by dots); for a single router write {one}://HOST:PORT"
            ));
        }
        Ok(Self {
            host: host.to_owned(),
            port,
            tls,
        })
    }

    /// The URL of the router at `ip`, one of this name's addresses.
    pub fn url(&self, ip: IpAddr) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", SocketAddr::new(ip, self.port))
    }
}

impl fmt::Display for DnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "dns+https" } else { "dns" };
        write!(f, "{scheme}:///{}:{}", self.host, self.port)
    }
}

impl fmt::Display for RouterTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url(url) => f.write_str(url),
            Self::Dns(name) => name.fmt(f),
        }
    }
}

/// A host name as DNS (and `/etc/hosts`) takes it: at most 253 characters, labels of 1 to 63
/// letters, digits, `-` and `_`, an optional final dot.
fn valid_name(host: &str) -> bool {
    let name = host.strip_suffix('.').unwrap_or(host);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Parses every entry of `routers` (the key `routers`), adding a problem per bad, duplicate or
/// TLS-without-CA entry; the good ones are returned.
pub(super) fn parse_routers(list: &[String], has_ca: bool, p: &mut Problems) -> Vec<RouterTarget> {
    if list.is_empty() {
        p.add(
            "routers",
            "at least one router is needed (--router URL, or --router dns:///NAME:PORT)",
        );
    }
    let mut parsed = Vec::with_capacity(list.len());
    for (i, s) in list.iter().enumerate() {
        let key = format!("routers[{i}]");
        let target = match RouterTarget::parse(s) {
            Ok(t) => t,
            Err(e) => {
                p.add(&key, e);
                continue;
            }
        };
        if target.is_tls() && !has_ca {
            let tls = if matches!(target, RouterTarget::Dns(_)) {
                "dns+https"
            } else {
                "https"
            };
            p.add(
                &key,
                format_args!(
                    "{tls} needs tls_ca (--tls-ca FILE): the CA the router's certificate chains to"
                ),
            );
        }
        if parsed.contains(&target) {
            p.add(&key, format_args!("{s:?} is listed twice"));
            continue;
        }
        parsed.push(target);
    }
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dns(host: &str, port: u16, tls: bool) -> RouterTarget {
        RouterTarget::Dns(DnsName {
            host: host.to_owned(),
            port,
            tls,
        })
    }

    #[test]
    fn urls_and_dns_names_parse() {
        assert_eq!(
            RouterTarget::parse("http://10.0.0.2:9032"),
            Ok(RouterTarget::Url("http://10.0.0.2:9032".into()))
        );
        assert_eq!(
            RouterTarget::parse("dns:///routerd-headless.web.svc:9032"),
            Ok(dns("routerd-headless.web.svc", 9032, false))
        );
        assert_eq!(
            RouterTarget::parse("dns+https:///routers.example.com.:443"),
            Ok(dns("routers.example.com.", 443, true))
        );
        assert_eq!(
            RouterTarget::parse("dns:///r_1:1"),
            Ok(dns("r_1", 1, false))
        );
    }

    #[test]
    fn a_name_displays_as_written_and_gives_one_url_per_address() {
        let RouterTarget::Dns(name) = RouterTarget::parse("dns:///routers.test:9032").unwrap()
        else {
            panic!("not a dns name");
        };
        assert_eq!(name.to_string(), "dns:///routers.test:9032");
        assert_eq!(
            name.url("10.0.0.7".parse().unwrap()),
            "http://10.0.0.7:9032"
        );
        assert_eq!(
            name.url("fd00::7".parse().unwrap()),
            "http://[fd00::7]:9032"
        );
        let tls = DnsName { tls: true, ..name };
        assert_eq!(tls.to_string(), "dns+https:///routers.test:9032");
        assert_eq!(
            tls.url("10.0.0.7".parse().unwrap()),
            "https://10.0.0.7:9032"
        );
    }

    /// Each mistake is answered with what to write instead.
    #[test]
    fn errors_say_what_to_write() {
        let cases = [
            ("dns://8.8.8.8/routers.test:9032", "write dns:///NAME:PORT"),
            (
                "dns:routers.test:9032",
                "write dns:///NAME:PORT (three slashes",
            ),
            ("dns+https://ns/r:1", "write dns+https:///NAME:PORT"),
            ("dns:///routers.test", "write dns:///routers.test:PORT"),
            ("dns:///routers.test:http", "\"http\" is not a port"),
            ("dns:///routers.test:0", "\"0\" is not a port"),
            ("dns:///routers.test:9032/", "is not a port"),
            (
                "dns:///[::1]:9032",
                "for a single router write http://HOST:PORT",
            ),
            ("dns+https:///a..b:9032", "write https://HOST:PORT"),
            ("dns:///:9032", "is not a DNS name"),
            (
                "dns+http:///r:9032",
                "dns:///NAME:PORT or dns+https:///NAME:PORT",
            ),
            (
                "10.0.0.2:9032",
                "is not http://HOST:PORT, https://HOST:PORT, dns:///NAME:PORT",
            ),
        ];
        for (input, hint) in cases {
            let err = RouterTarget::parse(input).expect_err(input);
            assert!(err.contains(hint), "{input}: {err:?} lacks {hint:?}");
        }
        let long = format!("dns:///{}.test:1", "a".repeat(64));
        assert!(RouterTarget::parse(&long).is_err(), "a 64-byte label");
    }

    #[test]
    fn a_list_is_checked_whole() {
        let list: Vec<String> = [
            "dns:///routers.test:9032",
            "http://10.0.0.2:9032",
            "dns:///routers.test:9032",
            "dns+https:///routers.test:9032",
            "dns:routers",
        ]
        .map(String::from)
        .to_vec();
        let mut p = Problems::default();
        let parsed = parse_routers(&list, false, &mut p);
        assert_eq!(parsed.len(), 3, "{parsed:?}");
        let lines = p.lines();
        assert!(lines[0].starts_with("routers[2]: ") && lines[0].contains("listed twice"));
        assert!(lines[1].starts_with("routers[3]: dns+https needs tls_ca"));
        assert!(lines[2].starts_with("routers[4]: "));
        assert_eq!(lines.len(), 3, "{lines:?}");
    }
}
