//! The Prometheus text exposition format (version 0.0.4), for series rendered at scrape time from
//! atomics: routerd's per-node series, and any binary's own (router-agent) served through
//! [`crate::http`]. Families come from the [`FAMILIES`](super::FAMILIES) catalog.

use std::fmt::{Display, Write};

use super::Family;

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
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.out.push_str(name);
        let mut first = true;
        for (k, v) in labels.iter().filter(|(_, v)| !v.is_empty()) {
            self.out.push(if first { '{' } else { ',' });
            first = false;
            self.out.push_str(k);
            self.out.push_str("=\"");
            escape_into(self.out, v);
            self.out.push('"');
        }
        if !first {
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

fn escape_into(out: &mut String, value: &str) {
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
        w.sample("m", &[("a", "x\"y\\z\nw"), ("b", ""), ("c", "1")], 2);
        w.sample("m", &[("b", "")], 0.5);
        assert_eq!(out, "m{a=\"x\\\"y\\\\z\\nw\",c=\"1\"} 2\nm 0.5\n");
    }
}
