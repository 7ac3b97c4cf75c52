//! The access log: one line per request, written off the request path. A session hands its
//! [`Entry`] to a bounded queue without waiting ([`AccessLog::record`]); one writer thread
//! formats (`format`) and writes the lines in batches (`writer`), and reopens a file on request
//! (SIGUSR1, for logrotate). A line that finds the queue full is dropped and counted: the log
//! never holds up a request. Off, the handle is empty and a request costs one branch.

mod entry;
mod format;
mod writer;

pub use entry::{Entry, Field, RequestLine, Status};

use std::io;

use tokio::sync::{mpsc, oneshot};

use crate::config::{AccessLogConfig, AccessLogFormat};
use crate::metrics;
use writer::{Msg, Sink};

/// The sessions' handle on the access log; cheap to clone, empty when the log is off.
#[derive(Debug, Clone, Default)]
pub struct AccessLog {
    tx: Option<mpsc::Sender<Msg>>,
}

/// What became of a line given to [`AccessLog::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Queued for the writer.
    Queued,
    /// The queue was full (or the writer gone): dropped and counted.
    Dropped,
    /// The access log is off: nothing was built.
    Off,
}

impl AccessLog {
    /// No access log.
    pub fn off() -> Self {
        Self::default()
    }

    /// Starts the writer `config` asks for, or none when the log is off. A file that cannot be
    /// opened is an error: routerd does not start without the log it was told to write.
    pub fn start(config: &AccessLogConfig) -> io::Result<Self> {
        match &config.target {
            None => Ok(Self::off()),
            Some(target) => {
                let sink = Sink::open(target)?;
                Self::spawn(config.queue_size, config.format, sink)
            }
        }
    }

    fn spawn(queue: usize, format: AccessLogFormat, sink: Sink) -> io::Result<Self> {
        let (tx, rx) = mpsc::channel(queue);
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || writer::run(rx, sink, format))?;
        Ok(Self { tx: Some(tx) })
    }

    /// True when lines are written.
    pub fn is_on(&self) -> bool {
        self.tx.is_some()
    }

    /// Queues the line `entry` builds, never waiting: built only if the log is on and the queue
    /// has room, else dropped and counted in `uwsgi_router_access_log_lines_dropped_total`.
    pub fn record(&self, entry: impl FnOnce() -> Entry) -> Recorded {
        let Some(tx) = &self.tx else {
            return Recorded::Off;
        };
        match tx.try_reserve() {
            Ok(slot) => {
                slot.send(Msg::Line(entry()));
                Recorded::Queued
            }
            Err(_) => {
                metrics::access_log_dropped("queue_full", 1);
                Recorded::Dropped
            }
        }
    }

    /// Has the writer reopen its file (after logrotate renamed it): lines queued before go to
    /// the old file, later ones to the new. Waits for room in the queue, not for the reopen.
    pub async fn reopen(&self) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Msg::Reopen).await;
        }
    }

    /// Waits until every line queued so far is written (at shutdown).
    pub async fn flush(&self) {
        if let Some(tx) = &self.tx {
            let (done, written) = oneshot::channel();
            if tx.send(Msg::Flush(done)).await.is_ok() {
                let _ = written.await;
            }
        }
    }
}

#[cfg(test)]
mod tests;
