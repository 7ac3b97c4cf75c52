//! A bounded load of browsers: a few clients, each sending one GET at a time to nginx's UNIX
//! socket on the router host, recording when each request started and ended and which node
//! answered (or how it failed). Bounded in requests per client and in time.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Between two requests of one client: the load stays at a few hundred requests a second, so
/// the 2-core machine still runs every host's processes promptly.
const PACE: Duration = Duration::from_millis(5);
/// Longest a request may take before it counts as hung (routerd answers 504 after 5 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One request's outcome.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    /// When the client connected.
    pub(crate) start: Instant,
    /// When the response had been read.
    pub(crate) end: Instant,
    /// The node that answered, or what went wrong (status line and body, or the I/O error).
    pub(crate) result: Result<String, String>,
}

/// Running clients.
pub(crate) struct Load {
    stop: Arc<AtomicBool>,
    records: Arc<Mutex<Vec<Record>>>,
    clients: Vec<JoinHandle<()>>,
}

impl Load {
    /// Starts `clients` clients on `socket`; each stops after `max_each` requests, after
    /// `max_time`, or at [`Load::stop`], whichever comes first.
    pub(crate) fn start(
        socket: PathBuf,
        clients: usize,
        max_each: usize,
        max_time: Duration,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let records = Arc::new(Mutex::new(Vec::new()));
        let deadline = Instant::now() + max_time;
        let clients = (0..clients)
            .map(|c| {
                let (stop, records, socket) = (stop.clone(), records.clone(), socket.clone());
                thread::spawn(move || {
                    for i in 0..max_each {
                        if stop.load(Ordering::Relaxed) || Instant::now() >= deadline {
                            return;
                        }
                        let start = Instant::now();
                        let result = get(&socket, &format!("/echo/?client={c}&n={i}"));
                        let end = Instant::now();
                        records.lock().unwrap().push(Record { start, end, result });
                        thread::sleep(PACE);
                    }
                })
            })
            .collect();
        Load {
            stop,
            records,
            clients,
        }
    }

    /// The records so far.
    pub(crate) fn records(&self) -> Vec<Record> {
        self.records.lock().unwrap().clone()
    }

    /// Stops the clients and returns every record.
    pub(crate) fn stop(self) -> Vec<Record> {
        self.stop.store(true, Ordering::Relaxed);
        for c in self.clients {
            c.join().expect("a load client panicked");
        }
        let records = self.records.lock().unwrap();
        records.clone()
    }
}

/// One GET through nginx: `Ok(node)` for a 200 naming its node, else `Err(what happened)`.
fn get(socket: &PathBuf, path: &str) -> Result<String, String> {
    let mut stream = UnixStream::connect(socket).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(REQUEST_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: shop.example.test\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut reply = Vec::new();
    stream
        .take(1 << 20)
        .read_to_end(&mut reply)
        .map_err(|e| format!("receive: {e}"))?;
    let text = String::from_utf8_lossy(&reply);
    let status = text.lines().next().unwrap_or_default();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    let node = body.lines().find_map(|l| l.strip_prefix("node="));
    match node {
        Some(node) if status.contains(" 200 ") => Ok(node.to_owned()),
        _ => Err(format!("{status}: {}", body.trim())),
    }
}
