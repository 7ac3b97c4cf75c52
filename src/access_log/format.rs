//! An entry as a line of text: JSON (every field named; unknown values `null`) or nginx's
//! `combined` followed by the router's fields as `key=value` (unknown values `-`). Whatever
//! bytes a client sent, a line stays one line: JSON strings are escaped (bytes that are not UTF-8
//! become U+FFFD), and the text format writes quotes, backslashes, control and non-ASCII bytes
//! as `\xHH`, as nginx does.

use std::io::Write;
use std::time::{Duration, SystemTime};

use super::{Entry, Field};
use crate::config::AccessLogFormat;

/// Appends `e` as one line, newline included, to `out`.
pub(super) fn line(format: AccessLogFormat, e: &Entry, out: &mut Vec<u8>) {
    match format {
        AccessLogFormat::Json => json(e, out),
        AccessLogFormat::Combined => combined(e, out),
    }
    out.push(b'\n');
}

fn json(e: &Entry, out: &mut Vec<u8>) {
    let r = &e.request;
    let time = humantime::format_rfc3339_millis(e.time).to_string();
    out.extend_from_slice(b"{\"time\":");
    json_str(out, time.as_bytes());
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
        ",\"bytes_in\":{},\"bytes_out\":{},\"duration\":{:.6}",
        e.bytes_in,
        e.bytes_out,
        e.duration.as_secs_f64()
    );
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
        Some(d) => {
            let _ = write!(out, "{:.6}", d.as_secs_f64());
        }
        None => out.extend_from_slice(b"null"),
    }
}

/// `v` as a JSON string.
fn json_str(out: &mut Vec<u8>, v: &[u8]) {
    out.push(b'"');
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

fn combined(e: &Entry, out: &mut Vec<u8>) {
    let r = &e.request;
    text(out, r.get(Field::Client));
    out.extend_from_slice(b" - - [");
    clf_time(out, e.time);
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
        "\" outcome={} attempts={} bytes_in={} duration={:.6} connect=",
        e.outcome,
        e.attempts,
        e.bytes_in,
        e.duration.as_secs_f64()
    );
    text_secs(out, e.connect);
    out.extend_from_slice(b" first_byte=");
    text_secs(out, e.first_byte);
    out.extend_from_slice(b" request_id=");
    text(out, e.request_id.as_ref().map_or(b"", |id| id.as_bytes()));
}

fn text_secs(out: &mut Vec<u8>, d: Option<Duration>) {
    match d {
        Some(d) => {
            let _ = write!(out, "{:.6}", d.as_secs_f64());
        }
        None => out.push(b'-'),
    }
}

/// `v` as nginx writes a variable: `-` when empty, unsafe bytes as `\xHH`.
fn text(out: &mut Vec<u8>, v: &[u8]) {
    if v.is_empty() {
        out.push(b'-');
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
