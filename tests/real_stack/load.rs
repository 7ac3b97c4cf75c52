//! Load through nginx: client threads sending GETs to the echo view in a closed loop, bounded in
//! count and in time, each reply kept with when its request was sent and which node answered.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::http;

/// One request of the load and how it ended.
#[derive(Debug)]
pub(crate) struct Sent {
    /// Its path, which names the client thread and the request's number.
    pub(crate) path: String,
    /// When the client began to connect.
    pub(crate) at: Instant,
    /// Status and answering node, or why no full reply came.
    pub(crate) reply: Result<(u16, String), String>,
}

impl Sent {
    /// True for a 200 from a node, with its echo.
    pub(crate) fn ok(&self) -> bool {
        matches!(&self.reply, Ok((200, _)))
    }

    /// The node whose echo came back, if one did.
    pub(crate) fn node(&self) -> Option<&str> {
        self.reply.as_ref().ok().map(|(_, node)| node.as_str())
    }
}

/// Client threads running; [`Load::finish`] joins them.
pub(crate) struct Load {
    done: Arc<AtomicUsize>,
    clients: Vec<JoinHandle<Vec<Sent>>>,
}

impl Load {
    /// Starts `clients` threads sending GETs for `host` to `entrances` in turn, one request per
    /// connection; together they send at most `max_requests`, and none after `limit`.
    pub(crate) fn start(
        entrances: &[SocketAddr],
        host: &'static str,
        clients: usize,
        max_requests: usize,
        limit: Duration,
    ) -> Load {
        let deadline = Instant::now() + limit;
        let taken = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let clients = (0..clients)
            .map(|c| {
                let addr = entrances[c % entrances.len()];
                let (taken, done) = (Arc::clone(&taken), Arc::clone(&done));
                std::thread::spawn(move || {
                    let mut sent = Vec::new();
                    while Instant::now() < deadline && taken.fetch_add(1, Relaxed) < max_requests {
                        sent.push(get(addr, host, format!("/echo/load/{c}/{}", sent.len())));
                        done.fetch_add(1, Relaxed);
                    }
                    sent
                })
            })
            .collect();
        Load { done, clients }
    }

    /// Requests finished so far, however they ended.
    pub(crate) fn done(&self) -> usize {
        self.done.load(Relaxed)
    }

    /// Waits for every client to stop and returns every request.
    pub(crate) fn finish(self) -> Vec<Sent> {
        self.clients
            .into_iter()
            .flat_map(|c| c.join().expect("a load client panicked"))
            .collect()
    }
}

fn get(addr: SocketAddr, host: &str, path: String) -> Sent {
    let at = Instant::now();
    let reply = match http::request(addr, "GET", &path, host, &[]) {
        Ok(r) => match echoed_node(&r.text()) {
            Some(node) => Ok((r.head.status, node.to_owned())),
            None => Err(format!("{} without an echo: {:?}", r.head.status, r.text())),
        },
        Err(e) => Err(e.to_string()),
    };
    Sent { path, at, reply }
}

/// The `node=` line of an echo.
fn echoed_node(text: &str) -> Option<&str> {
    text.lines().find_map(|l| l.strip_prefix("node="))
}
