use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

use ::metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, SharedString, Unit};

use super::writer::Sink;
use super::*;
use crate::protocol::{encode_packet, parse_packet, RequestId, MAX_VARS_SIZE};

fn entry(uri: &str) -> Entry {
    let vars: Vec<(&[u8], &[u8])> = vec![
        (b"REQUEST_METHOD", b"GET"),
        (b"REQUEST_URI", uri.as_bytes()),
        (b"SERVER_PROTOCOL", b"HTTP/1.1"),
        (b"REMOTE_ADDR", b"10.0.0.7"),
        (b"HTTP_HOST", b"shop.example.com"),
        (b"HTTP_USER_AGENT", b"curl/8.5.0"),
    ];
    let packet = encode_packet(0, 0, vars).unwrap();
    let (_, vars, _) = parse_packet(&packet, MAX_VARS_SIZE).unwrap();
    Entry {
        time: UNIX_EPOCH + Duration::from_millis(971_186_136_123),
        request: RequestLine::from_vars(&vars),
        status: Status::code(503),
        bytes_in: 420,
        bytes_out: 180,
        duration: Duration::from_micros(1500),
        connect: Some(Duration::from_micros(250)),
        first_byte: None,
        pool: Some("shop".into()),
        node: Some("10.0.0.21:3031".into()),
        attempts: 2,
        outcome: "no_node",
        request_id: RequestId::given(b"abc-123"),
    }
}

fn format(f: AccessLogFormat, e: &Entry) -> String {
    let mut out = Vec::new();
    format::Formatter::new(f).line(e, &mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn json_lines_name_every_field() {
    let text = format(AccessLogFormat::Json, &entry("/cart?x=1"));
    assert!(text.ends_with("}\n") && text.matches('\n').count() == 1);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["time"], "2000-10-10T13:55:36.123Z");
    assert_eq!(v["client"], "10.0.0.7");
    assert_eq!(v["method"], "GET");
    assert_eq!(v["host"], "shop.example.com");
    assert_eq!(v["uri"], "/cart?x=1");
    assert_eq!(v["status"], 503);
    assert_eq!(
        (v["bytes_in"].as_u64(), v["bytes_out"].as_u64()),
        (Some(420), Some(180))
    );
    assert_eq!(v["duration"].as_f64(), Some(0.0015));
    assert_eq!(v["connect"].as_f64(), Some(0.00025));
    assert!(v["first_byte"].is_null());
    assert_eq!(
        (v["pool"].as_str(), v["node"].as_str()),
        (Some("shop"), Some("10.0.0.21:3031"))
    );
    assert_eq!(
        (v["attempts"].as_u64(), v["outcome"].as_str()),
        (Some(2), Some("no_node"))
    );
    assert_eq!(v["request_id"], "abc-123");
    assert_eq!(v["user_agent"], "curl/8.5.0");
}

#[test]
fn unknowns_are_null_in_json_and_dashes_in_text() {
    let mut e = entry("/");
    e.status = Status::UNKNOWN;
    (e.pool, e.node, e.connect, e.request_id) = (None, None, None, None);
    let v: serde_json::Value = serde_json::from_str(&format(AccessLogFormat::Json, &e)).unwrap();
    for key in [
        "status",
        "pool",
        "node",
        "connect",
        "first_byte",
        "request_id",
    ] {
        assert!(v[key].is_null(), "{key}: {v}");
    }
    let text = format(AccessLogFormat::Combined, &e);
    assert!(text.contains("\"GET / HTTP/1.1\" - 180 \"-\""), "{text}");
    assert!(
        text.contains("connect=- first_byte=- request_id=-\n"),
        "{text}"
    );
}

#[test]
fn one_writer_gives_each_line_its_own_time() {
    // The writer keeps the text of the last second: a later line, in the same second or the
    // next, still shows its own time.
    for (f, times) in [
        (
            AccessLogFormat::Json,
            [
                "2000-10-10T13:55:36.123Z",
                "2000-10-10T13:55:36.999Z",
                "2000-10-10T13:55:37.000Z",
            ],
        ),
        (
            AccessLogFormat::Combined,
            [
                "[10/Oct/2000:13:55:36 +0000]",
                "[10/Oct/2000:13:55:36 +0000]",
                "[10/Oct/2000:13:55:37 +0000]",
            ],
        ),
    ] {
        let mut formatter = format::Formatter::new(f);
        let mut e = entry("/");
        for (offset, want) in [0, 876, 877].into_iter().zip(times) {
            e.time = UNIX_EPOCH + Duration::from_millis(971_186_136_123 + offset);
            let mut out = Vec::new();
            formatter.line(&e, &mut out);
            let line = String::from_utf8(out).unwrap();
            assert!(line.contains(want), "{want} in {line}");
        }
    }
}

#[test]
fn combined_lines_start_as_nginx_writes_them() {
    let text = format(AccessLogFormat::Combined, &entry("/cart"));
    assert_eq!(
        text,
        "10.0.0.7 - - [10/Oct/2000:13:55:36 +0000] \"GET /cart HTTP/1.1\" 503 180 \"-\" \
         \"curl/8.5.0\" host=\"shop.example.com\" pool=\"shop\" node=\"10.0.0.21:3031\" \
         outcome=no_node attempts=2 bytes_in=420 duration=0.001500 connect=0.000250 \
         first_byte=- request_id=abc-123\n"
    );
}

#[test]
fn whatever_a_client_sends_a_line_stays_one_line() {
    let e = entry("/a\"b\\c\nd\u{7f}\u{e9}\u{1}");
    let json = format(AccessLogFormat::Json, &e);
    assert_eq!(json.matches('\n').count(), 1);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["uri"], "/a\"b\\c\nd\u{7f}\u{e9}\u{1}");
    let text = format(AccessLogFormat::Combined, &e);
    assert!(
        text.contains("/a\\x22b\\x5Cc\\x0Ad\\x7F\\xC3\\xA9\\x01 "),
        "{text}"
    );
    assert_eq!(text.matches('\n').count(), 1);
    let mut bad = entry("/");
    bad.request = RequestLine::from_vars(
        &crate::protocol::Vars::parse(&[
            11, 0, b'R', b'E', b'Q', b'U', b'E', b'S', b'T', b'_', b'U', b'R', b'I', 2, 0, b'/',
            0xff,
        ])
        .unwrap(),
    );
    let v: serde_json::Value = serde_json::from_str(&format(AccessLogFormat::Json, &bad)).unwrap();
    assert_eq!(
        v["uri"], "/\u{fffd}",
        "not UTF-8: replaced, the line still parses"
    );
}

