//! An HTTP request head as a uwsgi packet, built as nginx's `uwsgi_params` builds it:
//! QUERY_STRING, REQUEST_METHOD, CONTENT_TYPE, CONTENT_LENGTH, REQUEST_URI, PATH_INFO (the path
//! decoded and normalised, nginx's `$document_uri`), SERVER_PROTOCOL, REQUEST_SCHEME, HTTPS (only
//! when on), REMOTE_ADDR, REMOTE_PORT, SERVER_PORT, SERVER_NAME, then each header as `HTTP_*`.
//!
//! Where routerd differs from nginx, and why: no DOCUMENT_ROOT (routerd serves no files);
//! SERVER_NAME is the requested host (routerd has no `server_name`); HTTP_HOST is the Host header
//! as sent, port kept (Debian's `uwsgi_params` sends `$host`, which drops it); hop-by-hop headers
//! (`Connection` and those it names, `Keep-Alive`, `TE`, `Transfer-Encoding`, `Upgrade` unless
//! upgrading, `Proxy-Connection`) are not passed, since they describe the connection to routerd,
//! not the request; repeated headers are joined (`; ` for Cookie, `, ` for the rest), where nginx
//! sends each line as a var of its own and uWSGI keeps only the last (a second Cookie line would
//! hide the first). As nginx does by default, a header whose name has bytes other than letters,
//! digits and `-` (an underscore above all: `X_Forwarded_For` would pass for
//! `HTTP_X_FORWARDED_FOR`) is dropped, and an absolute-form target's host wins over the Host
//! header.

use std::net::{IpAddr, SocketAddr};

use bytes::{BufMut, BytesMut};
use http::request::Parts;
use http::{HeaderMap, HeaderName, Version};

use crate::addr::Networks;
use crate::protocol::{HEADER_LEN, MAX_VARS_SIZE};

/// The connection a request came on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnInfo {
    /// The client; `None` on a UNIX socket.
    pub(crate) peer: Option<SocketAddr>,
    /// The address it connected to; `None` on a UNIX socket.
    pub(crate) local: Option<SocketAddr>,
}

/// Why a request cannot be passed to a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum VarsError {
    /// Its path does not decode, or climbs above the root (nginx answers 400 too).
    #[error("the request path is not a valid path")]
    BadPath,
    /// Its vars would not fit a uwsgi packet (`limits.max_vars_size`).
    #[error("the request head is too large for a uwsgi packet")]
    TooLarge,
}

/// Hop-by-hop headers: they describe the client's connection to routerd.
const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "transfer-encoding",
    "upgrade",
];

/// The uwsgi packet (header and vars) of the request `parts` on `conn`, whose body is
/// `content_length` bytes (`None`: no body); `upgrade` keeps the `Upgrade` and `Connection`
/// headers of a protocol switch. `trusted` peers' forwarded-for headers set the client address
/// and scheme.
pub(crate) fn packet(
    parts: &Parts,
    conn: &ConnInfo,
    content_length: Option<u64>,
    upgrade: bool,
    trusted: &Networks,
    max_vars: usize,
) -> Result<BytesMut, VarsError> {
    let headers = &parts.headers;
    let uri = &parts.uri;
    let path = uri.path();
    let query = uri.query().unwrap_or("");
    let request_uri = uri
        .path_and_query()
        .map_or(path, |pq| pq.as_str())
        .as_bytes();
    let document_uri = document_uri(path.as_bytes()).ok_or(VarsError::BadPath)?;
    let (remote, scheme) = client_of(headers, conn, trusted);
    let host = host_of(parts);

    let mut out = Encoder::new();
    out.var(b"QUERY_STRING", query.as_bytes());
    out.var(b"REQUEST_METHOD", parts.method.as_str().as_bytes());
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .map_or(&b""[..], |v| v.as_bytes());
    out.var(b"CONTENT_TYPE", content_type);
    let len = content_length.map(Text::of);
    out.var(
        b"CONTENT_LENGTH",
        len.as_ref().map_or(&b""[..], Text::as_bytes),
    );
    out.var(b"REQUEST_URI", request_uri);
    out.var(b"PATH_INFO", &document_uri);
    out.var(b"SERVER_PROTOCOL", protocol(parts.version));
    out.var(b"REQUEST_SCHEME", scheme.as_bytes());
    if scheme == "https" {
        out.var(b"HTTPS", b"on");
    }
    match remote {
        Some((ip, port)) => {
            out.var(b"REMOTE_ADDR", Text::of(ip).as_bytes());
            let port = port.map(Text::of);
            out.var(
                b"REMOTE_PORT",
                port.as_ref().map_or(&b""[..], Text::as_bytes),
            );
        }
        None => {
            out.var(b"REMOTE_ADDR", b"unix:");
            out.var(b"REMOTE_PORT", b"");
        }
    }
    let server_port = conn.local.map(|a| Text::of(a.port()));
    out.var(
        b"SERVER_PORT",
        server_port.as_ref().map_or(&b""[..], Text::as_bytes),
    );
    let server_name = match &host {
        Some(h) => server_name(h),
        None => conn.local.map(|a| a.ip().to_string()).unwrap_or_default(),
    };
    out.var(b"SERVER_NAME", server_name.as_bytes());
    headers_as_vars(parts, upgrade, &mut out);
    if parts.headers.get(http::header::HOST).is_none() {
        // HTTP/1.0 or an absolute-form target: nginx takes the host from the request line.
        if let Some(h) = uri.authority() {
            out.var(b"HTTP_HOST", h.as_str().as_bytes());
        }
    }
    out.finish(max_vars)
}

