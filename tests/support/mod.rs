//! Test support: an in-process router, fake uwsgi nodes with scripted behaviour, a uwsgi client
//! and a packet builder. Everything listens on 127.0.0.1 ephemeral ports or in temp dirs.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixStream};
use tokio::task::JoinHandle;
use uwsgi_router::config::Config;
use uwsgi_router::daemon::Daemon;
use uwsgi_router::protocol::{encode_packet, parse_packet, MAX_VARS_SIZE};

/// Upper bound for any single test step; a hang fails the test instead of stalling CI.
pub const STEP: Duration = Duration::from_secs(20);

/// Starts an in-process router from TOML; `listen.uwsgi` defaults to one ephemeral TCP port.
pub async fn start_router(toml: &str) -> Daemon {
    let mut config = Config::parse(toml).expect("test config must be valid");
    if !toml.contains("[listen]") {
        config.listen.uwsgi = vec!["127.0.0.1:0".parse().unwrap()];
    }
    // Never a fixed port in tests: the control plane gets an ephemeral one unless configured.
    if !toml.contains("[control]") {
        config.control.listen = Some(([127, 0, 0, 1], 0).into());
    }
    // ... and so does the metrics listener (`Daemon::metrics_addr`).
    if !toml.contains("[metrics]") {
        config.metrics.listen = Some(([127, 0, 0, 1], 0).into());
        config.metrics.listen_is_default = false;
    }
    Daemon::start(config, None).await.expect("router starts")
}

/// A GET request packet as nginx would send it.
pub fn get(host: &str, path: &str) -> Vec<u8> {
    request("GET", host, path, 0)
}

/// A request packet with `body_len` announced in CONTENT_LENGTH (the body is sent separately).
pub fn request(method: &str, host: &str, path: &str, body_len: usize) -> Vec<u8> {
    let len = if body_len == 0 {
        String::new()
    } else {
        body_len.to_string()
    };
    let vars: Vec<(&[u8], &[u8])> = vec![
        (b"REQUEST_METHOD", method.as_bytes()),
        (b"REQUEST_URI", path.as_bytes()),
        (b"PATH_INFO", path.as_bytes()),
        (b"QUERY_STRING", b""),
        (b"CONTENT_LENGTH", len.as_bytes()),
        (b"SERVER_NAME", b"_"),
        (b"SERVER_PORT", b"80"),
        (b"REMOTE_ADDR", b"127.0.0.1"),
        (b"HTTP_HOST", host.as_bytes()),
    ];
    encode_packet(0, 0, vars).unwrap().to_vec()
}

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

/// What a fake node does with each request.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Answers 200 with `node=<name>`, the body length it read and the request's vars.
    Echo,
    /// Like Echo after a delay.
    Slow(Duration),
    /// Streams `n` bytes of response body.
    Stream(u64),
    /// Reads the request, then closes without answering.
    CloseSilently,
    /// Reads the request, then never answers.
    Hang,
    /// Answers with this HTTP status.
    Status(u16),
    /// Sends a response head, then stalls forever.
    StallAfterHead,
    /// Answers at once and echoes the request body back while it is still arriving.
    Duplex,
    /// As uWSGI with `buffer-size` = this: a vars block larger than it is refused by closing
    /// at once, unread (so the kernel resets the connection); others are echoed.
    DropVarsOver(usize),
}

/// A fake uwsgi node on an ephemeral loopback port.
pub struct FakeNode {
    pub name: String,
    pub addr: SocketAddr,
    /// Requests whose head it has read.
    pub served: Arc<AtomicUsize>,
    /// The raw bytes of the last request (head and body).
    pub last_request: Arc<Mutex<Vec<u8>>>,
    behaviour: Arc<Mutex<Behaviour>>,
    task: JoinHandle<()>,
}

impl FakeNode {
    pub async fn start(name: &str, behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve_on(name, listener, behaviour)
    }

    /// Starts on a given address (to bring a stopped node back on its old port).
    pub async fn start_at(name: &str, addr: SocketAddr, behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind(addr).await.unwrap();
        Self::serve_on(name, listener, behaviour)
    }

