//! A fast uwsgi node: reads the packet and discards the body in constant memory, answers a tiny
//! `200 OK` (or streams `/big/<bytes>`), then closes, writing side first as uWSGI does.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use uwsgi_router::protocol::{Header, Vars, HEADER_LEN, MAX_VARS_SIZE};

use crate::CHUNK;

/// Filler for `/big/<bytes>` responses.
static BIG_CHUNK: [u8; CHUNK] = [b'x'; CHUNK];

/// How the node answers.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Said in every response body: `hello from <name>`.
    pub name: String,
    /// Wait this long before answering each request (to play a slow node).
    pub delay: Duration,
}

/// Accepts connections forever, one task per connection.
pub async fn serve(listener: TcpListener, cfg: NodeConfig) -> io::Result<()> {
    let cfg = Arc::new(cfg);
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let cfg = Arc::clone(&cfg);
                tokio::spawn(async move {
                    // A client that hangs up early is its own business: nothing to report.
                    let _ = handle(stream, &cfg).await;
                });
            }
            // Out of descriptors or similar: wait it out instead of spinning or dying.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// What the request asked for.
struct Request {
    content_length: u64,
    /// `Some(n)` for `/big/<n>`.
    big: Option<u64>,
}

async fn handle(mut stream: TcpStream, cfg: &NodeConfig) -> io::Result<()> {
    let req = read_request(&mut stream).await?;
    discard(&mut stream, req.content_length).await?;
    if !cfg.delay.is_zero() {
        tokio::time::sleep(cfg.delay).await;
    }
    match req.big {
        Some(n) => send_big(&mut stream, n).await?,
        None => {
            let body = format!("hello from {}\n", cfg.name);
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(resp.as_bytes()).await?;
        }
    }
    stream.shutdown().await
}

async fn read_request(stream: &mut TcpStream) -> io::Result<Request> {
    let mut head = [0u8; HEADER_LEN];
    stream.read_exact(&mut head).await?;
    let header = Header::parse(&head, MAX_VARS_SIZE).map_err(invalid)?;
    let mut block = vec![0u8; usize::from(header.datasize)];
    stream.read_exact(&mut block).await?;
    let vars = Vars::parse(&block).map_err(invalid)?;
    let content_length = match vars.get(b"CONTENT_LENGTH") {
        None | Some(b"") => 0,
        Some(v) => parse_u64(v)?,
    };
    let path = vars.get(b"PATH_INFO").unwrap_or(b"/");
    let big = match path.strip_prefix(b"/big/") {
        Some(n) => Some(parse_u64(n)?),
        None => None,
    };
    Ok(Request {
        content_length,
        big,
    })
}

async fn discard(stream: &mut TcpStream, mut left: u64) -> io::Result<()> {
    let mut buf = vec![0u8; CHUNK.min(left as usize)];
    while left > 0 {
        let want = buf.len().min(left as usize);
        let n = stream.read(&mut buf[..want]).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        left -= n as u64;
    }
    Ok(())
}

async fn send_big(stream: &mut TcpStream, mut left: u64) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {left}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await?;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        stream.write_all(&BIG_CHUNK[..n]).await?;
        left -= n as u64;
    }
    Ok(())
}

fn parse_u64(v: &[u8]) -> io::Result<u64> {
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(format!("not a number: {:?}", String::from_utf8_lossy(v))))
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}
