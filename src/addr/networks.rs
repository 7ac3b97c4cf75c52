//! Which networks an address must be in. "Any" and "only these" are distinct variants, and a list
//! with a bad entry does not parse at all: no entry dropped on the way can turn a restriction into
//! "anywhere", which an empty list of networks would otherwise mean.

use std::net::IpAddr;

use ipnet::IpNet;

use super::NodeAddr;

/// Where an address may be.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Networks {
    /// Anywhere: an `allowed_networks` left empty.
    #[default]
    Any,
    /// Only in one of these networks; with none listed, nowhere.
    Only(Vec<IpNet>),
}

/// A list entry that is not a network in CIDR notation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a network")]
pub struct BadNetwork {
    /// Its position in the list.
    pub index: usize,
    /// The entry as written.
    pub text: String,
}

/// Parses every entry as CIDR (`10.0.0.0/8`, `::1/128`), returning all the bad ones.
pub fn parse_networks<S: AsRef<str>>(entries: &[S]) -> Result<Vec<IpNet>, Vec<BadNetwork>> {
    let mut nets = Vec::with_capacity(entries.len());
    let mut bad = Vec::new();
    for (index, text) in entries.iter().map(AsRef::as_ref).enumerate() {
        match text.parse() {
            Ok(net) => nets.push(net),
            Err(_) => bad.push(BadNetwork {
                index,
                text: text.to_owned(),
            }),
        }
    }
    if bad.is_empty() {
        Ok(nets)
    } else {
        Err(bad)
    }
}

impl Networks {
    /// An `allowed_networks` list: empty allows any address, anything else only the addresses in
    /// it, and then every entry must parse.
    pub fn allowed<S: AsRef<str>>(entries: &[S]) -> Result<Self, Vec<BadNetwork>> {
        if entries.is_empty() {
            return Ok(Self::Any);
        }
        parse_networks(entries).map(Self::Only)
    }

    /// True if `ip` is in one of the networks (or there is no restriction).
    pub fn allows(&self, ip: IpAddr) -> bool {
        match self {
            Self::Any => true,
            Self::Only(nets) => nets.iter().any(|n| n.contains(&ip)),
        }
    }

    /// True if a node at `addr` may join. DNS names cannot be checked without trusting DNS, so a
    /// restriction refuses them; UNIX sockets are local, allowed where a loopback network is.
    pub fn allows_node(&self, addr: &NodeAddr) -> bool {
        let ip = match addr {
            NodeAddr::Ip(a) => a.ip(),
            NodeAddr::Dns(..) => return *self == Self::Any,
            NodeAddr::Unix(_) => IpAddr::from([127, 0, 0, 1]),
        };
        self.allows(ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_empty_list_allows_any_address_and_a_list_only_its_networks() {
        let any = Networks::allowed::<&str>(&[]).unwrap();
        assert_eq!(any, Networks::Any);
        assert!(any.allows(ip("192.0.2.1")));
        assert!(any.allows_node(&"app.internal:3031".parse().unwrap()));

        let only = Networks::allowed(&["10.0.0.0/8", "::1/128"]).unwrap();
        assert!(only.allows(ip("10.1.2.3")));
        assert!(only.allows(ip("::1")));
        assert!(!only.allows(ip("192.0.2.1")));
        assert!(!only.allows_node(&"app.internal:3031".parse().unwrap()));
        assert!(!only.allows_node(&"unix:/run/app.sock".parse().unwrap()));
        let loopback = Networks::allowed(&["127.0.0.0/8"]).unwrap();
        assert!(loopback.allows_node(&"unix:/run/app.sock".parse().unwrap()));
    }

    #[test]
    fn a_bad_entry_fails_the_whole_list_never_opening_it() {
        // Were the bad entries dropped, these would leave an empty list: anywhere.
        for entries in [&["10.0.0.0/33"][..], &["nowhere", "10.0.0.0/8 "]] {
            assert!(Networks::allowed(entries).is_err(), "{entries:?}");
        }
        let err = Networks::allowed(&["10.0.0.0/8", "10.0.0.0/33", "x"]).unwrap_err();
        assert_eq!(
            err.iter().map(|b| b.index).collect::<Vec<_>>(),
            [1, 2],
            "every bad entry, by position"
        );
        assert_eq!(err[0].to_string(), "\"10.0.0.0/33\" is not a network");
    }

    #[test]
    fn only_an_empty_list_of_networks_allows_nothing() {
        let none = Networks::Only(parse_networks::<&str>(&[]).unwrap());
        assert!(!none.allows(ip("127.0.0.1")));
        assert!(!none.allows_node(&"unix:/run/app.sock".parse().unwrap()));
    }
}
