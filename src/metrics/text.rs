//! The Prometheus text exposition format (version 0.0.4), for series rendered at scrape time from
//! atomics: routerd's per-node series, and any binary's own (router-agent) served through
//! [`crate::http`]. Families come from the [`FAMILIES`](super::FAMILIES) catalog.
//!
//! A fleet of 10,000 nodes makes about 180,000 samples per scrape, so a sample is written with
//! plain string pushes: integers through `itoa`, a node's labels rendered once per scrape
//! ([`Labels`]) and escaped only when they hold a character that needs it.

use std::fmt::Write;

use super::Family;

/// A sample's value: counts and gauges that are whole numbers are written as integers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// A count.
    Int(u64),
    /// Anything else.
    Float(f64),
}

macro_rules! int_value {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Self::Int(v as u64)
            }
        }
    )*};
}
int_value!(u8, u32, u64, usize);

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Self::Float(v)
    }
}

impl Value {
    fn write(self, out: &mut String) {
        let mut ints = itoa::Buffer::new();
        match self {
            Self::Int(n) => out.push_str(ints.format(n)),
            Self::Float(v) if v.is_nan() => out.push_str("NaN"),
            Self::Float(v) if v.is_infinite() => {
                out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" })
            }
            // Whole numbers as `Display` writes them ("3", not "3.0"), without its machinery.
            Self::Float(v) if v.fract() == 0.0 && v.abs() < 1e15 => {
                out.push_str(ints.format(v as i64));
            }
            // Shortest round-trip digits, several times faster than `Display` (a 10,000-node
            // scrape writes 20,000 latencies and report ages).
            Self::Float(v) => out.push_str(zmij::Buffer::new().format_finite(v)),
        }
    }
}

/// Label pairs rendered once (`pool="web",node="app-1"`), for the many samples of one node.
#[derive(Debug, Clone)]
pub struct Labels(String);

impl Labels {
    /// Renders `pairs`; pairs with an empty value are left out, as Prometheus treats them.
    pub fn new(pairs: &[(&str, &str)]) -> Self {
        let mut out = String::new();
        for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
            if !out.is_empty() {
                out.push(',');
            }
            push_pair(&mut out, k, v);
        }
        Self(out)
    }
}

/// Appends families and samples to a scrape body.
#[derive(Debug)]
pub struct Writer<'a> {
    out: &'a mut String,
}

impl<'a> Writer<'a> {
    /// Appends to `out`, after a line break if it lacks one.
    pub fn new(out: &'a mut String) -> Self {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        Self { out }
    }

    /// Starts a family: its `# HELP` and `# TYPE` lines.
    pub fn family(&mut self, f: &Family) {
        let kind = match f.kind {
            super::Kind::Counter => "counter",
            super::Kind::Gauge => "gauge",
            super::Kind::Histogram => "histogram",
        };
        let help = f.help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(
            self.out,
            "# HELP {} {help}\n# TYPE {} {kind}",
            f.name, f.name
        );
    }

    /// One sample. Labels with an empty value are left out, as Prometheus treats them.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Into<Value>) {
        self.labelled(name, &Labels::new(labels), &[], value);
    }

    /// One sample with `labels` rendered before and `extra` after them (empty values left out).
    pub fn labelled(
        &mut self,
        name: &str,
        labels: &Labels,
        extra: &[(&str, &str)],
        value: impl Into<Value>,
    ) {
        let out = &mut *self.out;
        out.push_str(name);
        let mut open = !labels.0.is_empty();
        if open {
            out.push('{');
            out.push_str(&labels.0);
        }
        for (k, v) in extra.iter().filter(|(_, v)| !v.is_empty()) {
            out.push(if open { ',' } else { '{' });
            open = true;
            push_pair(out, k, v);
        }
        if open {
            out.push('}');
        }
        out.push(' ');
        value.into().write(out);
        out.push('\n');
    }
}

fn push_pair(out: &mut String, key: &str, value: &str) {
    out.push_str(key);
    out.push_str("=\"");
    escape_into(out, value);
    out.push('"');
}

fn escape_into(out: &mut String, value: &str) {
    // Node ids and pool names almost never need escaping: copy them whole.
    if !value.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_and_empty_ones_left_out() {
        let mut out = String::new();
        let mut w = Writer::new(&mut out);
        w.sample("m", &[("a", "x\"y\\z\nw"), ("b", ""), ("c", "1")], 2u64);
        w.sample("m", &[("b", "")], 0.5);
        assert_eq!(out, "m{a=\"x\\\"y\\\\z\\nw\",c=\"1\"} 2\nm 0.5\n");
    }

    #[test]
    fn prerendered_labels_and_values_read_as_prometheus_writes_them() {
        let mut out = String::new();
        let mut w = Writer::new(&mut out);
        let node = Labels::new(&[("pool", "web"), ("node", "app-1")]);
        w.labelled("m", &node, &[("state", "active")], 1u8);
        w.labelled("m", &Labels::new(&[]), &[("outcome", "2xx")], 3.0);
        w.labelled("m", &node, &[], f64::INFINITY);
        w.labelled("m", &node, &[], f64::NAN);
        w.sample("m", &[], 0.025);
        assert_eq!(
            out,
            "m{pool=\"web\",node=\"app-1\",state=\"active\"} 1\nm{outcome=\"2xx\"} 3\n\
             m{pool=\"web\",node=\"app-1\"} +Inf\nm{pool=\"web\",node=\"app-1\"} NaN\nm 0.025\n"
        );
    }
}
