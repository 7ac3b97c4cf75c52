//! A uwsgi node that records the vars of every request it gets, in their order and as raw
//! bytes, reads the body, and answers 200: what nginx or routerd sends, kept for comparison.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use uwsgi_router::protocol::{parse_packet, MAX_VARS_SIZE};

use crate::support::wait;

/// One var, key and value as sent.
pub(crate) type Var = (Vec<u8>, Vec<u8>);

/// A request as the node got it.
#[derive(Debug, Clone)]
pub(crate) struct Captured {
    /// The vars, in order.
    pub(crate) vars: Vec<Var>,
    /// The body (`CONTENT_LENGTH` bytes).
    pub(crate) body: Vec<u8>,
}

/// The node, on an ephemeral loopback port; stopped when dropped.
pub(crate) struct CaptureNode {
    /// Its uwsgi socket.
    pub(crate) addr: SocketAddr,
    captured: Arc<Mutex<Vec<Captured>>>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl CaptureNode {
    /// Starts the node.
    pub(crate) fn start() -> CaptureNode {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the capture node");
        let addr = listener.local_addr().unwrap();
        let captured = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let (captured, stop) = (captured.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(SeqCst) {
                        return;
                    }
                    // One request per connection, as uWSGI serves them; errors are the test's
                    // to see (a missing capture), not the node's to survive.
                    if let Ok(stream) = stream {
                        if let Ok(request) = serve(stream) {
                            captured.lock().unwrap().push(request);
                        }
                    }
                }
            })
        };
        CaptureNode {
            addr,
            captured,
            stop,
            accept: Some(accept),
        }
    }

    /// Waits (at most [`wait::STEP`]) for the next request to arrive and takes it; fails the
    /// test if it does not, or if more than one came.
    pub(crate) fn take_one(&self, what: &str) -> Captured {
        let all = wait::poll_for(
            format!("the capture node to get {what}"),
            wait::STEP,
            || {
                let mut captured = self.captured.lock().unwrap();
                (!captured.is_empty()).then(|| std::mem::take(&mut *captured))
            },
        );
        assert_eq!(all.len(), 1, "{what}: one request expected, got {all:?}");
        all.into_iter().next().unwrap()
    }
}

impl Drop for CaptureNode {
    fn drop(&mut self) {
        self.stop.store(true, SeqCst);
        // Wakes the blocking accept so the thread sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// Reads one request (header, vars, body) and answers it.
fn serve(mut stream: TcpStream) -> io::Result<Captured> {
    stream.set_read_timeout(Some(wait::STEP))?;
    let mut header = [0u8; 4];
    stream.read_exact(&mut header)?;
    let size = usize::from(u16::from_le_bytes([header[1], header[2]]));
    let mut packet = header.to_vec();
    packet.resize(4 + size, 0);
    stream.read_exact(&mut packet[4..])?;
    let (_, vars, _) = parse_packet(&packet, MAX_VARS_SIZE)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    let vars: Vec<Var> = vars.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
    let length = vars
        .iter()
        .rev()
        .find(|(k, _)| k == b"CONTENT_LENGTH")
        .and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body)?;
    stream.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\ncaptured\n",
    )?;
    // The response ends with the close, as uWSGI's do.
    stream.shutdown(Shutdown::Write)?;
    Ok(Captured { vars, body })
}