    fn serve_on(name: &str, listener: TcpListener, behaviour: Behaviour) -> Self {
        let addr = listener.local_addr().unwrap();
        let served = Arc::new(AtomicUsize::new(0));
        let last_request = Arc::new(Mutex::new(Vec::new()));
        let behaviour = Arc::new(Mutex::new(behaviour));
        let (n, s, l, b) = (
            name.to_owned(),
            served.clone(),
            last_request.clone(),
            behaviour.clone(),
        );
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let (n, s, l, b) = (n.clone(), s.clone(), l.clone(), b.clone());
                tokio::spawn(async move {
                    let behaviour = b.lock().unwrap().clone();
                    let _ = handle(conn, &n, &s, &l, behaviour).await;
                });
            }
        });
        Self {
            name: name.to_owned(),
            addr,
            served,
            last_request,
            behaviour,
            task,
        }
    }

    pub fn served(&self) -> usize {
        self.served.load(SeqCst)
    }

    pub fn set_behaviour(&self, b: Behaviour) {
        *self.behaviour.lock().unwrap() = b;
    }

    /// Stops listening: new connections are refused.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    mut conn: TcpStream,
    name: &str,
    served: &AtomicUsize,
    last: &Mutex<Vec<u8>>,
    behaviour: Behaviour,
) -> std::io::Result<()> {
    let mut raw = vec![0u8; 4];
    conn.read_exact(&mut raw).await?;
    let datasize = usize::from(u16::from_le_bytes([raw[1], raw[2]]));
    if let Behaviour::DropVarsOver(limit) = behaviour {
        if datasize > limit {
            return Ok(());
        }
    }
    raw.resize(4 + datasize, 0);
    conn.read_exact(&mut raw[4..]).await?;
    served.fetch_add(1, SeqCst);
    let (_, vars, _) = parse_packet(&raw, MAX_VARS_SIZE).expect("router forwards valid packets");
    let content_length: u64 = vars
        .get(b"CONTENT_LENGTH")
        .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
        .unwrap_or(0);
    let var_text: String = vars
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}\n",
                String::from_utf8_lossy(k),
                String::from_utf8_lossy(v)
            )
        })
        .collect();
    if let Behaviour::Duplex = behaviour {
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {content_length}\r\n\r\n");
        conn.write_all(head.as_bytes()).await?;
        let mut left = content_length;
        let mut chunk = vec![0u8; 64 * 1024];
        while left > 0 {
            let n = conn.read(&mut chunk[..(left.min(65536) as usize)]).await?;
            if n == 0 {
                break;
            }
            conn.write_all(&chunk[..n]).await?;
            left -= n as u64;
        }
        return conn.shutdown().await;
    }
    // Read the body in chunks, keeping at most 1 MiB of it for inspection.
    let mut body_len = 0u64;
    let mut chunk = vec![0u8; 64 * 1024];
    while body_len < content_length {
        let want = chunk.len().min((content_length - body_len) as usize);
        let n = conn.read(&mut chunk[..want]).await?;
        if n == 0 {
            break;
        }
        if raw.len() < (1 << 20) {
            raw.extend_from_slice(&chunk[..n]);
        }
        body_len += n as u64;
    }
    *last.lock().unwrap() = raw;
    match behaviour {
        Behaviour::Echo | Behaviour::DropVarsOver(_) => {
            respond(
                &mut conn,
                200,
                &format!("node={name}\nbody_length={body_len}\n{var_text}"),
            )
            .await?
        }
        Behaviour::Slow(d) => {
            tokio::time::sleep(d).await;
            respond(
                &mut conn,
                200,
                &format!("node={name}\nbody_length={body_len}\n"),
            )
            .await?
        }
        Behaviour::Stream(n) => {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n");
            conn.write_all(head.as_bytes()).await?;
            let block = vec![b'x'; 64 * 1024];
            let mut left = n;
            while left > 0 {
                let k = left.min(block.len() as u64) as usize;
                conn.write_all(&block[..k]).await?;
                left -= k as u64;
            }
        }
        Behaviour::CloseSilently => return Ok(()),
        Behaviour::Duplex => unreachable!("answered while reading the body"),
        Behaviour::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Behaviour::Status(code) => respond(&mut conn, code, &format!("node={name}\n")).await?,
        Behaviour::StallAfterHead => {
            conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
                .await?;
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    }
    conn.shutdown().await
}

async fn respond(conn: &mut TcpStream, status: u16, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await?;
    conn.write_all(body.as_bytes()).await
}

/// The `node=` line of an echo response.
pub fn node_of(r: &Response) -> String {
    r.text()
        .lines()
        .find_map(|l| l.strip_prefix("node="))
        .unwrap_or_default()
        .to_owned()
}

/// A pool config listing `nodes`.
pub fn pool_toml(algorithm: &str, nodes: &[&FakeNode]) -> String {
    let list: Vec<String> = nodes.iter().map(|n| format!("\"{}\"", n.addr)).collect();
    format!(
        "[pools.default]\nalgorithm = \"{algorithm}\"\nnodes = [{}]\n",
        list.join(", ")
    )
}

/// The real routerd binary, run as a process.
pub mod binary;

/// A gRPC Registry client standing in for an agent.
pub mod registry_client;

/// The request id the router adds to what a node receives.
pub mod request_id;

/// Scraping `/metrics` and probing `/healthz` and `/readyz` over HTTP; parsing the text format.
pub mod scrape;

/// Test certificates for TLS and mTLS.
pub mod tls;
