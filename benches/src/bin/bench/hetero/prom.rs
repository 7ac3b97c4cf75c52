//! Reading routerd's `/metrics` (Prometheus text format): just enough to find a sample by name
//! and labels.

use std::net::SocketAddr;
use std::time::Duration;

use uwsgi_router_bench::http_load;

/// One scrape's samples.
pub(crate) struct Scrape {
    samples: Vec<Sample>,
}

struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

impl Scrape {
    /// GETs `/metrics` from `addr`.
    pub(crate) async fn get(addr: SocketAddr) -> anyhow::Result<Self> {
        let (status, body) = http_load::get(addr, "/metrics", Duration::from_secs(2)).await?;
        anyhow::ensure!(status == 200, "GET /metrics from {addr}: HTTP {status}");
        Ok(Self::parse(&body))
    }

    fn parse(text: &str) -> Self {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(parse_line)
            .collect();
        Self { samples }
    }

    /// The value of the sample `name` whose labels include all of `labels`.
    pub(crate) fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.all(name, labels).next().map(|(_, v)| v)
    }

    /// Every sample `name` whose labels include all of `labels`: the value of `label` and the value.
    pub(crate) fn by_label<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
        label: &'a str,
    ) -> impl Iterator<Item = (String, f64)> + 'a {
        self.all(name, labels).filter_map(move |(s, v)| {
            let l = s.labels.iter().find(|(k, _)| k == label)?;
            Some((l.1.clone(), v))
        })
    }

    fn all<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = (&'a Sample, f64)> + 'a {
        self.samples
            .iter()
            .filter(move |s| s.name == name)
            .filter(move |s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(sk, sv)| sk == k && sv == v))
            })
            .map(|s| (s, s.value))
    }
}

/// `name{k="v",...} value` or `name value`. Label values here never hold `"` or `,`.
fn parse_line(line: &str) -> Option<Sample> {
    let (series, value) = line.rsplit_once(' ')?;
    let value: f64 = value.trim().parse().ok()?;
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => {
            let inner = rest.trim_end().strip_suffix('}')?;
            let labels = inner
                .split(',')
                .filter(|p| !p.is_empty())
                .filter_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    Some((k.trim().to_owned(), v.trim().trim_matches('"').to_owned()))
                })
                .collect();
            (name, labels)
        }
        None => (series, Vec::new()),
    };
    Some(Sample {
        name: name.trim().to_owned(),
        labels,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_samples_by_labels() {
        let s = Scrape::parse(
            "# HELP x y\nuwsgi_router_nodes{pool=\"default\",state=\"active\"} 3\n\
             uwsgi_router_nodes{pool=\"default\",state=\"ejected\"} 0\nup 1\n",
        );
        assert_eq!(
            s.value("uwsgi_router_nodes", &[("state", "active")]),
            Some(3.0)
        );
        assert_eq!(s.value("up", &[]), Some(1.0));
        let states: Vec<_> = s
            .by_label("uwsgi_router_nodes", &[("pool", "default")], "state")
            .collect();
        assert_eq!(states.len(), 2);
    }
}
