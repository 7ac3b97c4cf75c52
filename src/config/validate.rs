//! Config validation: every problem is collected, each naming its key and what to write instead.

use std::fmt;

use super::{Algorithm, Config};
use crate::addr::{HostPattern, ListenAddr, NodeAddr};
use crate::protocol::MAX_VARS_SIZE;

/// Why a config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The path given.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Not valid TOML, or a key of the wrong type or unknown.
    #[error("invalid config: {0}")]
    Syntax(String),
    /// Valid TOML whose values do not make sense together.
    #[error("invalid config:\n{0}")]
    Invalid(Problems),
}

/// Every semantic problem found, one per line as `key: what is wrong`.
#[derive(Debug, Default)]
pub struct Problems(Vec<String>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "  - {p}")?;
        }
        Ok(())
    }
}

impl Problems {
    /// Records that `key` is wrong, and how.
    pub fn add(&mut self, key: impl fmt::Display, what: impl fmt::Display) {
        self.0.push(format!("{key}: {what}"));
    }

    /// The problems, each as `key: what is wrong`.
    pub fn lines(&self) -> &[String] {
        &self.0
    }

    /// True when nothing is wrong.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Config {
    /// Checks what serde cannot: addresses, ranges, references between pools and routes.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut p = Problems::default();
        self.check_listen(&mut p);
        self.check_limits(&mut p);
        self.check_pools(&mut p);
        self.check_routes(&mut p);
        self.control.check(&mut p);
        self.metrics.check(&mut p);
        self.subscription.check(&mut p);
        if p.0.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(p))
        }
    }

    fn check_listen(&self, p: &mut Problems) {
        if self.listen.uwsgi.is_empty() {
            p.add(
                "listen.uwsgi",
                "no listener: give at least one address, e.g. [\"127.0.0.1:3031\"]",
            );
        }
        for (i, a) in self.listen.uwsgi.iter().enumerate() {
            if let Err(e) = a.parse::<ListenAddr>() {
                p.add(format_args!("listen.uwsgi[{i}]"), e);
            }
        }
        if u32::from_str_radix(&self.listen.unix_socket_mode, 8).map_or(true, |m| m > 0o777) {
            p.add(
                "listen.unix_socket_mode",
                format_args!(
                    "{:?} is not an octal mode such as \"0660\"",
                    self.listen.unix_socket_mode
                ),
            );
        }
        if self.listen.backlog == 0 {
            p.add("listen.backlog", "must be at least 1");
        }
    }

    fn check_limits(&self, p: &mut Problems) {
        if self.limits.max_connections == 0 {
            p.add("limits.max_connections", "must be at least 1");
        }
        if !(64..=MAX_VARS_SIZE).contains(&self.limits.max_vars_size) {
            p.add(
                "limits.max_vars_size",
                format_args!(
                    "{} is out of range: use 64 to 65535 bytes",
                    self.limits.max_vars_size
                ),
            );
        }
        self.check_durations(p);
    }

    /// Every duration key of routerd's config and its bounds, in one table (README "Durations").
    fn check_durations(&self, p: &mut Problems) {
        use super::duration::{check, secs, MS};
        let (t, c) = (&self.timeouts, &self.control);
        for (key, d, range) in [
            ("timeouts.header", t.header, MS..=secs(3600)),
            ("timeouts.connect", t.connect, MS..=secs(300)),
            ("timeouts.first_byte", t.first_byte, MS..=secs(24 * 3600)),
            ("timeouts.idle", t.idle, MS..=secs(24 * 3600)),
            (
                "timeouts.shutdown_grace",
                t.shutdown_grace,
                secs(0)..=secs(3600),
            ),
            (
                "timeouts.shutdown_delay",
                t.shutdown_delay,
                secs(0)..=secs(600),
            ),
            (
                "control.min_report_interval",
                c.min_report_interval,
                secs(0)..=secs(60),
            ),
            (
                "control.announce_timeout",
                c.announce_timeout,
                MS..=secs(300),
            ),
            // Zero is refused, with its own message, by the subscription section's check.
            (
                "subscription.tolerance",
                self.subscription.tolerance,
                secs(0)..=secs(3600),
            ),
            (
                "subscription.replay_window",
                self.subscription.replay_window,
                secs(0)..=secs(3600),
            ),
        ] {
            check(p, key, d, range);
        }
        for (name, pool) in &self.pools {
            let e = &pool.ejection;
            for (key, d, range) in [
                ("slow_start", pool.slow_start, secs(0)..=secs(3600)),
                ("ejection.base_time", e.base_time, MS..=secs(3600)),
                ("ejection.max_time", e.max_time, MS..=secs(24 * 3600)),
            ] {
                check(p, &format!("pools.{name}.{key}"), d, range);
            }
        }
    }

    fn check_pools(&self, p: &mut Problems) {
        if !self.default_pool.is_empty() && !self.pools.contains_key(&self.default_pool) {
            p.add(
                "default_pool",
                format_args!(
                    "no pool named {:?}: define [pools.{}] or set default_pool = \"\"",
                    self.default_pool, self.default_pool
                ),
            );
        }
        for (name, pool) in &self.pools {
            let key = format!("pools.{name}");
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                p.add(&key, "pool names use letters, digits, '-', '_' and '.'");
            }
            if pool.algorithm == Algorithm::Hash
                && pool.hash_var.as_deref().is_none_or(str::is_empty)
            {
                p.add(
                    format_args!("{key}.hash_var"),
                    "algorithm \"hash\" needs the var to hash, e.g. hash_var = \"REMOTE_ADDR\"",
                );
            }
            if !(1..=16).contains(&pool.connect_attempts) {
                p.add(format_args!("{key}.connect_attempts"), "use 1 to 16");
            }
            let e = &pool.ejection;
            if e.consecutive_failures == 0 {
                p.add(
                    format_args!("{key}.ejection.consecutive_failures"),
                    "must be at least 1",
                );
            }
            if e.max_time < e.base_time {
                p.add(
                    format_args!("{key}.ejection.max_time"),
                    "must be at least base_time",
                );
            }
            if e.max_percent > 100 {
                p.add(
                    format_args!("{key}.ejection.max_percent"),
                    "is a percentage: 0 to 100",
                );
            }
            for (i, net) in pool.allowed_networks.iter().enumerate() {
                if net.parse::<ipnet::IpNet>().is_err() {
                    p.add(format_args!("{key}.allowed_networks[{i}]"), format_args!("{net:?} is not a network: use CIDR such as \"10.0.0.0/8\" or \"::1/128\""));
                }
            }
            if pool.max_nodes == 0 || pool.max_nodes < pool.nodes.len() {
                p.add(
                    format_args!("{key}.max_nodes"),
                    "must be at least 1 and at least the number of static nodes",
                );
            }
            let mut seen = std::collections::HashSet::new();
            for (i, node) in pool.nodes.iter().enumerate() {
                let nkey = format!("{key}.nodes[{i}]");
                match node.address().parse::<NodeAddr>() {
                    Err(e) => p.add(&nkey, e),
                    Ok(addr) if !seen.insert(addr.to_string()) => {
                        p.add(&nkey, format_args!("{} is listed twice", node.address()))
                    }
                    Ok(_) => {}
                }
                if !(1..=1000).contains(&node.weight()) {
                    p.add(format_args!("{nkey}.weight"), "use 1 to 1000");
                }
            }
        }
    }

    fn check_routes(&self, p: &mut Problems) {
        for (i, r) in self.routes.iter().enumerate() {
            let key = format!("routes[{i}]");
            if !self.pools.contains_key(&r.pool) {
                p.add(
                    format_args!("{key}.pool"),
                    format_args!("no pool named {:?}", r.pool),
                );
            }
            if let Some(host) = &r.host {
                if let Err(e) = HostPattern::parse(host) {
                    p.add(format_args!("{key}.host"), e);
                }
            }
            if r.host.is_none() && r.path_prefix.is_none() {
                p.add(
                    &key,
                    "give host, path_prefix or both (default_pool already catches the rest)",
                );
            }
            if let Some(prefix) = &r.path_prefix {
                if !prefix.starts_with('/') {
                    p.add(format_args!("{key}.path_prefix"), "must start with '/'");
                }
            }
        }
    }
}
