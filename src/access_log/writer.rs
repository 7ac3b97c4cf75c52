//! The writer thread: takes lines off the queue, formats them and writes them in batches of whole
//! lines (so they never interleave with routerd's own stderr lines mid-line), writing out
//! whenever the queue runs empty, so an idle log is never behind. It runs on a thread of its own:
//! a slow disk blocks it, never a runtime worker.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use tokio::sync::{mpsc, oneshot};

use super::{format, Entry};
use crate::config::{AccessLogFormat, AccessLogTarget};
use crate::{metrics, throttle};

/// Bytes gathered before a write, at most (about one pipe buffer, written at once).
const BATCH: usize = 4096;

/// What the writer is asked to do.
#[derive(Debug)]
pub(super) enum Msg {
    /// Write a line.
    Line(Box<Entry>),
    /// Reopen the file.
    Reopen,
    /// Write out everything before this, then answer.
    Flush(oneshot::Sender<()>),
}

/// Where lines go.
pub(super) enum Sink {
    /// routerd's stderr.
    Stderr,
    /// A file, reopened by path.
    File(PathBuf, File),
    /// Any writer (tests).
    #[cfg(test)]
    Writer(Box<dyn Write + Send>),
}

impl Sink {
    /// Opens `target`: a file is appended to, created with mode 0640 if missing.
    pub(super) fn open(target: &AccessLogTarget) -> io::Result<Self> {
        match target {
            AccessLogTarget::Stderr => Ok(Self::Stderr),
            AccessLogTarget::File(path) => Ok(Self::File(path.clone(), open_file(path)?)),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Self::Stderr => io::stderr().lock().write_all(buf),
            Self::File(_, f) => f.write_all(buf),
            #[cfg(test)]
            Self::Writer(w) => w.write_all(buf).and_then(|()| w.flush()),
        }
    }

    /// Opens the file's path again, for the lines from now on; on failure, keeps the old one.
    fn reopen(&mut self) {
        let Self::File(path, file) = self else {
            tracing::info!("the access log goes to stderr: nothing to reopen");
            return;
        };
        match open_file(path) {
            Ok(new) => {
                *file = new;
                tracing::info!(path = %path.display(), "access log reopened");
            }
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "cannot reopen the access log; still writing to the file open before")
            }
        }
    }
}

fn open_file(path: &std::path::Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
}

/// Serves the queue until every handle is gone.
pub(super) fn run(mut rx: mpsc::Receiver<Msg>, mut sink: Sink, format: AccessLogFormat) {
    let mut buf = Batch::default();
    while let Some(first) = rx.blocking_recv() {
        let mut next = Some(first);
        while let Some(msg) = next {
            match msg {
                Msg::Line(entry) => {
                    format::line(format, &entry, &mut buf.text);
                    buf.lines += 1;
                    if buf.text.len() >= BATCH {
                        write_out(&mut sink, &mut buf);
                    }
                }
                Msg::Reopen => {
                    write_out(&mut sink, &mut buf);
                    sink.reopen();
                }
                Msg::Flush(done) => {
                    write_out(&mut sink, &mut buf);
                    let _ = done.send(());
                }
            }
            next = rx.try_recv().ok();
        }
        write_out(&mut sink, &mut buf);
    }
}

/// Lines gathered for one write.
#[derive(Default)]
struct Batch {
    text: Vec<u8>,
    lines: u64,
}

/// Writes the gathered lines. A failure (a full disk, say) loses them: counted, and logged at
/// most every 10 s.
fn write_out(sink: &mut Sink, buf: &mut Batch) {
    if buf.text.is_empty() {
        return;
    }
    if let Err(e) = sink.write_all(&buf.text) {
        metrics::access_log_dropped("write_failed", buf.lines);
        if let Some(similar) = throttle::admit("access_log_write_failed") {
            tracing::warn!(error = %e, lines = buf.lines, similar_since_last = similar, "writing the access log failed; lines lost");
        }
    }
    buf.text.clear();
    buf.lines = 0;
}
