//! A uwsgi client of the router under test: connect over TCP or a UNIX socket, send a packet and
//! a body, read the response to EOF, all within [`STEP`].

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

use super::packet::get;
use super::wait::{self, STEP};

/// A response as the client saw it.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn parse(raw: &[u8]) -> Self {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(raw.len());
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = raw.get(split + 4..).unwrap_or_default().to_vec();
        Self { status, head, body }
    }
}

/// Connects to a router listener address (`ip:port` or `unix:/path`).
pub async fn connect(addr: &str) -> Box<dyn Stream> {
    match addr.strip_prefix("unix:") {
        Some(p) => Box::new(UnixStream::connect(p).await.expect("connect to router")),
        None => Box::new(TcpStream::connect(addr).await.expect("connect to router")),
    }
}

/// A client stream of either kind.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Sends `packet` then `body`, reads the response to EOF.
pub async fn send(addr: &str, packet: &[u8], body: &[u8]) -> Response {
    tokio::time::timeout(STEP, async {
        let mut s = connect(addr).await;
        s.write_all(packet).await.unwrap();
        s.write_all(body).await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        Response::parse(&raw)
    })
    .await
    .expect("response within the step timeout")
}

/// Sends `packet` and reads whatever comes back until the router closes (for malformed input).
pub async fn send_raw(addr: &str, bytes: &[u8]) -> Vec<u8> {
    tokio::time::timeout(STEP, async {
        let mut s = connect(addr).await;
        let _ = s.write_all(bytes).await;
        let _ = s.shutdown().await;
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw).await;
        raw
    })
    .await
    .expect("router closes within the step timeout")
}

/// The `node=` line of an echo response.
pub fn node_of(r: &Response) -> String {
    r.text()
        .lines()
        .find_map(|l| l.strip_prefix("node="))
        .unwrap_or_default()
        .to_owned()
}

/// Sends `GET /` for `host` to `addr` until `accept` takes the response (a route or a node that
/// changed shows in the answers); fails the test after [`STEP`] with the last answer.
pub async fn wait_answer(
    addr: &str,
    host: &str,
    what: &str,
    accept: impl Fn(&Response) -> bool,
) -> Response {
    let mut last = None;
    let found = wait::within(STEP, async || {
        let r = send(addr, &get(host, "/"), b"").await;
        if accept(&r) {
            return Some(r);
        }
        last = Some((r.status, r.text()));
        None
    })
    .await;
    found.unwrap_or_else(|e| panic!("waiting for {what}: {e}; last answer: {last:?}"))
}
