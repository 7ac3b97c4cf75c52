//! The optional active check: a real uwsgi GET request to the node, with the vars nginx sends;
//! a 2xx or 3xx answer in time means the node serves.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::addr::SocketTarget;
use super::config::HealthConfig;
use crate::protocol::encode_packet;

/// How much of the answer is read: enough for the status line and a small body. Reading on to
/// the end (rather than hanging up after the status line) spares uWSGI a broken-pipe log line.
const MAX_ANSWER_BYTES: u64 = 64 * 1024;

/// Why the active check failed.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// The node's socket refused or broke the connection.
    #[error("active check {uri} on {node}: {source}")]
    Io {
        /// The node address.
        node: String,
        /// The request path.
        uri: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// No answer in time.
    #[error("active check {uri} on {node}: no answer within {after:?}")]
    Timeout {
        /// The node address.
        node: String,
        /// The request path.
        uri: String,
        /// The time allowed.
        after: Duration,
    },
    /// The node answered with a status other than 2xx or 3xx.
    #[error("active check {uri} on {node}: status {status}")]
    Status {
        /// The node address.
        node: String,
        /// The request path.
        uri: String,
        /// The status received.
        status: u16,
    },
    /// The answer does not start with an HTTP status line.
    #[error("active check {uri} on {node}: the answer is not an HTTP response")]
    Malformed {
        /// The node address.
        node: String,
        /// The request path.
        uri: String,
    },
}

/// The active check of one node.
#[derive(Debug, Clone)]
pub struct HealthCheck {
    node: SocketTarget,
    packet: Vec<u8>,
    uri: String,
}

impl HealthCheck {
    /// A check of `node` (`host:port` or `unix:/path`) as `config` says.
    pub fn new(node: SocketTarget, config: &HealthConfig) -> Self {
        let uri = config.path.clone();
        let (path, query) = uri.split_once('?').unwrap_or((&uri, ""));
        let vars: [(&[u8], &[u8]); 12] = [
            (b"REQUEST_METHOD", b"GET"),
            (b"REQUEST_URI", uri.as_bytes()),
            (b"PATH_INFO", path.as_bytes()),
            (b"QUERY_STRING", query.as_bytes()),
            (b"SERVER_PROTOCOL", b"HTTP/1.1"),
            (b"REQUEST_SCHEME", b"http"),
            (b"SERVER_NAME", config.host.as_bytes()),
            (b"SERVER_PORT", b"80"),
            (b"REMOTE_ADDR", b"127.0.0.1"),
            (b"REMOTE_PORT", b"0"),
            (b"HTTP_HOST", config.host.as_bytes()),
            (b"HTTP_USER_AGENT", b"router-agent"),
        ];
        let packet = encode_packet(0, 0, vars)
            .map(|b| b.to_vec())
            .unwrap_or_default();
        Self { node, packet, uri }
    }

    /// Sends the request and reads the answer within `limit`; `Ok` carries the status.
    pub async fn check(&self, limit: Duration) -> Result<u16, HealthError> {
        let io = |source| HealthError::Io {
            node: self.node.to_string(),
            uri: self.uri.clone(),
            source,
        };
        let exchange = async {
            let mut conn = self.node.connect().await.map_err(io)?;
            conn.write_all(&self.packet).await.map_err(io)?;
            let mut answer = Vec::with_capacity(1024);
            conn.take(MAX_ANSWER_BYTES)
                .read_to_end(&mut answer)
                .await
                .map_err(io)?;
            Ok(answer)
        };
        let answer =
            tokio::time::timeout(limit, exchange)
                .await
                .map_err(|_| HealthError::Timeout {
                    node: self.node.to_string(),
                    uri: self.uri.clone(),
                    after: limit,
                })??;
        match status_of(&answer) {
            Some(status) if (200..400).contains(&status) => Ok(status),
            Some(status) => Err(HealthError::Status {
                node: self.node.to_string(),
                uri: self.uri.clone(),
                status,
            }),
            None => Err(HealthError::Malformed {
                node: self.node.to_string(),
                uri: self.uri.clone(),
            }),
        }
    }
}

/// The status of `HTTP/1.x NNN ...`, or of a CGI-style `Status: NNN ...` head.
fn status_of(answer: &[u8]) -> Option<u16> {
    let line_end = answer.iter().position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&answer[..line_end]).ok()?;
    let mut words = line.split_whitespace();
    match words.next()? {
        w if w.starts_with("HTTP/") || w.eq_ignore_ascii_case("status:") => {
            words.next()?.parse().ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::status_of;

    #[test]
    fn status_line_is_parsed() {
        assert_eq!(status_of(b"HTTP/1.1 200 OK\r\n\r\n"), Some(200));
        assert_eq!(
            status_of(b"HTTP/1.0 302 Found\r\nLocation: /\r\n"),
            Some(302)
        );
        assert_eq!(status_of(b"Status: 503 Busy\r\n"), Some(503));
        assert_eq!(status_of(b"HTTP/1.1 200 OK"), None, "no complete line");
        assert_eq!(status_of(b"garbage\r\n"), None);
        assert_eq!(status_of(b""), None);
    }
}
