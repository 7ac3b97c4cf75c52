//! A fake uwsgi node on an ephemeral loopback port with scripted behaviour: it echoes, stalls,
//! streams, closes or refuses as a test needs, and counts what it served.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use uwsgi_router::protocol::{parse_packet, MAX_VARS_SIZE};

use super::wait::wait_until;

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
    /// Switches protocols (101, WebSocket-style), sends `hello`, then echoes what it reads.
    Upgrade,
    /// Reads the request, writes these bytes as its whole response, then closes.
    Raw(Vec<u8>),
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
    /// Connections open now, and the most ever open at once.
    open: Arc<(AtomicUsize, AtomicUsize)>,
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
        let open = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
        let (n, s, l, b, o) = (
            name.to_owned(),
            served.clone(),
            last_request.clone(),
            behaviour.clone(),
            open.clone(),
        );
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let (n, s, l, b, o) = (n.clone(), s.clone(), l.clone(), b.clone(), o.clone());
                tokio::spawn(async move {
                    let now = o.0.fetch_add(1, SeqCst) + 1;
                    o.1.fetch_max(now, SeqCst);
                    let behaviour = b.lock().unwrap().clone();
                    let _ = handle(conn, &n, &s, &l, behaviour).await;
                    o.0.fetch_sub(1, SeqCst);
                });
            }
        });
        Self {
            name: name.to_owned(),
            addr,
            served,
            last_request,
            open,
            behaviour,
            task,
        }
    }

    /// The most connections the node ever had open at once.
    pub fn peak_connections(&self) -> usize {
        self.open.1.load(SeqCst)
    }

    pub fn served(&self) -> usize {
        self.served.load(SeqCst)
    }

    /// Waits until the node has read `n` request heads (those requests are in flight in the
    /// router while the node holds them).
    pub async fn wait_served(&self, n: usize) {
        let what = format!("{} to get {n} request(s)", self.name);
        wait_until(what, || self.served() >= n).await;
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
        Behaviour::Raw(bytes) => conn.write_all(&bytes).await?,
        Behaviour::Upgrade => {
            conn.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nhello")
                .await?;
            let mut buf = vec![0u8; 4096];
            loop {
                let n = conn.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                conn.write_all(&buf[..n]).await?;
            }
        }
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
