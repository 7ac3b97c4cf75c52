//! An entry as a line of text: JSON (every field named; unknown values `null`) or nginx's
//! `combined` followed by the router's fields as `key=value` (unknown values `-`). Whatever
//! bytes a client sent, a line stays one line: JSON strings are escaped (bytes that are not UTF-8
//! become U+FFFD), and the text format writes quotes, backslashes, control and non-ASCII bytes
//! as `\xHH`, as nginx does. The writer formats every line, so the date is made once a second.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Entry, Field};
use crate::config::AccessLogFormat;

/// Formats lines in one format, keeping the text of the last second seen.
pub(super) struct Formatter {
    format: AccessLogFormat,
    /// The second (since the epoch) `date` shows.
    second: Option<u64>,
    /// That second as the format writes it: `2000-10-10T13:55:36` or `10/Oct/2000:13:55:36 +0000`.
    date: Vec<u8>,
}

impl Formatter {
    /// A formatter of `format` lines.
    pub(super) fn new(format: AccessLogFormat) -> Self {
        Self {
            format,
            second: None,
            date: Vec::new(),
        }
    }

    /// Appends `e` as one line, newline included, to `out`.
    pub(super) fn line(&mut self, e: &Entry, out: &mut Vec<u8>) {
        let since = e.time.duration_since(UNIX_EPOCH).unwrap_or_default();
        if self.second != Some(since.as_secs()) {
            self.second = Some(since.as_secs());
            self.date.clear();
            let t = UNIX_EPOCH + Duration::from_secs(since.as_secs());
            match self.format {
                AccessLogFormat::Json => {
                    // "2000-10-10T13:55:36Z" without its "Z".
                    let iso = humantime::format_rfc3339_seconds(t).to_string();
                    self.date.extend_from_slice(&iso.as_bytes()[..19]);
                }
                AccessLogFormat::Combined => clf_time(&mut self.date, t),
            }
        }
        match self.format {
            AccessLogFormat::Json => json(e, &self.date, since.subsec_millis(), out),
            AccessLogFormat::Combined => combined(e, &self.date, out),
        }
        out.push(b'\n');
    }
}

/// `e` as JSON, its time `date` (to the second) and `millis`.
fn json(e: &Entry, date: &[u8], millis: u32, out: &mut Vec<u8>) {
    let r = &e.request;
    out.extend_from_slice(b"{\"time\":\"");
    out.extend_from_slice(date);
    let _ = write!(out, ".{millis:03}Z\"");
    for (key, field) in [
        ("client", Field::Client),
        ("method", Field::Method),
        ("host", Field::Host),
        ("uri", Field::Uri),
        ("protocol", Field::Protocol),
    ] {
        json_key(out, key);
        json_str(out, r.get(field));
    }
    json_key(out, "status");
    match e.status.get() {
        Some(code) => write!(out, "{code}").expect("writing to a Vec"),
        None => out.extend_from_slice(b"null"),
    }
    let _ = write!(
        out,
        ",\"bytes_in\":{},\"bytes_out\":{},\"duration\":",
        e.bytes_in, e.bytes_out
    );
    secs(out, e.duration);
    json_key(out, "connect");
    json_secs(out, e.connect);
    json_key(out, "first_byte");
    json_secs(out, e.first_byte);
    json_key(out, "pool");
    json_opt(out, e.pool.as_deref().map(str::as_bytes));
    json_key(out, "node");
    json_opt(out, e.node.as_deref().map(str::as_bytes));
    let _ = write!(out, ",\"attempts\":{}", e.attempts);
    json_key(out, "outcome");
    json_str(out, e.outcome.as_bytes());
    json_key(out, "request_id");
    json_opt(out, e.request_id.as_ref().map(|id| id.as_bytes()));
    for (key, field) in [
        ("referer", Field::Referer),
        ("user_agent", Field::UserAgent),
    ] {
        json_key(out, key);
        json_str(out, r.get(field));
    }
    out.push(b'}');
}

fn json_key(out: &mut Vec<u8>, key: &str) {
    let _ = write!(out, ",\"{key}\":");
}

fn json_opt(out: &mut Vec<u8>, v: Option<&[u8]>) {
    match v {
        Some(v) => json_str(out, v),
        None => out.extend_from_slice(b"null"),
    }
}

fn json_secs(out: &mut Vec<u8>, d: Option<Duration>) {
    match d {
        Some(d) => secs(out, d),
        None => out.extend_from_slice(b"null"),
    }
}