#[test]
fn fields_are_capped_and_fall_back_as_nginx_names_them() {
    let long = format!("/{}", "x".repeat(10_000));
    let vars: Vec<(&[u8], &[u8])> = vec![
        (b"PATH_INFO", long.as_bytes()),
        (b"SERVER_NAME", b"fallback.test"),
    ];
    let packet = encode_packet(0, 0, vars).unwrap();
    let (_, vars, _) = parse_packet(&packet, MAX_VARS_SIZE).unwrap();
    let r = RequestLine::from_vars(&vars);
    assert_eq!(
        r.get(Field::Uri).len(),
        4096,
        "PATH_INFO without REQUEST_URI, capped"
    );
    assert_eq!(r.get(Field::Host), b"fallback.test");
    assert_eq!(r.get(Field::Client), b"");
}

/// Counts what is added to `uwsgi_router_access_log_lines_dropped_total{reason="queue_full"}`.
#[derive(Debug, Default)]
struct Dropped(AtomicU64);

impl ::metrics::CounterFn for Dropped {
    fn increment(&self, n: u64) {
        self.0.fetch_add(n, Relaxed);
    }

    fn absolute(&self, _: u64) {}
}

/// A recorder that only knows the dropped lines counter.
struct CountDropped(Arc<Dropped>);

