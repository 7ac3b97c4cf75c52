//! `[subscription]`: the datagram listener for uWSGI nodes started with `--subscribe-to`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::Problems;
use crate::addr::{key_host, DatagramAddr, Networks};

/// `[subscription]`. Off unless `listen` names at least one address.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct SubscriptionConfig {
    /// Datagram listeners: `ip:port` (UDP) or `unix:/path` (UNIX datagram socket).
    pub listen: Vec<String>,
    /// A node that has not re-announced itself for this long leaves its pool (uWSGI's
    /// `--subscription-tolerance`).
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub tolerance: Duration,
    /// A key that no route matches gets a pool of its own, named after the key, with default
    /// settings and an exact-host route to it (as uWSGI's FastRouter does). Off: such keys are
    /// refused.
    pub create_pools: bool,
    /// Most pools created from keys at once.
    pub max_pools: usize,
    /// Most subscribed nodes at once, over all pools.
    pub max_nodes: usize,
    /// Networks (CIDR) the sender of a datagram and the address it announces must be in; empty =
    /// any. Pools created from keys take them as their `allowed_networks`.
    pub allowed_networks: Vec<String>,
    /// Directory of public keys (PEM), one per key as uWSGI names them: `<key>.pem`, characters
    /// other than letters, digits, `.`, `-` and `_` replaced by `_`. When set, only packets signed
    /// with the key's private key (uWSGI `--subscribe-to ADDR:KEY,MODIFIER1,SHA1:private.pem`)
    /// are accepted.
    pub key_dir: Option<PathBuf>,
    /// Digest of the signatures (uWSGI's `--subscriptions-sign-check` algorithm).
    pub digest: SignDigest,
    /// How far a signed packet's `unix` time may be from the router's clock. Within it, a node's
    /// packets must go forward in time (or repeat the last one byte for byte), so a captured
    /// packet cannot be replayed, nor its command changed.
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub replay_window: Duration,
    /// Signed subscriptions only: per key (as a route host: `shop.example.com`), the networks
    /// (CIDR) whose hosts may announce a relative address (`:3031`, `0.0.0.0:3031`, `[::]:3031`),
    /// which names the sender's IP and so is not covered by the signature. Keys not listed may
    /// not announce one.
    pub relative_address_networks: BTreeMap<String, Vec<String>>,
    /// Directory the acknowledgements of new nodes (`notify`) may be sent to: only to a socket
    /// in it (symlinks resolved). Unset: no acknowledgement is sent.
    pub notify_dir: Option<PathBuf>,
}

impl Default for SubscriptionConfig {
    fn default() -> Self {
        Self {
            listen: Vec::new(),
            tolerance: Duration::from_secs(17),
            create_pools: true,
            max_pools: 100,
            max_nodes: 1000,
            allowed_networks: Vec::new(),
            key_dir: None,
            digest: SignDigest::Sha1,
            replay_window: Duration::from_secs(60),
            relative_address_networks: BTreeMap::new(),
            notify_dir: None,
        }
    }
}

/// Longest `notify_dir`: a notify path (102 bytes at most) must fit a name in it.
const MAX_NOTIFY_DIR: usize = 100;

/// The digest signed subscriptions use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignDigest {
    /// SHA-1, what uWSGI's documentation uses.
    #[default]
    #[serde(alias = "SHA1")]
    Sha1,
    /// SHA-256.
    #[serde(alias = "SHA256")]
    Sha256,
    /// SHA-384.
    #[serde(alias = "SHA384")]
    Sha384,
    /// SHA-512.
    #[serde(alias = "SHA512")]
    Sha512,
}

impl SubscriptionConfig {
    /// True when at least one listener is configured.
    pub fn enabled(&self) -> bool {
        !self.listen.is_empty()
    }

    /// `allowed_networks`, parsed (validation has checked every entry; were one bad, nothing
    /// would be allowed).
    pub fn networks(&self) -> Networks {
        Networks::allowed(&self.allowed_networks).unwrap_or(Networks::Only(Vec::new()))
    }

    /// The networks whose hosts may announce a relative address for `host` (a key as
    /// [`key_host`] writes it); empty when none may.
    pub fn relative_networks(&self, host: &str) -> Vec<ipnet::IpNet> {
        self.relative_address_networks
            .iter()
            .filter(|(key, _)| key_host(key.as_bytes()).as_deref() == Some(host))
            .flat_map(|(_, nets)| nets.iter().filter_map(|n| n.parse().ok()))
            .collect()
    }