/// `d` in seconds to the microsecond (rounded), in integers: float formatting costs more.
fn secs(out: &mut Vec<u8>, d: Duration) {
    let micros = u64::try_from((d.as_nanos() + 500) / 1000).unwrap_or(u64::MAX);
    let _ = write!(out, "{}.{:06}", micros / 1_000_000, micros % 1_000_000);
}

/// True when `v` can be written as it is, in either format: printable ASCII, no quote or
/// backslash (the usual field, copied at once).
fn plain(v: &[u8]) -> bool {
    v.iter()
        .all(|&b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

/// `v` as a JSON string.
fn json_str(out: &mut Vec<u8>, v: &[u8]) {
    out.push(b'"');
    if plain(v) {
        out.extend_from_slice(v);
        out.push(b'"');
        return;
    }
    for chunk in v.utf8_chunks() {
        for &b in chunk.valid().as_bytes() {
            match b {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                0..=0x1f | 0x7f => {
                    let _ = write!(out, "\\u{b:04x}");
                }
                _ => out.push(b),
            }
        }
        if !chunk.invalid().is_empty() {
            out.extend_from_slice(b"\\ufffd");
        }
    }
    out.push(b'"');
}

/// `e` as nginx's `combined` and the router's fields, its time `date`.
fn combined(e: &Entry, date: &[u8], out: &mut Vec<u8>) {
    let r = &e.request;
    text(out, r.get(Field::Client));
    out.extend_from_slice(b" - - [");
    out.extend_from_slice(date);
    out.extend_from_slice(b"] \"");
    text(out, r.get(Field::Method));
    out.push(b' ');
    text(out, r.get(Field::Uri));
    out.push(b' ');
    text(out, r.get(Field::Protocol));
    out.extend_from_slice(b"\" ");
    match e.status.get() {
        Some(code) => {
            let _ = write!(out, "{code}");
        }
        None => out.push(b'-'),
    }
    let _ = write!(out, " {} \"", e.bytes_out);
    text(out, r.get(Field::Referer));
    out.extend_from_slice(b"\" \"");
    text(out, r.get(Field::UserAgent));
    out.extend_from_slice(b"\" host=\"");
    text(out, r.get(Field::Host));
    out.extend_from_slice(b"\" pool=\"");
    text(out, e.pool.as_deref().unwrap_or_default().as_bytes());
    out.extend_from_slice(b"\" node=\"");
    text(out, e.node.as_deref().unwrap_or_default().as_bytes());
    let _ = write!(
        out,
        "\" outcome={} attempts={} bytes_in={} duration=",
        e.outcome, e.attempts, e.bytes_in
    );
    secs(out, e.duration);
    out.extend_from_slice(b" connect=");
    text_secs(out, e.connect);
    out.extend_from_slice(b" first_byte=");
    text_secs(out, e.first_byte);
    out.extend_from_slice(b" request_id=");
    text(out, e.request_id.as_ref().map_or(b"", |id| id.as_bytes()));
}

fn text_secs(out: &mut Vec<u8>, d: Option<Duration>) {
    match d {
        Some(d) => secs(out, d),
        None => out.push(b'-'),
    }
}

/// `v` as nginx writes a variable: `-` when empty, unsafe bytes as `\xHH`.
fn text(out: &mut Vec<u8>, v: &[u8]) {
    if v.is_empty() {
        out.push(b'-');
        return;
    }
    if plain(v) {
        out.extend_from_slice(v);
        return;
    }
    for &b in v {
        match b {
            b'"' | b'\\' | 0..=0x1f | 0x7f.. => {
                let _ = write!(out, "\\x{b:02X}");
            }
            _ => out.push(b),
        }
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `10/Oct/2000:13:55:36 +0000`, nginx's `$time_local` in UTC, from the RFC 3339 form.
fn clf_time(out: &mut Vec<u8>, t: SystemTime) {
    // "2000-10-10T13:55:36Z": fixed positions.
    let iso = humantime::format_rfc3339_seconds(t).to_string();
    let month = iso[5..7]
        .parse::<usize>()
        .ok()
        .and_then(|m| MONTHS.get(m.checked_sub(1)?))
        .copied()
        .unwrap_or("???");
    let _ = write!(
        out,
        "{}/{month}/{}:{} +0000",
        &iso[8..10],
        &iso[0..4],
        &iso[11..19]
    );
}
