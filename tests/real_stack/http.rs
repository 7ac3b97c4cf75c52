//! A minimal HTTP/1.1 client over `TcpStream`: one request per connection, responses framed by
//! chunked encoding, Content-Length or EOF, the body handed over piece by piece.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Longest silence tolerated from nginx before the request counts as hung.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// Largest body read to EOF: well above the test's biggest response, so a runaway one ends.
const MAX_BODY: u64 = 1 << 30;

/// A status line and headers.
#[derive(Debug)]
pub(crate) struct Head {
    /// The status code.
    pub(crate) status: u16,
    headers: Vec<(String, String)>,
}

impl Head {
    /// The first header called `name` (case-insensitive).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A whole response.
#[derive(Debug)]
pub(crate) struct Response {
    /// Status and headers.
    pub(crate) head: Head,
    /// The body, de-chunked.
    pub(crate) body: Vec<u8>,
}

impl Response {
    /// The body as text (the echo view answers UTF-8).
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends a request and collects the whole response.
pub(crate) fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    host: &str,
    body: &[u8],
) -> io::Result<Response> {
    let mut collected = Vec::new();
    let head = request_streamed(addr, method, path, host, body, |piece| {
        collected.extend_from_slice(piece)
    })?;
    Ok(Response {
        head,
        body: collected,
    })
}

/// Sends a request and passes the response body to `on_body` as it arrives, so a large
/// response never sits in memory.
pub(crate) fn request_streamed(
    addr: SocketAddr,
    method: &str,
    path: &str,
    host: &str,
    body: &[u8],
    on_body: impl FnMut(&[u8]),
) -> io::Result<Head> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut writer = &stream;
    let request_head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    writer.write_all(request_head.as_bytes())?;
    writer.write_all(body)?;
    let mut reader = BufReader::with_capacity(64 * 1024, &stream);
    let head = read_head(&mut reader)?;
    read_body(&mut reader, &head, on_body)?;
    Ok(head)
}

impl Response {
    /// A whole response read off a connection (an HTTP response as uWSGI or routerd writes it).
    pub(crate) fn parse(raw: &[u8]) -> io::Result<Response> {
        let mut reader = raw;
        let head = read_head(&mut reader)?;
        let mut body = Vec::new();
        read_body(&mut reader, &head, |b| body.extend_from_slice(b))?;
        Ok(Response { head, body })
    }
}

fn read_head(reader: &mut impl BufRead) -> io::Result<Head> {
    let status_line = read_line(reader)?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
    let mut headers = Vec::new();
    for _ in 0..200 {
        let line = read_line(reader)?;
        if line.is_empty() {
            return Ok(Head { status, headers });
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid(format!("bad header {line:?}")))?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    Err(invalid("more than 200 response headers".to_owned()))
}

fn read_body(
    reader: &mut impl BufRead,
    head: &Head,
    mut on_body: impl FnMut(&[u8]),
) -> io::Result<()> {
    let chunked = head
        .header("transfer-encoding")
        .is_some_and(|te| te.eq_ignore_ascii_case("chunked"));
    if chunked {
        return read_chunked(reader, on_body);
    }
    match head.header("content-length") {
        Some(len) => {
            let len = len
                .parse()
                .map_err(|_| invalid(format!("bad Content-Length {len:?}")))?;
            copy_exactly(reader, len, &mut on_body)
        }
        None => copy_to_eof(reader, &mut on_body),
    }
}

/// Chunked transfer coding: `size-in-hex CRLF data CRLF`, ending with a 0-size chunk.
fn read_chunked(reader: &mut impl BufRead, mut on_body: impl FnMut(&[u8])) -> io::Result<()> {
    // Bounded: 100 MB in nginx's chunks is far below a million of them.
    for _ in 0..1_000_000 {
        let line = read_line(reader)?;
        let hex = line.split(';').next().unwrap_or_default().trim();
        let size = u64::from_str_radix(hex, 16)
            .map_err(|_| invalid(format!("bad chunk size {line:?}")))?;
        if size == 0 {
            // Trailers, if any, end with an empty line.
            while !read_line(reader)?.is_empty() {}
            return Ok(());
        }
        copy_exactly(reader, size, &mut on_body)?;
        if !read_line(reader)?.is_empty() {
            return Err(invalid("chunk not followed by CRLF".to_owned()));
        }
    }
    Err(invalid("too many chunks".to_owned()))
}

fn copy_exactly(
    reader: &mut impl BufRead,
    mut left: u64,
    on_body: &mut impl FnMut(&[u8]),
) -> io::Result<()> {
    while left > 0 {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("body ended {left} bytes early"),
            ));
        }
        let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        on_body(&buf[..n]);
        reader.consume(n);
        left -= n as u64;
    }
    Ok(())
}

fn copy_to_eof(reader: &mut impl BufRead, on_body: &mut impl FnMut(&[u8])) -> io::Result<()> {
    let mut total = 0;
    while total <= MAX_BODY {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        let n = buf.len();
        on_body(buf);
        reader.consume(n);
        total += n as u64;
    }
    Err(invalid(format!("body longer than {MAX_BODY} bytes")))
}

/// One CRLF-terminated line without its terminator; EOF before it is an error.
fn read_line(reader: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    reader
        .by_ref()
        .take(16 * 1024)
        .read_until(b'\n', &mut line)?;
    if line.last() != Some(&b'\n') {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed mid-line (or line over 16 KiB)",
        ));
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| invalid("non-UTF-8 line".to_owned()))
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}
