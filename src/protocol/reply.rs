//! The small raw HTTP responses the router writes itself when it cannot hand a request to a node.

use bytes::Bytes;

use super::RequestId;

/// Why the router answers instead of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyStatus {
    /// Every attempt to reach a node failed, or the node closed without answering.
    BadGateway,
    /// No pool for the routing key, or no usable node in it.
    ServiceUnavailable,
    /// The node sent no response in time.
    GatewayTimeout,
}

impl ReplyStatus {
    /// The numeric status code.
    pub fn code(self) -> u16 {
        match self {
            Self::BadGateway => 502,
            Self::ServiceUnavailable => 503,
            Self::GatewayTimeout => 504,
        }
    }

    fn status_line(self) -> &'static str {
        match self {
            Self::BadGateway => "HTTP/1.1 502 Bad Gateway\r\n",
            Self::ServiceUnavailable => "HTTP/1.1 503 Service Unavailable\r\n",
            Self::GatewayTimeout => "HTTP/1.1 504 Gateway Timeout\r\n",
        }
    }
}

/// A complete HTTP response with a plain-text `reason`, ready to write to the client. With a
/// request id, the body ends with a `request id: ...` line and an `X-Request-Id` header carries
/// it too, so what a user reports can be found in the access log and the node's logs.
pub fn reply(status: ReplyStatus, reason: &str, request_id: Option<&RequestId>) -> Bytes {
    let (header, line) = match request_id {
        Some(id) => (
            format!("X-Request-Id: {id}\r\n"),
            format!("request id: {id}\n"),
        ),
        None => (String::new(), String::new()),
    };
    let body_len = reason.len() + 1 + line.len();
    let text = format!(
        "{}Content-Type: text/plain; charset=utf-8\r\nContent-Length: {body_len}\r\nConnection: close\r\nX-Uwsgi-Router: {}\r\n{header}\r\n{reason}\n{line}",
        status.status_line(),
        status.code(),
    );
    Bytes::from(text)
}