impl ::metrics::Recorder for CountDropped {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let queue_full = key
            .labels()
            .any(|l| (l.key(), l.value()) == ("reason", "queue_full"));
        if key.name() == crate::metrics::ACCESS_LOG_DROPPED.name && queue_full {
            Counter::from_arc(self.0.clone())
        } else {
            Counter::noop()
        }
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

/// A writer that blocks in its first write until told to go on, and keeps what it was given.
#[derive(Clone)]
struct Stuck {
    started: Arc<Mutex<Option<std_mpsc::Sender<()>>>>,
    go: Arc<Mutex<std_mpsc::Receiver<()>>>,
    out: Arc<Mutex<Vec<u8>>>,
}

impl Write for Stuck {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(started) = self.started.lock().unwrap().take() {
            started.send(()).unwrap();
            self.go.lock().unwrap().recv().unwrap();
        }
        self.out.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_and_never_waits() {
    let (started_tx, started) = std_mpsc::channel();
    let (go, go_rx) = std_mpsc::channel();
    let stuck = Stuck {
        started: Arc::new(Mutex::new(Some(started_tx))),
        go: Arc::new(Mutex::new(go_rx)),
        out: Arc::default(),
    };
    let log = AccessLog::spawn(
        1,
        AccessLogFormat::Json,
        Sink::Writer(Box::new(stuck.clone())),
    )
    .unwrap();
    assert_eq!(log.record(|| entry("/1")), Recorded::Queued);
    started
        .recv_timeout(Duration::from_secs(10))
        .expect("the writer is stuck in its write");
    assert_eq!(log.record(|| entry("/2")), Recorded::Queued, "one slot");
    let dropped = Arc::new(Dropped::default());
    let t = Instant::now();
    ::metrics::with_local_recorder(&CountDropped(dropped.clone()), || {
        for i in 3..1000 {
            let built = std::cell::Cell::new(false);
            let r = log.record(|| {
                built.set(true);
                entry(&format!("/{i}"))
            });
            assert_eq!(r, Recorded::Dropped);
            assert!(!built.get(), "a dropped line is not even built");
        }
    });
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    assert_eq!(dropped.0.load(Relaxed), 997, "each dropped line counted");
    go.send(()).unwrap();
    log.flush().await;
    let out = String::from_utf8(stuck.out.lock().unwrap().clone()).unwrap();
    let uris: Vec<String> = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["uri"].to_string())
        .collect();
    assert_eq!(uris, ["\"/1\"", "\"/2\""]);
}

#[tokio::test]
async fn off_builds_nothing() {
    let log = AccessLog::off();
    assert!(!log.is_on());
    assert_eq!(log.record(|| unreachable!("not built")), Recorded::Off);
    log.reopen().await;
    log.flush().await;
}

#[tokio::test]
async fn reopen_follows_a_renamed_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    let config = AccessLogConfig {
        target: Some(crate::config::AccessLogTarget::File(path.clone())),
        format: AccessLogFormat::Combined,
        queue_size: 16,
    };
    let log = AccessLog::start(&config).unwrap();
    log.record(|| entry("/before"));
    log.flush().await;
    let rotated = dir.path().join("access.log.1");
    std::fs::rename(&path, &rotated).unwrap();
    log.record(|| entry("/still-old"));
    log.reopen().await;
    log.record(|| entry("/after"));
    log.flush().await;
    let old = std::fs::read_to_string(&rotated).unwrap();
    let new = std::fs::read_to_string(&path).unwrap();
    assert_eq!(old.lines().count(), 2, "{old}");
    assert!(
        old.contains("/before") && old.contains("/still-old"),
        "{old}"
    );
    assert_eq!(new.lines().count(), 1, "{new}");
    assert!(new.contains("/after"), "{new}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o037, 0, "group may read, others nothing: {mode:o}");
}

/// Keeps each write it is given apart.
#[derive(Clone, Default)]
struct Writes(Arc<Mutex<Vec<Vec<u8>>>>);

impl Write for Writes {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().push(buf.to_vec());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn lines_are_written_whole_in_batches() {
    let writes = Writes::default();
    let log = AccessLog::spawn(
        4000,
        AccessLogFormat::Json,
        Sink::Writer(Box::new(writes.clone())),
    )
    .unwrap();
    let uri = format!("/{}", "u".repeat(300));
    for _ in 0..3000 {
        assert_eq!(log.record(|| entry(&uri)), Recorded::Queued);
    }
    log.flush().await;
    let writes = writes.0.lock().unwrap();
    let lines: usize = writes
        .iter()
        .map(|w| w.iter().filter(|&&b| b == b'\n').count())
        .sum();
    assert_eq!(lines, 3000);
    for w in writes.iter() {
        assert!(
            w.ends_with(b"\n") && w.len() <= 64 * 1024,
            "{} bytes",
            w.len()
        );
    }
    assert!(writes.len() < 3000 / 10, "batched: {} writes", writes.len());
}
