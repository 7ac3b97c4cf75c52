//! A bounded load through nginx, as browsers would send it: a few clients, each sending
//! `GET /echo/...` one after the other until told to stop, for at most a number of requests and
//! a duration. Every outcome is kept with its times, so a phase can count what failed when.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::http;

/// One request and how it ended.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    /// When the client started connecting to nginx.
    pub(crate) started: Instant,
    /// The `node=` of a 200 from Django, or why the request failed.
    pub(crate) result: Result<String, String>,
}

/// What the clients saw so far, shared with them.
#[derive(Default)]
struct Seen {
    /// Successful replies per `NODE_NAME`.
    by_node: Mutex<BTreeMap<String, u64>>,
    failed: AtomicU64,
    sent: AtomicU64,
}

/// Clients sending requests in a loop.
pub(crate) struct Load {
    stop: Arc<AtomicBool>,
    seen: Arc<Seen>,
    clients: Vec<JoinHandle<(Vec<Outcome>, bool)>>,
}

/// All outcomes of a load, once stopped.
pub(crate) struct Report {
    /// Every request, of every client.
    pub(crate) outcomes: Vec<Outcome>,
}

impl Load {
    /// Starts `clients` clients against nginx at `addr`; each stops when told, after `max_each`
    /// requests, or after `max_duration`.
    pub(crate) fn start(
        addr: SocketAddr,
        host: &'static str,
        clients: usize,
        max_each: usize,
        max_duration: Duration,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Seen::default());
        let deadline = Instant::now() + max_duration;
        let clients = (0..clients)
            .map(|client| {
                let (stop, seen) = (stop.clone(), seen.clone());
                std::thread::spawn(move || {
                    let mut outcomes = Vec::new();
                    for i in 0..max_each {
                        if stop.load(Relaxed) {
                            return (outcomes, true);
                        }
                        if Instant::now() >= deadline {
                            break;
                        }
                        let started = Instant::now();
                        let result = one_request(addr, host, &format!("/echo/load/{client}/{i}"));
                        seen.sent.fetch_add(1, Relaxed);
                        match &result {
                            Ok(node) => {
                                let mut by_node = seen.by_node.lock().unwrap();
                                *by_node.entry(node.clone()).or_insert(0) += 1;
                            }
                            Err(_) => {
                                seen.failed.fetch_add(1, Relaxed);
                            }
                        }
                        outcomes.push(Outcome { started, result });
                    }
                    // Out of requests or time before being told to stop.
                    (outcomes, stop.load(Relaxed))
                })
            })
            .collect();
        Load {
            stop,
            seen,
            clients,
        }
    }

    /// Successful replies from the node run called `name` so far.
    pub(crate) fn served_by(&self, name: &str) -> u64 {
        let by_node = self.seen.by_node.lock().unwrap();
        by_node.get(name).copied().unwrap_or(0)
    }

    /// Requests completed so far.
    pub(crate) fn sent(&self) -> u64 {
        self.seen.sent.load(Relaxed)
    }

    /// Failed requests so far.
    pub(crate) fn failed(&self) -> u64 {
        self.seen.failed.load(Relaxed)
    }

    /// Stops the clients and collects every outcome. Fails if a client ran out of requests or
    /// time before it was told to stop: the load must cover the whole phase it measures.
    pub(crate) fn stop(self) -> Report {
        self.stop.store(true, Relaxed);
        let (report, cut_short) = self.collect();
        assert_eq!(
            cut_short, 0,
            "{cut_short} load clients ran out of requests or time before the phase ended"
        );
        report
    }

    /// Joins the clients: every outcome, and how many clients ended before they were told to.
    fn collect(self) -> (Report, usize) {
        let mut outcomes = Vec::new();
        let mut cut_short = 0;
        for client in self.clients {
            let (mut mine, stopped) = client.join().expect("load client panicked");
            if !stopped {
                cut_short += 1;
            }
            outcomes.append(&mut mine);
        }
        outcomes.sort_by_key(|o| o.started);
        (Report { outcomes }, cut_short)
    }
}

impl Report {
    /// The failed requests.
    pub(crate) fn failures(&self) -> Vec<&Outcome> {
        self.outcomes.iter().filter(|o| o.result.is_err()).collect()
    }

    /// Successful replies per `NODE_NAME`.
    pub(crate) fn by_node(&self) -> BTreeMap<String, u64> {
        let mut by_node = BTreeMap::new();
        for o in &self.outcomes {
            if let Ok(node) = &o.result {
                *by_node.entry(node.clone()).or_insert(0) += 1;
            }
        }
        by_node
    }

    /// A few failures, described, for assertion messages.
    pub(crate) fn describe_failures(&self, first: Instant, max: usize) -> String {
        self.failures()
            .iter()
            .take(max)
            .map(|o| {
                format!(
                    "  at +{:?}: {}",
                    o.started.duration_since(first),
                    o.result.as_ref().unwrap_err()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// One GET through nginx: the answering node's name on a 200 from Django, else what went wrong.
fn one_request(addr: SocketAddr, host: &str, path: &str) -> Result<String, String> {
    let reply = http::request(addr, "GET", path, host, &[]).map_err(|e| format!("{path}: {e}"))?;
    let text = reply.text();
    if reply.head.status != 200 {
        return Err(format!(
            "{path}: status {}: {}",
            reply.head.status,
            text.trim()
        ));
    }
    text.lines()
        .find_map(|line| line.strip_prefix("node="))
        .map(str::to_owned)
        .ok_or_else(|| format!("{path}: 200 without node= (not Django's echo view): {text}"))
}
