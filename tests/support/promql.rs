//! The metric names a PromQL expression selects, so that dashboards and alert rules can be checked
//! against what routerd really exports.

use std::collections::BTreeSet;

/// The metric names a PromQL expression selects: identifiers that are not functions, keywords,
/// label names (in `{...}`, `by (...)`, `on (...)`...), strings, durations or Grafana variables.
pub fn promql_metric_names(expr: &str) -> BTreeSet<String> {
    // Keywords, and aggregations (which may come before `by (...)` rather than `(`).
    const KEYWORDS: [&str; 18] = [
        "bool",
        "and",
        "or",
        "unless",
        "offset",
        "atan2",
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ];
    const LABEL_LISTS: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let mut skip_next_parens = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => i = skip_string(&chars, i),
            '{' => i = skip_to(&chars, i, '}'),
            '[' => i = skip_to(&chars, i, ']'),
            '(' if skip_next_parens => {
                skip_next_parens = false;
                i = skip_to(&chars, i, ')');
            }
            '$' => {
                i += 1;
                if chars.get(i) == Some(&'{') {
                    i = skip_to(&chars, i, '}');
                } else {
                    while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                        i += 1;
                    }
                }
            }
            c if c.is_ascii_digit() || c == '.' => {
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            }
            c if c.is_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let next = chars[i..].iter().find(|c| !c.is_whitespace());
                if LABEL_LISTS.contains(&word.as_str()) {
                    skip_next_parens = true;
                } else if next == Some(&'(') || KEYWORDS.contains(&word.as_str()) {
                    // A function or an aggregation.
                } else if !["inf", "nan", "Inf", "NaN"].contains(&word.as_str()) {
                    names.insert(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

fn skip_string(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() && chars[i] != quote {
        i += if chars[i] == '\\' { 2 } else { 1 };
    }
    i + 1
}

fn skip_to(chars: &[char], start: usize, end: char) -> usize {
    let mut i = start + 1;
    while i < chars.len() && chars[i] != end {
        i = match chars[i] {
            '"' | '\'' | '`' => skip_string(chars, i),
            _ => i + 1,
        };
    }
    i + 1
}
