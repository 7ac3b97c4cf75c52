//! Aligned text tables for people: a header row, columns padded to their widest cell, numbers
//! right-aligned, nothing truncated; and the compact number and duration formats they use.

use std::time::Duration;

/// A column: its header and whether its cells are right-aligned (numbers).
#[derive(Debug, Clone, Copy)]
pub struct Col {
    name: &'static str,
    right: bool,
}

/// A left-aligned column.
pub const fn left(name: &'static str) -> Col {
    Col { name, right: false }
}

/// A right-aligned column.
pub const fn right(name: &'static str) -> Col {
    Col { name, right: true }
}

/// A table being filled.
#[derive(Debug, Clone)]
pub struct Table {
    cols: Vec<Col>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these columns.
    pub fn new(cols: &[Col]) -> Self {
        Self {
            cols: cols.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are blank.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as lines, each ending in `\n`, without trailing spaces.
    pub fn render(&self) -> String {
        let cell = |row: &[String], i: usize| row.get(i).map_or("", String::as_str).to_owned();
        let width = |i: usize| {
            self.rows
                .iter()
                .map(|r| cell(r, i).chars().count())
                .chain([self.cols[i].name.len()])
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..self.cols.len()).map(width).collect();
        let header: Vec<String> = self.cols.iter().map(|c| c.name.to_owned()).collect();
        let mut out = String::new();
        for row in std::iter::once(&header).chain(&self.rows) {
            let line: Vec<String> = (0..self.cols.len())
                .map(|i| {
                    let (text, w) = (cell(row, i), widths[i]);
                    if self.cols[i].right {
                        format!("{text:>w$}")
                    } else {
                        format!("{text:<w$}")
                    }
                })
                .collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
        }
        out
    }
}

/// A duration in its two largest units: `45s`, `3m12s`, `2h5m`, `4d3h`.
pub fn short_duration(d: Duration) -> String {
    let s = d.as_secs();
    let (d_, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (d_, h, m) {
        (0, 0, 0) if s == 0 && d.as_millis() > 0 => format!("{:.1}s", d.as_secs_f64()),
        (0, 0, 0) => format!("{sec}s"),
        (0, 0, _) => format!("{m}m{sec}s"),
        (0, _, _) => format!("{h}h{m}m"),
        _ => format!("{d_}d{h}h"),
    }
}

/// A report age in milliseconds; `-1` (never reported) shows as `-`.
pub fn age_ms(ms: i64) -> String {
    match u64::try_from(ms) {
        Ok(ms) if ms < 10_000 => format!("{:.1}s", ms as f64 / 1000.0),
        Ok(ms) => short_duration(Duration::from_millis(ms)),
        Err(_) => "-".to_owned(),
    }
}

/// A latency in milliseconds, to a precision people read.
pub fn latency(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.2}ms")
    } else if ms < 1000.0 {
        format!("{ms:.1}ms")
    } else {
        format!("{:.2}s", ms / 1000.0)
    }
}

/// A rate per second.
pub fn rate(per_second: f64) -> String {
    if per_second < 100.0 {
        format!("{per_second:.1}")
    } else {
        format!("{per_second:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_padded_to_the_widest_cell_and_nothing_is_cut() {
        let mut t = Table::new(&[left("NODE"), right("REQUESTS"), left("STATE")]);
        t.row(vec![
            "a-very-long-node-identifier-0123456789".into(),
            "7".into(),
            "active".into(),
        ]);
        t.row(vec!["b".into(), "12345".into(), "draining".into()]);
        assert_eq!(
            t.render(),
            "NODE                                    REQUESTS  STATE\n\
             a-very-long-node-identifier-0123456789         7  active\n\
             b                                          12345  draining\n"
        );
    }

    #[test]
    fn formats() {
        assert_eq!(short_duration(Duration::from_secs(0)), "0s");
        assert_eq!(short_duration(Duration::from_millis(200)), "0.2s");
        assert_eq!(short_duration(Duration::from_secs(192)), "3m12s");
        assert_eq!(short_duration(Duration::from_secs(7500)), "2h5m");
        assert_eq!(
            short_duration(Duration::from_secs(3 * 86_400 + 3600)),
            "3d1h"
        );
        assert_eq!(age_ms(-1), "-");
        assert_eq!(age_ms(250), "0.2s");
        assert_eq!(latency(3.25), "3.25ms");
        assert_eq!(latency(2500.0), "2.50s");
        assert_eq!(rate(12.34), "12.3");
    }
}
