//! A plain HTTP/1.1 client over one kept-alive connection, speaking raw bytes so a test can send
//! exactly what an attacker or a proxy would, and read each response as framed on the wire.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::wait::STEP;

/// A response as read off the connection.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Header lines in order, names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// True when the body was chunked on the wire.
    pub chunked: bool,
}

impl HttpResponse {
    /// The value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One client connection.
pub struct HttpConn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl HttpConn {
    pub async fn connect(addr: &str) -> Self {
        Self {
            stream: TcpStream::connect(addr)
                .await
                .expect("connect to the HTTP listener"),
            buf: Vec::new(),
        }
    }

    /// Sends `raw` as it is.
    pub async fn send(&mut self, raw: &[u8]) {
        self.stream.write_all(raw).await.unwrap();
    }

    /// Sends `raw` and reads one response (`head_request`: it has no body).
    pub async fn request(&mut self, raw: &[u8]) -> HttpResponse {
        self.send(raw).await;
        self.response(raw.starts_with(b"HEAD ")).await
    }

    /// Reads one response.
    pub async fn response(&mut self, head_request: bool) -> HttpResponse {
        tokio::time::timeout(STEP, self.read_response(head_request))
            .await
            .expect("a response within the step timeout")
    }

    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16384];
        let n = self.stream.read(&mut chunk).await.unwrap_or(0);
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    async fn read_response(&mut self, head_request: bool) -> HttpResponse {
        let (status, headers, len) = loop {
            let mut h = [httparse::EMPTY_HEADER; 64];
            let mut r = httparse::Response::new(&mut h);
            if let httparse::Status::Complete(len) = r.parse(&self.buf).expect("a valid head") {
                let headers: Vec<(String, String)> = r
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                break (r.code.unwrap(), headers, len);
            }
            assert!(
                self.fill().await,
                "connection closed before a response head"
            );
        };
        self.buf.drain(..len);
        let mut resp = HttpResponse {
            status,
            headers,
            body: Vec::new(),
            chunked: false,
        };
        if head_request || status == 204 || status == 304 || (100..200).contains(&status) {
            return resp;
        }
        if let Some(n) = resp.header("content-length") {
            let n: usize = n.parse().unwrap();
            while self.buf.len() < n {
                assert!(self.fill().await, "connection closed inside a body");
            }
            resp.body = self.buf.drain(..n).collect();
        } else if resp.header("transfer-encoding") == Some("chunked") {
            resp.chunked = true;
            loop {
                let line_end = loop {
                    if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                        break i;
                    }
                    assert!(self.fill().await, "connection closed inside a chunk size");
                };
                let size = usize::from_str_radix(
                    std::str::from_utf8(&self.buf[..line_end]).unwrap().trim(),
                    16,
                )
                .unwrap();
                self.buf.drain(..line_end + 2);
                while self.buf.len() < size + 2 {
                    assert!(self.fill().await, "connection closed inside a chunk");
                }
                resp.body.extend(self.buf.drain(..size));
                self.buf.drain(..2);
                if size == 0 {
                    break;
                }
            }
        } else {
            while self.fill().await {}
            resp.body = std::mem::take(&mut self.buf);
        }
        resp
    }

    /// Reads exactly `n` raw bytes (after a protocol switch).
    pub async fn read_exactly(&mut self, n: usize) -> Vec<u8> {
        tokio::time::timeout(STEP, async {
            while self.buf.len() < n {
                assert!(self.fill().await, "connection closed before {n} bytes");
            }
            self.buf.drain(..n).collect()
        })
        .await
        .expect("the bytes within the step timeout")
    }

    /// True when the server has closed the connection by now (waits at most 100 ms).
    pub async fn is_closed_now(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(
            tokio::time::timeout(
                std::time::Duration::from_millis(100),
                self.stream.read(&mut b)
            )
            .await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }

    /// True when the server has closed the connection (nothing more to read).
    pub async fn is_closed(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut b = [0u8; 1];
        matches!(
            tokio::time::timeout(STEP, self.stream.read(&mut b)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}
