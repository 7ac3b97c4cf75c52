//! uWSGI's stats server: read one JSON document per connection (bounded in size and time) and
//! turn it into the node's load.
//!
//! Worker states: `busy` and `idle` workers count towards busy and idle; `pause`, `sig<N>` (a
//! worker running a signal handler) and anything unknown count as neither, but are part of the
//! capacity. `cheap` workers (not running, uWSGI's cheaper mode) are not part of the capacity.
//! A worker's capacity is its core count (threads or async cores), at least 1; a busy worker's
//! busy share is its cores with a request in hand (at least 1), the rest of it is idle.

use std::time::Duration;

use serde::Deserialize;
use tokio::io::AsyncReadExt;

use super::addr::SocketTarget;

/// Largest stats document accepted (thousands of workers with per-core request vars fit).
pub const MAX_STATS_BYTES: u64 = 8 * 1024 * 1024;

/// The node's load, from one stats document.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeLoad {
    /// Request slots: cores of the workers that are not `cheap`.
    pub capacity: u32,
    /// Slots serving a request.
    pub busy: u32,
    /// Slots waiting for a request.
    pub idle: u32,
    /// Connections in the listen queue (top-level `listen_queue`).
    pub listen_queue: u32,
    /// Requests served since start, all workers.
    pub requests: u64,
    /// Mean `avg_rt` (microseconds) of the workers that served requests; 0 when none did.
    pub avg_rt_us: u64,
    /// uWSGI master's pid: a change means uWSGI restarted.
    pub pid: u64,
}

