//! The small raw HTTP responses the router writes itself when it cannot hand a request to a node.

use bytes::Bytes;

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

/// A complete HTTP response with a plain-text `reason`, ready to write to the client.
pub fn reply(status: ReplyStatus, reason: &str) -> Bytes {
    let body_len = reason.len() + 1;
    let text = format!(
        "{}Content-Type: text/plain; charset=utf-8\r\nContent-Length: {body_len}\r\nConnection: close\r\nX-Uwsgi-Router: {}\r\n\r\n{reason}\n",
        status.status_line(),
        status.code(),
    );
    Bytes::from(text)
}
