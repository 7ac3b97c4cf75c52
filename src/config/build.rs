//! From the file's text to the typed [`Config`]: every value parsed once, every problem collected
//! with its key and what to write instead. A config with any problem is refused whole.

use super::raw::{RawConfig, RawListen};
use super::{Config, ConfigError, ListenConfig, Problems, RouteConfig};
use crate::addr::{parse_socket_mode, HostPattern};
use crate::protocol::MAX_VARS_SIZE;

impl Config {
    /// The one way to a [`Config`]: parses every value of `raw`, checks ranges and the references
    /// between pools and routes, and returns the typed config or every problem found.
    pub(super) fn build(raw: RawConfig) -> Result<Self, ConfigError> {
        let mut p = Problems::default();
        let listen = listen(&raw.listen, &mut p);
        raw.check_limits(&mut p);
        raw.check_default_pool(&mut p);
        let pools = raw
            .pools
            .iter()
            .map(|(name, pool)| (name.clone(), pool.build(name, &raw.timeouts, &mut p)))
            .collect();
        let routes = routes(&raw, &mut p);
        let control = raw.control.build(&mut p);
        let metrics = raw.metrics.build(&mut p);
        let subscription = raw.subscription.build(&mut p);
        let access_log = raw.access_log.build(&mut p);
        let http = raw.http.build(&mut p);
        let config = Self {
            listen,
            limits: raw.limits,
            timeouts: raw.timeouts,
            default_pool: raw.default_pool,
            state_file: state_file(&raw.state_file, &mut p),
            log_format: raw.log_format,
            pools,
            routes,
            control,
            metrics,
            subscription,
            access_log,
            http,
            request_id: raw.request_id,
        };
        p.result(config)
    }
}

fn state_file(text: &str, p: &mut Problems) -> Option<std::path::PathBuf> {
    if text.is_empty() {
        return None;
    }
    let path = std::path::PathBuf::from(text);
    if !path.is_absolute() {
        p.add(
            "state_file",
            "use an absolute path, e.g. \"/var/lib/uwsgi-router/state.json\", or \"\" for none",
        );
    }
    Some(path)
}

fn listen(raw: &RawListen, p: &mut Problems) -> ListenConfig {
    if raw.uwsgi.is_empty() && raw.http.is_empty() {
        p.add(
            "listen.uwsgi",
            "no listener: give at least one address, e.g. [\"127.0.0.1:3031\"], or listen.http",
        );
    }
    let addrs = |key: &str, list: &[String], p: &mut Problems| {
        list.iter()
            .enumerate()
            .filter_map(|(i, a)| p.check(format_args!("{key}[{i}]"), a.parse()))
            .collect()
    };
    let uwsgi = addrs("listen.uwsgi", &raw.uwsgi, p);
    let http = addrs("listen.http", &raw.http, p);
    let unix_socket_mode = p.check_or(
        "listen.unix_socket_mode",
        parse_socket_mode(&raw.unix_socket_mode),
        0,
    );
    if raw.backlog == 0 {
        p.add("listen.backlog", "must be at least 1");
    }
    ListenConfig {
        uwsgi,
        http,
        unix_socket_mode,
        backlog: raw.backlog,
    }
}

impl RawConfig {
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

    fn check_default_pool(&self, p: &mut Problems) {
        if !self.default_pool.is_empty() && !self.pools.contains_key(&self.default_pool) {
            p.add(
                "default_pool",
                format_args!(
                    "no pool named {:?}: define [pools.{}] or set default_pool = \"\"",
                    self.default_pool, self.default_pool
                ),
            );
        }
    }
}

/// The routes, each to a pool of `raw`'s.
fn routes(raw: &RawConfig, p: &mut Problems) -> Vec<RouteConfig> {
    let mut routes = Vec::with_capacity(raw.routes.len());
    for (i, r) in raw.routes.iter().enumerate() {
        let key = format!("routes[{i}]");
        if !raw.pools.contains_key(&r.pool) {
            p.add(
                format_args!("{key}.pool"),
                format_args!("no pool named {:?}", r.pool),
            );
        }
        let host = match &r.host {
            Some(host) => p.check(format_args!("{key}.host"), HostPattern::parse(host)),
            None => None,
        };
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
        routes.push(RouteConfig {
            host,
            path_prefix: r.path_prefix.clone(),
            pool: r.pool.clone(),
        });
    }
    routes
}