    pub(super) fn check(&self, p: &mut Problems) {
        let mut seen = std::collections::HashSet::new();
        for (i, a) in self.listen.iter().enumerate() {
            let key = format!("subscription.listen[{i}]");
            match a.parse::<DatagramAddr>() {
                Err(e) => p.add(&key, e),
                Ok(addr) if !seen.insert(addr.clone()) => {
                    p.add(&key, format_args!("{a} is listed twice"))
                }
                Ok(DatagramAddr::Udp(s))
                    if !s.ip().is_loopback()
                        && self.key_dir.is_none()
                        && self.allowed_networks.is_empty() =>
                {
                    p.add(&key, format_args!("{s} is reachable from other hosts, and anyone there could announce nodes: set subscription.key_dir (signed subscriptions) or subscription.allowed_networks, or listen on 127.0.0.1"));
                }
                Ok(_) => {}
            }
        }
        if self.tolerance.is_zero() {
            p.add("subscription.tolerance", "must be longer than 0s");
        }
        if self.max_nodes == 0 {
            p.add("subscription.max_nodes", "must be at least 1");
        }
        if self.create_pools && self.max_pools == 0 {
            p.add(
                "subscription.max_pools",
                "must be at least 1 while create_pools is on",
            );
        }
        for (i, net) in self.allowed_networks.iter().enumerate() {
            if net.parse::<ipnet::IpNet>().is_err() {
                p.add(
                    format_args!("subscription.allowed_networks[{i}]"),
                    format_args!("{net:?} is not a network: use CIDR such as \"10.0.0.0/8\""),
                );
            }
        }
        if let Some(dir) = &self.key_dir {
            if !dir.is_dir() {
                p.add(
                    "subscription.key_dir",
                    format_args!("{} is not a directory", dir.display()),
                );
            }
            if self.replay_window.is_zero() {
                p.add("subscription.replay_window", "must be longer than 0s");
            }
        }
        self.check_relative_networks(p);
        self.check_notify_dir(p);
    }

    fn check_relative_networks(&self, p: &mut Problems) {
        if !self.relative_address_networks.is_empty() && self.key_dir.is_none() {
            p.add(
                "subscription.relative_address_networks",
                "applies to signed subscriptions only: set subscription.key_dir, or remove it",
            );
        }
        for (key, nets) in &self.relative_address_networks {
            let name = format!("subscription.relative_address_networks.{key:?}");
            if key_host(key.as_bytes()).is_none() {
                p.add(
                    &name,
                    format_args!("{key:?} is not a subscription key: use a host name such as \"shop.example.com\" (or name:port), no wildcard"),
                );
            }
            for (i, net) in nets.iter().enumerate() {
                if net.parse::<ipnet::IpNet>().is_err() {
                    p.add(
                        format_args!("{name}[{i}]"),
                        format_args!("{net:?} is not a network: use CIDR such as \"10.0.0.11/32\""),
                    );
                }
            }
        }
    }

