//! A fake uWSGI stats server: each connection gets the current document (a fixture from
//! `tests/fixtures/`, or any bytes), then EOF; it can stop and listen again on the same port.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::rebind;
use crate::support::wait::wait_until;

/// A stats fixture's bytes: `idle`, `busy` or `queued`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/uwsgi-stats-{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(path).expect("stats fixture")
}

/// A fake uWSGI stats server: each connection gets the current document, then EOF.
pub struct FakeStats {
    pub addr: SocketAddr,
    doc: Arc<Mutex<Vec<u8>>>,
    reads: Arc<AtomicUsize>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl FakeStats {
    /// Serves fixture `name` on an ephemeral loopback port.
    pub async fn start(name: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let s = Self {
            addr: listener.local_addr().unwrap(),
            doc: Arc::new(Mutex::new(fixture(name))),
            reads: Arc::new(AtomicUsize::new(0)),
            task: Mutex::new(None),
        };
        s.serve(listener);
        s
    }

    fn serve(&self, listener: TcpListener) {
        let (doc, reads) = (self.doc.clone(), self.reads.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                reads.fetch_add(1, SeqCst);
                let bytes = doc.lock().unwrap().clone();
                tokio::spawn(async move {
                    use tokio::io::AsyncWriteExt;
                    let _ = conn.write_all(&bytes).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        *self.task.lock().unwrap() = Some(task);
    }

    /// How many times the stats were read (connections accepted): an agent reads them once
    /// per interval, so this is its clock.
    pub fn reads(&self) -> usize {
        self.reads.load(SeqCst)
    }

    /// Waits until the stats have been read `n` more times than `since` (the agent has gone
    /// through `n` more intervals, each a chance to act on what it read).
    pub async fn wait_reads(&self, since: usize, n: usize) {
        let what = format!("{n} more reads of the stats");
        wait_until(what, || self.reads() >= since + n).await;
    }

    /// Serves fixture `name` from now on.
    pub fn set(&self, name: &str) {
        *self.doc.lock().unwrap() = fixture(name);
    }

    /// Serves these bytes from now on (for malformed documents).
    pub fn set_raw(&self, bytes: &[u8]) {
        *self.doc.lock().unwrap() = bytes.to_vec();
    }

    /// Stops listening: connections are refused, as when uWSGI is down.
    pub async fn stop(&self) {
        let task = self.task.lock().unwrap().take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    /// Listens again on the same port.
    pub async fn resume(&self) {
        let listener = rebind(self.addr).await;
        self.serve(listener);
    }
}