/// Why the stats could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// Nothing accepts connections there (uWSGI down or not started yet).
    #[error("cannot connect to the uWSGI stats server {addr}: {source}")]
    Connect {
        /// The stats address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The connection broke while reading.
    #[error("reading the uWSGI stats from {addr} failed: {source}")]
    Read {
        /// The stats address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// No complete document in time.
    #[error("the uWSGI stats server {addr} did not answer within {after:?}")]
    Timeout {
        /// The stats address.
        addr: String,
        /// The time allowed.
        after: Duration,
    },
    /// The document is larger than [`MAX_STATS_BYTES`].
    #[error("the uWSGI stats document from {addr} exceeds {MAX_STATS_BYTES} bytes")]
    TooLarge {
        /// The stats address.
        addr: String,
    },
    /// Not the JSON of a uWSGI stats document (truncated, or another service on that port).
    #[error("the uWSGI stats document is malformed: {0}")]
    Malformed(String),
}

/// Connects to `addr`, reads the whole document and parses it, all within `limit`.
pub async fn read_stats(addr: &SocketTarget, limit: Duration) -> Result<NodeLoad, StatsError> {
    let name = || addr.to_string();
    let read = async {
        let conn = addr.connect().await.map_err(|source| StatsError::Connect {
            addr: name(),
            source,
        })?;
        let mut doc = Vec::with_capacity(16 * 1024);
        conn.take(MAX_STATS_BYTES + 1)
            .read_to_end(&mut doc)
            .await
            .map_err(|source| StatsError::Read {
                addr: name(),
                source,
            })?;
        if doc.len() as u64 > MAX_STATS_BYTES {
            return Err(StatsError::TooLarge { addr: name() });
        }
        parse_stats(&doc)
    };
    tokio::time::timeout(limit, read).await.unwrap_or_else(|_| {
        Err(StatsError::Timeout {
            addr: name(),
            after: limit,
        })
    })
}

#[derive(Deserialize)]
struct RawStats {
    #[serde(default)]
    listen_queue: u64,
    #[serde(default)]
    pid: u64,
    workers: Vec<RawWorker>,
}

#[derive(Deserialize)]
struct RawWorker {
    status: String,
    #[serde(default)]
    requests: u64,
    #[serde(default)]
    avg_rt: u64,
    #[serde(default)]
    cores: Vec<RawCore>,
}

#[derive(Deserialize)]
struct RawCore {
    #[serde(default)]
    in_request: u64,
}

/// Parses a stats document.
pub fn parse_stats(doc: &[u8]) -> Result<NodeLoad, StatsError> {
    let raw: RawStats =
        serde_json::from_slice(doc).map_err(|e| StatsError::Malformed(e.to_string()))?;
    let mut load = NodeLoad {
        listen_queue: saturate(raw.listen_queue),
        pid: raw.pid,
        ..NodeLoad::default()
    };
    let (mut rt_sum, mut rt_workers) = (0u64, 0u64);
    for w in &raw.workers {
        load.requests = load.requests.saturating_add(w.requests);
        if w.requests > 0 {
            rt_sum = rt_sum.saturating_add(w.avg_rt);
            rt_workers += 1;
        }
        if w.status == "cheap" {
            continue;
        }
        let slots = saturate(w.cores.len() as u64).max(1);
        load.capacity = load.capacity.saturating_add(slots);
        match w.status.as_str() {
            "busy" => {
                let in_request = w.cores.iter().filter(|c| c.in_request != 0).count();
                let busy = saturate(in_request as u64).clamp(1, slots);
                load.busy += busy;
                load.idle += slots - busy;
            }
            "idle" => load.idle += slots,
            _ => {}
        }
    }
    load.avg_rt_us = rt_sum.checked_div(rt_workers).unwrap_or(0);
    Ok(load)
}

fn saturate(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/uwsgi-stats-{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(path).expect("fixture")
    }

    #[test]
    fn idle_node_has_no_busy_workers() {
        let load = parse_stats(&fixture("idle")).unwrap();
        assert_eq!((load.capacity, load.busy, load.idle), (2, 0, 2));
        assert_eq!(
            (load.listen_queue, load.requests, load.avg_rt_us),
            (0, 0, 0)
        );
        assert!(load.pid > 0);
    }

    #[test]
    fn busy_node_has_two_busy_workers() {
        let load = parse_stats(&fixture("busy")).unwrap();
        assert_eq!((load.capacity, load.busy, load.idle), (2, 2, 0));
    }

    #[test]
    fn queued_node_reports_its_listen_queue_and_latency() {
        let load = parse_stats(&fixture("queued")).unwrap();
        assert_eq!(load.listen_queue, 61);
        assert_eq!(load.requests, 193 + 194);
        assert_eq!(load.avg_rt_us, (22866 + 21064) / 2);
        assert_eq!((load.busy, load.idle), (2, 0));
    }

    #[test]
    fn truncated_document_is_a_clear_error() {
        let doc = fixture("busy");
        let err = parse_stats(&doc[..doc.len() / 2]).unwrap_err();
        assert!(matches!(err, StatsError::Malformed(_)), "{err:?}");
        assert!(err.to_string().contains("malformed"), "{err}");
        let err = parse_stats(b"{\"version\": \"2.0\"}").unwrap_err();
        assert!(err.to_string().contains("workers"), "{err}");
        assert!(parse_stats(b"HTTP/1.1 400 Bad Request\r\n").is_err());
    }

    #[test]
    fn threads_cheap_and_paused_workers() {
        let doc = br#"{"listen_queue": 3, "workers": [
            {"status": "busy", "requests": 10, "avg_rt": 100,
             "cores": [{"in_request": 1}, {"in_request": 0}, {"in_request": 1}, {"in_request": 0}]},
            {"status": "idle", "requests": 0, "avg_rt": 0, "cores": [{}, {}, {}, {}]},
            {"status": "cheap", "requests": 5, "avg_rt": 300, "cores": [{}, {}, {}, {}]},
            {"status": "pause", "requests": 0, "avg_rt": 0, "cores": [{}, {}, {}, {}]},
            {"status": "sig23", "requests": 0, "avg_rt": 0}
        ]}"#;
        let load = parse_stats(doc).unwrap();
        assert_eq!(
            load.capacity,
            4 + 4 + 4 + 1,
            "cheap workers are not capacity"
        );
        assert_eq!(load.busy, 2, "busy cores of the busy worker");
        assert_eq!(
            load.idle,
            2 + 4,
            "idle cores of the busy worker and the idle worker"
        );
        assert_eq!(load.requests, 15);
        assert_eq!(load.avg_rt_us, 200, "mean over workers with requests");
    }

    #[tokio::test(start_paused = true)]
    async fn silent_stats_server_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = SocketTarget::Tcp(listener.local_addr().unwrap().to_string());
        let hold = tokio::spawn(async move {
            let (conn, _) = listener.accept().await.unwrap();
            std::future::pending::<()>().await;
            drop(conn);
        });
        let err = read_stats(&addr, Duration::from_secs(2)).await.unwrap_err();
        assert!(matches!(err, StatsError::Timeout { .. }), "{err:?}");
        hold.abort();
    }

    #[tokio::test]
    async fn closed_port_is_a_connect_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = SocketTarget::Tcp(listener.local_addr().unwrap().to_string());
        drop(listener);
        let err = read_stats(&addr, Duration::from_secs(2)).await.unwrap_err();
        assert!(matches!(err, StatsError::Connect { .. }), "{err:?}");
    }
}