/// A number or an address as text, on the stack: the values every request has cost it no
/// allocation.
struct Text {
    buf: [u8; 48],
    len: usize,
}

impl Text {
    /// `value` written out; an IPv6 address, the longest, takes at most 45 bytes.
    fn of(value: impl std::fmt::Display) -> Self {
        use std::io::Write;
        let mut buf = [0u8; 48];
        let mut rest = &mut buf[..];
        write!(rest, "{value}").expect("a number or an address fits 48 bytes");
        let len = 48 - rest.len();
        Self { buf, len }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// `HTTP_*` vars for the headers, in their order, repeated ones joined.
fn headers_as_vars(parts: &Parts, upgrade: bool, out: &mut Encoder) {
    let headers = &parts.headers;
    let named_by_connection: Vec<String> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    let mut key = Vec::with_capacity(64);
    let mut value = Vec::with_capacity(256);
    for name in headers.keys() {
        let n = name.as_str();
        let keep_for_upgrade = upgrade && (n == "upgrade" || n == "connection");
        if !keep_for_upgrade
            && (HOP_BY_HOP.contains(&n) || named_by_connection.iter().any(|c| c == n))
        {
            continue;
        }
        if !n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            continue;
        }
        key.clear();
        key.extend_from_slice(b"HTTP_");
        key.extend(n.bytes().map(|b| {
            if b == b'-' {
                b'_'
            } else {
                b.to_ascii_uppercase()
            }
        }));
        value.clear();
        if name == http::header::HOST {
            if let Some(a) = parts.uri.authority() {
                // An absolute-form target: its authority is the host (see `host_of`).
                out.var(&key, a.as_str().as_bytes());
                continue;
            }
        }
        let sep: &[u8] = if name == http::header::COOKIE {
            b"; "
        } else {
            b", "
        };
        for (i, v) in headers.get_all(name).iter().enumerate() {
            if i > 0 {
                value.extend_from_slice(sep);
            }
            value.extend_from_slice(v.as_bytes());
        }
        out.var(&key, &value);
    }
}

/// The client address and port, and the scheme: the peer's, or, from a trusted proxy, what its
/// `X-Forwarded-For` (the right-most address not itself trusted, as nginx's `real_ip_recursive`)
/// or `X-Real-IP` and `X-Forwarded-Proto` say. A forwarded address comes without a port (as
/// nginx's realip gives an empty REMOTE_PORT): the peer's would be the proxy's, not the client's.
fn client_of(
    headers: &HeaderMap,
    conn: &ConnInfo,
    trusted: &Networks,
) -> (Option<(IpAddr, Option<u16>)>, &'static str) {
    let peer = conn.peer;
    let from_proxy = match peer {
        Some(p) => trusted.allows(p.ip()) && !matches!(trusted, Networks::Any),
        // A UNIX socket's peer is a local process: trusted when loopback is.
        None => trusted.allows(IpAddr::from([127, 0, 0, 1])) && !matches!(trusted, Networks::Any),
    };
    let peer_client = peer.map(|p| (p.ip(), Some(p.port())));
    if !from_proxy {
        return (peer_client, "http");
    }
    let scheme = match headers
        .get("x-forwarded-proto")
        .map(|v| v.as_bytes().trim_ascii())
    {
        Some(p) if p.eq_ignore_ascii_case(b"https") => "https",
        _ => "http",
    };
    let forwarded = forwarded_for(headers, trusted).or_else(|| {
        headers
            .get("x-real-ip")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<IpAddr>().ok())
    });
    let remote = forwarded.map(|ip| (ip, None)).or(peer_client);
    (remote, scheme)
}

