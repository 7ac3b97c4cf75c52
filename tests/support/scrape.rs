//! The operations endpoints as Prometheus and probes see them: a GET on a fresh connection, and
//! the text exposition format parsed into samples.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uwsgi_router::daemon::Daemon;

use super::STEP;

/// An HTTP response: status, head and body.
#[derive(Debug, Clone)]
pub struct HttpReply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

/// Sends `raw` (a whole request) to `addr` and reads the reply until the server closes.
pub async fn http_raw(addr: SocketAddr, raw: &[u8]) -> HttpReply {
    tokio::time::timeout(STEP, async {
        let mut s = TcpStream::connect(addr)
            .await
            .expect("connect to the metrics listener");
        s.write_all(raw).await.unwrap();
        let mut reply = Vec::new();
        s.read_to_end(&mut reply).await.unwrap();
        let reply = String::from_utf8(reply).expect("replies are UTF-8");
        let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        HttpReply {
            status,
            head: head.to_owned(),
            body: body.to_owned(),
        }
    })
    .await
    .expect("the metrics listener answers within the step timeout")
}

/// `GET path` on `addr`.
pub async fn http_get(addr: SocketAddr, path: &str) -> HttpReply {
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    http_raw(addr, request.as_bytes()).await
}

/// The router's metrics listener.
pub fn metrics_addr(router: &Daemon) -> SocketAddr {
    router
        .metrics_addr()
        .expect("the test router serves metrics (start_router gives it 127.0.0.1:0)")
}

/// Scrapes `/metrics` of `router`.
pub async fn scrape(router: &Daemon) -> Scrape {
    scrape_at(metrics_addr(router)).await
}

/// Scrapes `/metrics` of the listener at `addr`.
pub async fn scrape_at(addr: SocketAddr) -> Scrape {
    let reply = http_get(addr, "/metrics").await;
    assert_eq!(reply.status, 200, "{}", reply.head);
    Scrape::parse(&reply.body)
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A scrape body and its samples.
#[derive(Debug, Clone)]
pub struct Scrape {
    pub text: String,
    pub samples: Vec<Sample>,
}

impl Scrape {
    pub fn parse(text: &str) -> Self {
        let samples = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| parse_sample(l).unwrap_or_else(|| panic!("unparsable sample line {l:?}")))
            .collect();
        Self {
            text: text.to_owned(),
            samples,
        }
    }

    /// The samples named `name` whose labels include every pair of `labels`.
    pub fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&str, &str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }

    /// The value of the one sample named `name` with exactly `labels`.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found: Vec<_> = self
            .matching(name, labels)
            .filter(|s| s.labels.len() == labels.len())
            .collect();
        assert!(found.len() <= 1, "{name}{labels:?} is exposed twice");
        found.first().map(|s| s.value)
    }

    /// The sum over the samples `matching(name, labels)`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|s| s.value).sum()
    }

    /// Every sample name (histograms show as `_bucket`, `_sum` and `_count`).
    pub fn names(&self) -> BTreeSet<&str> {
        self.samples.iter().map(|s| s.name.as_str()).collect()
    }
}

fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_owned();
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices();
        let mut key = String::new();
        loop {
            let (i, c) = chars.next()?;
            match c {
                '}' => {
                    rest = &inner[i + 1..];
                    break;
                }
                ',' | ' ' => {}
                '=' => {
                    chars.next().filter(|(_, q)| *q == '"')?;
                    let mut value = String::new();
                    loop {
                        match chars.next()?.1 {
                            '"' => break,
                            '\\' => match chars.next()?.1 {
                                'n' => value.push('\n'),
                                c => value.push(c),
                            },
                            c => value.push(c),
                        }
                    }
                    labels.insert(std::mem::take(&mut key), value);
                }
                c => key.push(c),
            }
        }
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}