    fn check_notify_dir(&self, p: &mut Problems) {
        let Some(dir) = &self.notify_dir else {
            return;
        };
        let key = "subscription.notify_dir";
        if !dir.is_absolute() {
            p.add(
                key,
                format_args!("{} is not an absolute path", dir.display()),
            );
        } else if !dir.is_dir() {
            p.add(key, format_args!("{} is not a directory", dir.display()));
        } else if dir.as_os_str().len() >= MAX_NOTIFY_DIR {
            p.add(
                key,
                format_args!(
                    "{} is too long: a socket path in it must fit in 102 bytes",
                    dir.display()
                ),
            );
        } else if dir.to_str().is_none_or(|d| d.chars().any(char::is_control)) {
            p.add(
                key,
                format_args!("{} holds characters a notify path may not", dir.display()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, SignDigest};
    use std::time::Duration;

    #[test]
    fn off_by_default_and_parsed_when_given() {
        assert!(!Config::default().subscription.enabled());
        let c = Config::parse(
            "[subscription]\nlisten = [\"127.0.0.1:2626\", \"unix:/run/x.sock\"]\ntolerance = \"5s\"\ncreate_pools = false\ndigest = \"SHA256\"\n",
        )
        .unwrap();
        let s = &c.subscription;
        assert!(s.enabled());
        assert_eq!(s.tolerance, Duration::from_secs(5));
        assert!(!s.create_pools);
        assert_eq!(s.digest, SignDigest::Sha256);
        assert_eq!(s.max_pools, 100);
    }

    #[test]
    fn every_problem_names_its_key() {
        let err = Config::parse(
            r#"
[subscription]
listen = ["0.0.0.0:2626", "nowhere", "unix:/run/a.sock", "/run/a.sock"]
tolerance = "0s"
max_nodes = 0
max_pools = 0
allowed_networks = ["10.0.0.0/33"]
key_dir = "/nonexistent/keys"
"#,
        )
        .unwrap_err()
        .to_string();
        for expected in [
            "subscription.listen[1]: \"nowhere\" is not a subscription address",
            "subscription.listen[3]: /run/a.sock is listed twice",
            "subscription.tolerance: must be longer than 0s",
            "subscription.max_nodes: must be at least 1",
            "subscription.max_pools: must be at least 1",
            "subscription.allowed_networks[0]:",
            "subscription.key_dir: /nonexistent/keys is not a directory",
        ] {
            assert!(err.contains(expected), "{expected:?} not in:\n{err}");
        }
        // With a key directory, 0.0.0.0 is fine: only signed packets get in.
        assert!(!err.contains("subscription.listen[0]"), "{err}");
        let open = Config::parse("[subscription]\nlisten = [\"0.0.0.0:2626\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            open.contains("subscription.listen[0]: 0.0.0.0:2626 is reachable from other hosts"),
            "{open}"
        );
        let unknown = Config::parse("[subscription]\ndigest = \"md5\"\n")
            .unwrap_err()
            .to_string();
        assert!(unknown.contains("md5"), "{unknown}");
    }

    #[test]
    fn notify_dir_and_relative_address_networks_are_checked_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().display();
        let ok = Config::parse(&format!(
            "[subscription]\nkey_dir = \"{keys}\"\nnotify_dir = \"{keys}\"\n[subscription.relative_address_networks]\n\"Shop.Example.com\" = [\"10.0.0.11/32\", \"10.0.1.0/24\"]\n"
        ))
        .unwrap();
        let s = &ok.subscription;
        assert_eq!(s.notify_dir.as_deref(), Some(dir.path()));
        assert_eq!(
            s.relative_networks("shop.example.com").len(),
            2,
            "keys match as hosts do"
        );
        assert!(s.relative_networks("other.example.com").is_empty());

        for (toml, expected) in [
            (
                "notify_dir = \"relative/dir\"\n".to_owned(),
                "subscription.notify_dir: relative/dir is not an absolute path",
            ),
            (
                "notify_dir = \"/nonexistent/notify\"\n".to_owned(),
                "subscription.notify_dir: /nonexistent/notify is not a directory",
            ),
            (
                format!("key_dir = \"{keys}\"\n[subscription.relative_address_networks]\n\"shop.test\" = [\"10.0.0.0/33\"]\n"),
                "subscription.relative_address_networks.\"shop.test\"[0]: \"10.0.0.0/33\" is not a network",
            ),
            (
                format!("key_dir = \"{keys}\"\n[subscription.relative_address_networks]\n\"*.shop.test\" = []\n"),
                "subscription.relative_address_networks.\"*.shop.test\": \"*.shop.test\" is not a subscription key",
            ),
            (
                "[subscription.relative_address_networks]\n\"shop.test\" = [\"10.0.0.0/8\"]\n".to_owned(),
                "subscription.relative_address_networks: applies to signed subscriptions only",
            ),
        ] {
            let err = Config::parse(&format!("[subscription]\n{toml}"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{expected:?} not in:\n{err}");
        }
        // Too long for a socket path in it to fit in `notify`.
        let long = dir.path().join("d".repeat(100));
        std::fs::create_dir(&long).unwrap();
        let err = Config::parse(&format!(
            "[subscription]\nnotify_dir = \"{}\"\n",
            long.display()
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("subscription.notify_dir:") && err.contains("is too long"),
            "{err}"
        );
    }
}