fn forwarded_for(headers: &HeaderMap, trusted: &Networks) -> Option<IpAddr> {
    let mut addrs: Vec<IpAddr> = Vec::new();
    for v in headers.get_all("x-forwarded-for") {
        for part in v.to_str().ok()?.split(',') {
            addrs.push(part.trim().parse().ok()?);
        }
    }
    let last_untrusted = addrs.iter().rev().find(|ip| !trusted.allows(**ip));
    last_untrusted.or(addrs.first()).copied()
}

/// The request's host: an absolute-form target's authority, else the Host header. The target
/// wins, as RFC 9112 3.2.2 says and nginx's `$host` does: a Host naming another site must not
/// pick the route, SERVER_NAME or HTTP_HOST.
fn host_of(parts: &Parts) -> Option<String> {
    if let Some(a) = parts.uri.authority() {
        return Some(a.as_str().to_owned());
    }
    let h = parts.headers.get(http::header::HOST)?;
    h.to_str().ok().map(str::to_owned)
}

/// The host without port, lowercased, as nginx's `$host`.
fn server_name(host: &str) -> String {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split_once(']').map_or(host, |(v6, _)| v6)
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn protocol(v: Version) -> &'static [u8] {
    match v {
        Version::HTTP_10 => b"HTTP/1.0",
        Version::HTTP_09 => b"HTTP/0.9",
        _ => b"HTTP/1.1",
    }
}

/// nginx's `$document_uri`: the path percent-decoded, `//` merged, `.` and `..` segments
/// resolved. `None` for a bad `%` escape, a NUL, or a `..` above the root (nginx: 400).
pub(crate) fn document_uri(path: &[u8]) -> Option<Vec<u8>> {
    let mut decoded = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        let b = path[i];
        if b == b'%' {
            let hex = path.get(i + 1..i + 3)?;
            let v = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            if v == 0 {
                return None;
            }
            decoded.push(v);
            i += 3;
        } else {
            decoded.push(b);
            i += 1;
        }
    }
    if decoded.first() != Some(&b'/') {
        // `*` (OPTIONS) and other non-path targets pass as they are.
        return Some(decoded);
    }
    let mut segments: Vec<&[u8]> = Vec::new();
    let trailing = decoded.ends_with(b"/") || decoded.ends_with(b"/.") || decoded.ends_with(b"/..");
    for seg in decoded.split(|&b| b == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => {
                segments.pop()?;
            }
            s => segments.push(s),
        }
    }
    let mut out = Vec::with_capacity(decoded.len());
    for s in &segments {
        out.push(b'/');
        out.extend_from_slice(s);
    }
    if trailing || segments.is_empty() {
        out.push(b'/');
    }
    Some(out)
}

/// Writes vars after a header placeholder.
struct Encoder {
    buf: BytesMut,
    too_long: bool,
}

impl Encoder {
    fn new() -> Self {
        let mut buf = BytesMut::with_capacity(1024);
        buf.put_slice(&[0; HEADER_LEN]);
        Self {
            buf,
            too_long: false,
        }
    }

    fn var(&mut self, key: &[u8], value: &[u8]) {
        let (Ok(k), Ok(v)) = (u16::try_from(key.len()), u16::try_from(value.len())) else {
            self.too_long = true;
            return;
        };
        self.buf.put_u16_le(k);
        self.buf.put_slice(key);
        self.buf.put_u16_le(v);
        self.buf.put_slice(value);
    }

    fn finish(mut self, max_vars: usize) -> Result<BytesMut, VarsError> {
        let size = self.buf.len() - HEADER_LEN;
        if self.too_long || size > max_vars.min(MAX_VARS_SIZE) {
            return Err(VarsError::TooLarge);
        }
        let size = u16::try_from(size).map_err(|_| VarsError::TooLarge)?;
        self.buf[1..3].copy_from_slice(&size.to_le_bytes());
        Ok(self.buf)
    }
}

/// True when `name` must not be copied from a node's response to the client.
pub(crate) fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(&name.as_str())
}

#[cfg(test)]
mod tests;
