//! Routing: from a request's host (HTTP_HOST, else SERVER_NAME) and PATH_INFO to a pool. Exact host
//! beats the longest matching `*.suffix` wildcard, which beats host-less rules, then the default
//! pool. Within a host, a rule naming the port beats one that doesn't, then the longest path prefix.

use std::collections::HashMap;
use std::sync::Arc;

use crate::addr::{split_port, HostPattern};
use crate::cluster::{Cluster, Pool};
use crate::config::Config;
use crate::protocol::Vars;

/// The routing-relevant vars of a request, found in one pass over the vars block.
#[derive(Debug, Default, Clone, Copy)]
pub struct RequestKey<'a> {
    /// HTTP_HOST.
    pub host: Option<&'a [u8]>,
    /// SERVER_NAME (nginx's configured name, used when there is no Host header).
    pub server_name: Option<&'a [u8]>,
    /// SERVER_PORT.
    pub server_port: Option<&'a [u8]>,
    /// PATH_INFO.
    pub path: &'a [u8],
}

impl<'a> RequestKey<'a> {
    /// Extracts the key from validated vars.
    pub fn from_vars(vars: &Vars<'a>) -> Self {
        let mut key = Self::default();
        for (k, v) in vars.iter() {
            match k {
                b"HTTP_HOST" => key.host = Some(v),
                b"SERVER_NAME" => key.server_name = Some(v),
                b"SERVER_PORT" => key.server_port = Some(v),
                b"PATH_INFO" => key.path = v,
                _ => {}
            }
        }
        key
    }

    /// The host the request is routed by, as sent.
    pub fn routing_host(&self) -> &'a [u8] {
        self.host
            .filter(|h| !h.is_empty())
            .or(self.server_name)
            .unwrap_or_default()
    }
}

#[derive(Debug)]
struct Rule {
    port: Option<u16>,
    prefix: Option<Box<[u8]>>,
    pool: Arc<Pool>,
}

/// The compiled routes. Immutable: a reload builds a new table and swaps it in.
#[derive(Debug, Default)]
pub struct RouteTable {
    exact: HashMap<Box<[u8]>, Vec<Rule>>,
    /// Longest suffix first.
    wildcard: Vec<(Box<[u8]>, Vec<Rule>)>,
    any_host: Vec<Rule>,
    default: Option<Arc<Pool>>,
}

impl RouteTable {
    /// Compiles the routes of a validated `config` over the cluster's pools.
    pub fn build(config: &Config, cluster: &Cluster) -> Self {
        let mut t = Self {
            default: cluster.pool(&config.default_pool),
            ..Self::default()
        };
        for r in &config.routes {
            let Some(pool) = cluster.pool(&r.pool) else {
                continue;
            };
            let prefix = r.path_prefix.as_ref().map(|p| p.as_bytes().into());
            let (list, port) = match &r.host {
                Some(HostPattern::Exact(h, port)) => {
                    (t.exact.entry(h.as_bytes().into()).or_default(), *port)
                }
                Some(HostPattern::Wildcard(s, port)) => {
                    let s: Box<[u8]> = s.as_bytes().into();
                    let i = match t.wildcard.iter().position(|(w, _)| *w == s) {
                        Some(i) => i,
                        None => {
                            t.wildcard.push((s, Vec::new()));
                            t.wildcard.len() - 1
                        }
                    };
                    (&mut t.wildcard[i].1, *port)
                }
                None => (&mut t.any_host, None),
            };
            list.push(Rule { port, prefix, pool });
        }
        t.add_dynamic_routes(cluster);
        t.wildcard.sort_by_key(|w| std::cmp::Reverse(w.0.len()));
        let order = |r: &Rule| {
            (
                r.port.is_none(),
                std::cmp::Reverse(r.prefix.as_ref().map_or(0, |p| p.len())),
            )
        };
        t.exact.values_mut().for_each(|l| l.sort_by_key(order));
        t.wildcard
            .iter_mut()
            .for_each(|(_, l)| l.sort_by_key(order));
        t.any_host.sort_by_key(order);
        t
    }

    /// Exact-host routes to pools created at run time (from subscription keys). They come after
    /// the configured rules, so a configured route for the same host and port wins.
    fn add_dynamic_routes(&mut self, cluster: &Cluster) {
        for (host, pool) in cluster.dynamic_routes() {
            let (Some(pool), Ok(HostPattern::Exact(h, port))) =
                (cluster.pool(&pool), HostPattern::parse(&host))
            else {
                continue;
            };
            let rules = self.exact.entry(h.into_bytes().into()).or_default();
            rules.push(Rule {
                port,
                prefix: None,
                pool,
            });
        }
    }

    /// The pool for a request, or `None` (the router answers 503).
    pub fn route(&self, key: &RequestKey<'_>) -> Option<&Arc<Pool>> {
        self.route_by_rules(key).or(self.default.as_ref())
    }

    /// The pool a route sends `host` (`name` or `name:port`, as a subscription key) to, by the
    /// request rules without a path, never falling back to the default pool.
    pub fn route_host(&self, host: &[u8]) -> Option<&Arc<Pool>> {
        self.route_by_rules(&RequestKey {
            host: Some(host),
            ..RequestKey::default()
        })
    }

    fn route_by_rules(&self, key: &RequestKey<'_>) -> Option<&Arc<Pool>> {
        let (host, port) = split_port(key.routing_host());
        let port = port.or(key.server_port).and_then(parse_port);
        let mut buf = [0u8; 256];
        let host = lowercase(host.strip_suffix(b".").unwrap_or(host), &mut buf);
        let matching = |rules| first_match(rules, port, key.path);
        host.and_then(|h| self.exact.get(h).and_then(|l| matching(l)))
            .or_else(|| {
                let h = host?;
                self.wildcard
                    .iter()
                    .filter(|(s, _)| h.len() > s.len() && h.ends_with(s))
                    .find_map(|(_, l)| matching(l))
            })
            .or_else(|| matching(&self.any_host))
    }
}

/// The first rule (rules are sorted most specific first) whose port and path prefix fit.
fn first_match<'t>(rules: &'t [Rule], port: Option<u16>, path: &[u8]) -> Option<&'t Arc<Pool>> {
    rules
        .iter()
        .find(|r| {
            r.port.is_none_or(|p| Some(p) == port)
                && r.prefix.as_ref().is_none_or(|p| path.starts_with(p))
        })
        .map(|r| &r.pool)
}

fn parse_port(p: &[u8]) -> Option<u16> {
    std::str::from_utf8(p).ok()?.parse().ok()
}

/// Lowercases `h` into `buf` without allocating; `None` if it is too long to be a host name.
fn lowercase<'b>(h: &[u8], buf: &'b mut [u8; 256]) -> Option<&'b [u8]> {
    let out = buf.get_mut(..h.len())?;
    for (o, c) in out.iter_mut().zip(h) {
        *o = c.to_ascii_lowercase();
    }
    Some(out)
}

#[cfg(test)]
mod tests;
