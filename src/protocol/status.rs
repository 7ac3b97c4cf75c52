//! The status of a node's response, read from its first bytes: uWSGI answers a uwsgi request
//! with a raw HTTP response, `HTTP/1.1 200 OK\r\n...`.

/// What the first bytes of a response say about its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusLine {
    /// The status code, 100 to 999.
    Code(u16),
    /// The bytes so far may still become a status line: read more before deciding.
    NeedMore,
    /// Not an HTTP status line: the response is relayed as it is, without a status.
    NotHttp,
}

/// `HTTP/d.d NNN`: how many bytes a status line needs before its code is known.
pub const STATUS_PREFIX: usize = 12;

/// Reads the status code from the start of a response.
pub fn response_status(buf: &[u8]) -> StatusLine {
    const SHAPE: &[u8; STATUS_PREFIX] = b"HTTP/0.0 000";
    for (&b, &want) in buf.iter().zip(SHAPE) {
        let fits = if want == b'0' {
            b.is_ascii_digit()
        } else {
            b == want
        };
        if !fits {
            return StatusLine::NotHttp;
        }
    }
    let Some(code) = buf.get(9..STATUS_PREFIX) else {
        return StatusLine::NeedMore;
    };
    let code = code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    if code < 100
        || buf
            .get(STATUS_PREFIX)
            .is_some_and(|&b| b != b' ' && b != b'\r')
    {
        return StatusLine::NotHttp;
    }
    StatusLine::Code(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_code_once_the_status_line_has_it() {
        assert_eq!(
            response_status(b"HTTP/1.1 200 OK\r\n"),
            StatusLine::Code(200)
        );
        assert_eq!(
            response_status(b"HTTP/1.0 503 Service Unavailable\r\n"),
            StatusLine::Code(503)
        );
        assert_eq!(response_status(b"HTTP/1.1 404"), StatusLine::Code(404));
        for partial in [&b""[..], b"H", b"HTTP/1", b"HTTP/1.1 2", b"HTTP/1.1 20"] {
            assert_eq!(
                response_status(partial),
                StatusLine::NeedMore,
                "{partial:?}"
            );
        }
        for bad in [
            &b"<html>"[..],
            b"HTTP/1.1 2x0 OK",
            b"HTTP/1.1 099 Low",
            b"HTTP/1.1 2000 Long",
            b"Status: 200 OK",
        ] {
            assert_eq!(response_status(bad), StatusLine::NotHttp, "{bad:?}");
        }
    }
}
