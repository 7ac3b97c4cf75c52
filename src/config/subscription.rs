//! `[subscription]`: the datagram listener for uWSGI nodes started with `--subscribe-to`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use super::Problems;
use crate::addr::{key_host, parse_networks, DatagramAddr, Networks};

/// `[subscription]`, parsed. Off unless `listen` names at least one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionConfig {
    /// Datagram listeners: UDP or UNIX datagram sockets, each once.
    pub listen: Vec<DatagramAddr>,
    /// A node that has not re-announced itself for this long leaves its pool (uWSGI's
    /// `--subscription-tolerance`).
    pub tolerance: Duration,
    /// A key that no route matches gets a pool of its own, named after the key, with default
    /// settings and an exact-host route to it (as uWSGI's FastRouter does). Off: such keys are
    /// refused.
    pub create_pools: bool,
    /// Most pools created from keys at once.
    pub max_pools: usize,
    /// Most subscribed nodes at once, over all pools.
    pub max_nodes: usize,
    /// Where the sender of a datagram and the address it announces must be. Pools created from
    /// keys take them as their `allowed_networks`.
    pub allowed_networks: Networks,
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
    pub replay_window: Duration,
    /// Signed subscriptions only: per key, as [`key_host`] writes it (`shop.example.com`), the
    /// networks whose hosts may announce a relative address (`:3031`, `0.0.0.0:3031`,
    /// `[::]:3031`), which names the sender's IP and so is not covered by the signature. Keys
    /// written differently that name the same host share their networks; keys not listed may not
    /// announce one ([`SubscriptionConfig::relative_networks`]).
    pub relative_address_networks: BTreeMap<String, Networks>,
    /// Directory the acknowledgements of new nodes (`notify`) may be sent to: only to a socket
    /// in it (symlinks resolved). Unset: no acknowledgement is sent.
    pub notify_dir: Option<PathBuf>,
}

/// `[subscription]` as written; each key is described on [`SubscriptionConfig`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawSubscription {
    pub(super) listen: Vec<String>,
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub(super) tolerance: Duration,
    pub(super) create_pools: bool,
    pub(super) max_pools: usize,
    pub(super) max_nodes: usize,
    pub(super) allowed_networks: Vec<String>,
    pub(super) key_dir: Option<PathBuf>,
    pub(super) digest: SignDigest,
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub(super) replay_window: Duration,
    pub(super) relative_address_networks: BTreeMap<String, Vec<String>>,
    pub(super) notify_dir: Option<PathBuf>,
}

impl Default for RawSubscription {
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

/// Where nobody may announce a relative address from.
static NOWHERE: Networks = Networks::Only(Vec::new());

impl SubscriptionConfig {
    /// True when at least one listener is configured.
    pub fn enabled(&self) -> bool {
        !self.listen.is_empty()
    }

    /// The networks whose hosts may announce a relative address for `host` (a key as
    /// [`key_host`] writes it); nowhere for a key not listed.
    pub fn relative_networks(&self, host: &str) -> &Networks {
        match self.relative_address_networks.get(host) {
            Some(networks) => networks,
            None => &NOWHERE,
        }
    }
}

impl RawSubscription {
    /// The typed `[subscription]`, every problem recorded in `p`.
    pub(super) fn build(&self, p: &mut Problems) -> SubscriptionConfig {
        let listen = self.listen_addrs(p);
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
        let allowed_networks = match Networks::allowed(&self.allowed_networks) {
            Ok(networks) => networks,
            Err(bad) => {
                for b in bad {
                    p.add(
                        format_args!("subscription.allowed_networks[{}]", b.index),
                        format_args!("{b}: use CIDR such as \"10.0.0.0/8\""),
                    );
                }
                // Never used (the config is refused), and allowing nothing even so.
                Networks::Only(Vec::new())
            }
        };
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
        let relative_address_networks = self.relative_networks(p);
        self.check_notify_dir(p);
        SubscriptionConfig {
            listen,
            tolerance: self.tolerance,
            create_pools: self.create_pools,
            max_pools: self.max_pools,
            max_nodes: self.max_nodes,
            allowed_networks,
            key_dir: self.key_dir.clone(),
            digest: self.digest,
            replay_window: self.replay_window,
            relative_address_networks,
            notify_dir: self.notify_dir.clone(),
        }
    }

    fn listen_addrs(&self, p: &mut Problems) -> Vec<DatagramAddr> {
        let mut addrs: Vec<DatagramAddr> = Vec::with_capacity(self.listen.len());
        for (i, a) in self.listen.iter().enumerate() {
            let key = format!("subscription.listen[{i}]");
            match p.check(&key, a.parse::<DatagramAddr>()) {
                None => {}
                Some(addr) if addrs.contains(&addr) => {
                    p.add(&key, format_args!("{a} is listed twice"));
                }
                Some(addr) => {
                    if let DatagramAddr::Udp(s) = addr {
                        if !s.ip().is_loopback()
                            && self.key_dir.is_none()
                            && self.allowed_networks.is_empty()
                        {
                            p.add(&key, format_args!("{s} is reachable from other hosts, and anyone there could announce nodes: set subscription.key_dir (signed subscriptions) or subscription.allowed_networks, or listen on 127.0.0.1"));
                        }
                    }
                    addrs.push(addr);
                }
            }
        }
        addrs
    }

    /// `relative_address_networks` by key host; keys naming the same host share their networks.
    fn relative_networks(&self, p: &mut Problems) -> BTreeMap<String, Networks> {
        if !self.relative_address_networks.is_empty() && self.key_dir.is_none() {
            p.add(
                "subscription.relative_address_networks",
                "applies to signed subscriptions only: set subscription.key_dir, or remove it",
            );
        }
        let mut by_host: BTreeMap<String, Vec<IpNet>> = BTreeMap::new();
        for (key, nets) in &self.relative_address_networks {
            let name = format!("subscription.relative_address_networks.{key:?}");
            let host = key_host(key.as_bytes());
            if host.is_none() {
                p.add(
                    &name,
                    format_args!("{key:?} is not a subscription key: use a host name such as \"shop.example.com\" (or name:port), no wildcard"),
                );
            }
            let nets = match parse_networks(nets) {
                Ok(nets) => nets,
                Err(bad) => {
                    for b in bad {
                        p.add(
                            format_args!("{name}[{}]", b.index),
                            format_args!("{b}: use CIDR such as \"10.0.0.11/32\""),
                        );
                    }
                    Vec::new()
                }
            };
            if let Some(host) = host {
                by_host.entry(host).or_default().extend(nets);
            }
        }
        by_host
            .into_iter()
            .map(|(host, nets)| (host, Networks::Only(nets)))
            .collect()
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
mod tests;
