//! uwsgi request packets with the vars nginx's `uwsgi_params` sends, so routers see realistic input.

use anyhow::Context as _;
use uwsgi_router::protocol::encode_packet;

/// What to ask for.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path and optional `?query`, as in the HTTP request line.
    pub uri: String,
    /// The Host header (nginx passes it as `HTTP_HOST`).
    pub host: String,
    /// Body length; 0 sends `CONTENT_LENGTH` empty, as nginx does for a GET.
    pub body_bytes: u64,
}

impl RequestSpec {
    /// A GET of `uri` on host `bench.local`.
    pub fn get(uri: &str) -> Self {
        Self {
            method: "GET".to_owned(),
            uri: uri.to_owned(),
            host: "bench.local".to_owned(),
            body_bytes: 0,
        }
    }

    /// A POST of `body_bytes` bytes to `uri`.
    pub fn post(uri: &str, body_bytes: u64) -> Self {
        Self {
            method: "POST".to_owned(),
            body_bytes,
            ..Self::get(uri)
        }
    }

    /// The packet (header and vars); the body, if any, is streamed after it by the caller.
    pub fn packet(&self) -> anyhow::Result<Vec<u8>> {
        let (path, query) = self.uri.split_once('?').unwrap_or((&self.uri, ""));
        let length = match self.body_bytes {
            0 => String::new(),
            n => n.to_string(),
        };
        let content_type = if self.body_bytes > 0 {
            "application/octet-stream"
        } else {
            ""
        };
        let mut vars: Vec<(&str, &str)> = vec![
            ("QUERY_STRING", query),
            ("REQUEST_METHOD", &self.method),
            ("CONTENT_TYPE", content_type),
            ("CONTENT_LENGTH", &length),
            ("REQUEST_URI", &self.uri),
            ("PATH_INFO", path),
            ("DOCUMENT_ROOT", "/usr/share/nginx/html"),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
            ("REQUEST_SCHEME", "http"),
            ("REMOTE_ADDR", "127.0.0.1"),
            ("REMOTE_PORT", "54321"),
            ("SERVER_PORT", "80"),
            ("SERVER_NAME", "_"),
            ("HTTP_HOST", &self.host),
            ("HTTP_USER_AGENT", "uwsgi-load/0.1"),
            ("HTTP_ACCEPT", "*/*"),
        ];
        if self.body_bytes > 0 {
            vars.push(("HTTP_CONTENT_TYPE", content_type));
            vars.push(("HTTP_CONTENT_LENGTH", &length));
        }
        let packet = encode_packet(0, 0, vars.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())))
            .context("encoding the request packet")?;
        Ok(packet.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uwsgi_router::protocol::{parse_packet, MAX_VARS_SIZE};

    #[test]
    fn packet_round_trips_through_the_router_codec() {
        let packet = RequestSpec::get("/hello?x=1").packet().unwrap();
        let (header, vars, rest) = parse_packet(&packet, MAX_VARS_SIZE).unwrap();
        assert_eq!(header.modifier1, 0);
        assert!(rest.is_empty());
        assert_eq!(vars.get(b"PATH_INFO"), Some(&b"/hello"[..]));
        assert_eq!(vars.get(b"QUERY_STRING"), Some(&b"x=1"[..]));
        assert_eq!(vars.get(b"CONTENT_LENGTH"), Some(&b""[..]));
    }

    #[test]
    fn post_announces_its_body() {
        let packet = RequestSpec::post("/up", 1 << 30).packet().unwrap();
        let (_, vars, _) = parse_packet(&packet, MAX_VARS_SIZE).unwrap();
        assert_eq!(vars.get(b"CONTENT_LENGTH"), Some(&b"1073741824"[..]));
        assert_eq!(vars.get(b"REQUEST_METHOD"), Some(&b"POST"[..]));
    }
}
