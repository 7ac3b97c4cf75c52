//! One access log line's facts, as the session knows them when the request ends.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::protocol::{RequestId, Vars};

/// A finished request.
#[derive(Debug, Clone)]
pub struct Entry {
    /// When it ended (wall clock).
    pub time: SystemTime,
    /// What the client asked, from the request's vars.
    pub request: RequestLine,
    /// The response status, where known.
    pub status: Status,
    /// Bytes received from the client: head, body and anything after.
    pub bytes_in: u64,
    /// Bytes sent to the client: the node's response or the router's reply.
    pub bytes_out: u64,
    /// From the request head read to the end of the exchange.
    pub duration: Duration,
    /// From the first node pick to a node's connection established, failed attempts included.
    pub connect: Option<Duration>,
    /// From the request head sent to the node to its first response byte.
    pub first_byte: Option<Duration>,
    /// The pool it was routed to.
    pub pool: Option<Arc<str>>,
    /// The node that took it, or the last one tried.
    pub node: Option<Arc<str>>,
    /// Connect attempts made.
    pub attempts: u32,
    /// How it ended: `ok`, `no_pool`, `connect_failed`, `timeout`, ...
    pub outcome: &'static str,
    /// Its id, unless `[request_id]` is off.
    pub request_id: Option<RequestId>,
}

/// The response status as logged. The router knows it for its own replies; a node's response
/// head is not read yet, so for those it is unknown (`-`, or `null` in JSON).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Status(Option<u16>);

impl Status {
    /// Not known.
    pub const UNKNOWN: Self = Self(None);

    /// A known status code.
    pub const fn code(code: u16) -> Self {
        Self(Some(code))
    }

    /// The code, if known.
    pub fn get(self) -> Option<u16> {
        self.0
    }
}

/// The request fields of a line, copied out of the vars once, each capped so a queue full of
/// lines stays small whatever the clients send. A usual request's fields fit inline: a line
/// costs the request no allocation (and the writer thread no free of another thread's memory).
#[derive(Debug, Clone)]
pub struct RequestLine {
    /// The fields, when they fit.
    inline: [u8; INLINE],
    /// The fields, when they do not (else empty: no allocation).
    heap: Vec<u8>,
    ends: [u16; FIELDS],
}

/// Bytes of fields held inline; more go to the heap.
const INLINE: usize = 384;

impl Default for RequestLine {
    fn default() -> Self {
        Self {
            inline: [0; INLINE],
            heap: Vec::new(),
            ends: [0; FIELDS],
        }
    }
}

/// A request field of the access log and the var it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `REMOTE_ADDR`: the client as nginx saw it.
    Client,
    /// `REQUEST_METHOD`.
    Method,
    /// `REQUEST_URI`, else `PATH_INFO`.
    Uri,
    /// `SERVER_PROTOCOL`.
    Protocol,
    /// The routing host: `HTTP_HOST`, else `SERVER_NAME`.
    Host,
    /// `HTTP_REFERER`.
    Referer,
    /// `HTTP_USER_AGENT`.
    UserAgent,
}

const FIELDS: usize = 7;

/// The most bytes kept of the URI; of any other field, [`MAX_FIELD`].
const MAX_URI: usize = 4096;
const MAX_FIELD: usize = 512;

impl RequestLine {
    /// The fields of `vars`, in one pass over them (a repeated var reads as its last value).
    pub fn from_vars(vars: &Vars<'_>) -> Self {
        let mut found: [&[u8]; FIELDS] = [b""; FIELDS];
        let (mut path, mut server_name) = (&b""[..], &b""[..]);
        for (key, value) in vars.iter() {
            let field = match key {
                b"REMOTE_ADDR" => Field::Client,
                b"REQUEST_METHOD" => Field::Method,
                b"REQUEST_URI" => Field::Uri,
                b"SERVER_PROTOCOL" => Field::Protocol,
                b"HTTP_HOST" => Field::Host,
                b"HTTP_REFERER" => Field::Referer,
                b"HTTP_USER_AGENT" => Field::UserAgent,
                b"PATH_INFO" => {
                    path = value;
                    continue;
                }
                b"SERVER_NAME" => {
                    server_name = value;
                    continue;
                }
                _ => continue,
            };
            found[field as usize] = value;
        }
        for (field, fallback) in [(Field::Uri, path), (Field::Host, server_name)] {
            if found[field as usize].is_empty() {
                found[field as usize] = fallback;
            }
        }
        let capped = |i: usize, value: &'_ [u8]| {
            let max = if i == Field::Uri as usize {
                MAX_URI
            } else {
                MAX_FIELD
            };
            value.len().min(max)
        };
        let mut ends = [0u16; FIELDS];
        let mut end = 0;
        for (i, value) in found.iter().enumerate() {
            end += capped(i, value);
            // At most MAX_URI + 6 * MAX_FIELD bytes in all: within u16.
            ends[i] = end as u16;
        }
        let mut line = Self {
            ends,
            ..Self::default()
        };
        if end > INLINE {
            line.heap = vec![0; end];
        }
        let bytes = if end > INLINE {
            &mut line.heap[..]
        } else {
            &mut line.inline[..]
        };
        let mut start = 0;
        for (i, value) in found.iter().enumerate() {
            let end = usize::from(ends[i]);
            bytes[start..end].copy_from_slice(&value[..end - start]);
            start = end;
        }
        line
    }

    /// A field's bytes as sent (capped); empty when the var was missing.
    pub fn get(&self, field: Field) -> &[u8] {
        let i = field as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        let bytes = if self.heap.is_empty() {
            &self.inline[..]
        } else {
            &self.heap[..]
        };
        &bytes[usize::from(start)..usize::from(self.ends[i])]
    }
}
