//! `[http]`: the HTTP/1.1 listeners' connection limits, their keep-alive and the proxies whose
//! forwarded-for headers are believed.

use std::time::Duration;

use serde::Deserialize;

use super::duration::{check, secs, MS};
use super::Problems;
use crate::addr::Networks;

/// `[http]`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// A connection may wait this long for its next request, and for the whole head of each.
    pub idle_timeout: Duration,
    /// Requests served on one connection before it is closed (nginx's `keepalive_requests`).
    pub max_requests_per_connection: u32,
    /// Largest request head (request line and headers), in bytes; larger ones get 431.
    pub max_header_size: usize,
    /// Most header lines in a request; more get 431.
    pub max_headers: usize,
    /// Largest chunked request body held to learn its length (uWSGI needs CONTENT_LENGTH);
    /// larger ones get 413.
    pub max_body_buffer: usize,
    /// Peers whose `X-Forwarded-For` / `X-Real-IP` and `X-Forwarded-Proto` set REMOTE_ADDR and
    /// the scheme (nginx's `set_real_ip_from`); `Only([])`, the default: nobody's.
    pub trusted_proxies: Networks,
}

impl Default for HttpConfig {
    fn default() -> Self {
        let mut p = Problems::default();
        let c = RawHttp::default().build(&mut p);
        debug_assert!(p.is_empty(), "the default [http] is valid: {p}");
        c
    }
}

/// `[http]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawHttp {
    #[serde(deserialize_with = "super::duration::deserialize")]
    idle_timeout: Duration,
    max_requests_per_connection: u32,
    max_header_size: usize,
    max_headers: usize,
    max_body_buffer: usize,
    trusted_proxies: Vec<String>,
}

impl Default for RawHttp {
    fn default() -> Self {
        Self {
            idle_timeout: secs(60),
            max_requests_per_connection: 1000,
            max_header_size: 16 * 1024,
            max_headers: 100,
            max_body_buffer: 1 << 20,
            trusted_proxies: Vec::new(),
        }
    }
}

impl RawHttp {
    pub(super) fn build(&self, p: &mut Problems) -> HttpConfig {
        check(p, "http.idle_timeout", self.idle_timeout, MS..=secs(3600));
        if self.max_requests_per_connection == 0 {
            p.add("http.max_requests_per_connection", "must be at least 1");
        }
        // hyper's read buffer cannot be smaller than 8 KiB; uwsgi vars cannot pass 64 KiB.
        if !(8192..=65535).contains(&self.max_header_size) {
            p.add("http.max_header_size", "use 8192 to 65535 bytes");
        }
        if !(1..=1000).contains(&self.max_headers) {
            p.add("http.max_headers", "use 1 to 1000");
        }
        if self.max_body_buffer > 1 << 30 {
            p.add("http.max_body_buffer", "use 0 to 1073741824 bytes");
        }
        let trusted_proxies = match Networks::allowed(&self.trusted_proxies) {
            Ok(Networks::Any) => Networks::Only(Vec::new()),
            Ok(n) => n,
            Err(bad) => {
                for b in bad {
                    p.add(
                        format_args!("http.trusted_proxies[{}]", b.index),
                        format_args!("{b}: use CIDR such as \"10.0.0.0/8\" or \"::1/128\""),
                    );
                }
                Networks::Only(Vec::new())
            }
        };
        HttpConfig {
            idle_timeout: self.idle_timeout,
            max_requests_per_connection: self.max_requests_per_connection,
            max_header_size: self.max_header_size,
            max_headers: self.max_headers,
            max_body_buffer: self.max_body_buffer,
            trusted_proxies,
        }
    }
}
