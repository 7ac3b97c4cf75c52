//! The writer thread: takes lines off the queue, formats them and writes them in batches of whole
//! lines (so they never interleave with routerd's own stderr lines mid-line), a line at most
//! [`NAP`] after it was queued. It runs on a thread of its own: a slow disk blocks it, never a
//! runtime worker.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use tokio::sync::{mpsc, oneshot};

use super::format::Formatter;
use super::Entry;
use crate::config::{AccessLogFormat, AccessLogTarget};
use crate::{metrics, throttle};

/// Bytes written at once to stderr, at most: a pipe takes a write of up to 4096 bytes whole, so
/// the log's lines never interleave with routerd's own mid-line.
const STDERR_BATCH: usize = 4096;
/// ... and to a file.
const FILE_BATCH: usize = 64 * 1024;

/// What the writer is asked to do.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "a line moves into the queue's slots, allocated in blocks and reused: boxing it would \
              cost an allocation per request, freed on another thread"
)]
pub(super) enum Msg {
    /// Write a line.
    Line(Entry),
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

    /// The most bytes of whole lines to write at once.
    fn batch_limit(&self) -> usize {
        match self {
            Self::Stderr => STDERR_BATCH,
            _ => FILE_BATCH,
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

/// Serves the queue until every handle is gone. Idle, the thread parks until a line comes (its
/// sender wakes it, once). Busy, it drains the queue, writes, and naps for [`NAP`] instead of
/// parking: with no one parked, a sender only touches atomics, so a line costs the request no
/// system call and the log's writes come in batches.
pub(super) fn run(mut rx: mpsc::Receiver<Msg>, mut sink: Sink, format: AccessLogFormat) {
    let mut batch = Batch::default();
    let mut format = Formatter::new(format);
    let limit = sink.batch_limit();
    while let Some(first) = rx.blocking_recv() {
        let mut next = Some(first);
        loop {
            let mut handled = 0;
            while let Some(msg) = next.take().or_else(|| rx.try_recv().ok()) {
                handle(msg, &mut format, &mut sink, &mut batch, limit);
                handled += 1;
            }
            write_out(&mut sink, &mut batch);
            if handled == 0 {
                break;
            }
            std::thread::sleep(NAP);
        }
    }
}

/// How long a busy writer lets lines gather: the most a line waits, and at 10,000 requests a
/// second about 100 lines per batch.
const NAP: std::time::Duration = std::time::Duration::from_millis(10);

fn handle(msg: Msg, format: &mut Formatter, sink: &mut Sink, batch: &mut Batch, limit: usize) {
    match msg {
        Msg::Line(entry) => {
            let before = batch.text.len();
            format.line(&entry, &mut batch.text);
            if batch.text.len() > limit && before > 0 {
                // Whole lines only: write what came before this line, keep this one (in the same
                // buffer, reused batch after batch).
                write_lines(sink, &batch.text[..before], batch.lines);
                batch.text.drain(..before);
                batch.lines = 0;
            }
            batch.lines += 1;
        }
        Msg::Reopen => {
            write_out(sink, batch);
            sink.reopen();
        }
        Msg::Flush(done) => {
            write_out(sink, batch);
            let _ = done.send(());
        }
    }
}

/// Lines gathered for one write.
#[derive(Default)]
struct Batch {
    text: Vec<u8>,
    lines: u64,
}

/// Writes the gathered lines.
fn write_out(sink: &mut Sink, buf: &mut Batch) {
    if buf.text.is_empty() {
        return;
    }
    write_lines(sink, &buf.text, buf.lines);
    buf.text.clear();
    buf.lines = 0;
}

/// Writes `lines` whole lines. A failure (a full disk, say) loses them: counted, and logged at
/// most every 10 s.
fn write_lines(sink: &mut Sink, text: &[u8], lines: u64) {
    if let Err(e) = sink.write_all(text) {
        metrics::access_log_dropped("write_failed", lines);
        if let Some(similar) = throttle::admit("access_log_write_failed") {
            tracing::warn!(error = %e, lines, similar_since_last = similar, "writing the access log failed; lines lost");
        }
    }
}
