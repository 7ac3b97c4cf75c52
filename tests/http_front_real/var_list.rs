//! Var lists as a test handles them: looked up, changed in place, repeats joined; each var as
//! one printable line, and a line diff of two lists (longest common subsequence), so a failed
//! comparison reads like `diff -u`.

use crate::capture::Var;

/// `KEY=value`, bytes outside printable ASCII escaped.
pub(crate) fn line(var: &Var) -> String {
    let (k, v) = var;
    format!("{}={}", escaped(k), escaped(v))
}

/// Every var of `vars`, one a line.
pub(crate) fn listing(vars: &[Var]) -> String {
    vars.iter().map(|v| format!("    {}\n", line(v))).collect()
}

fn escaped(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

/// `left` against `right` line by line: `  ` both, `- ` only left, `+ ` only right.
pub(crate) fn diff(left: &[Var], right: &[Var], left_name: &str, right_name: &str) -> String {
    let a: Vec<String> = left.iter().map(line).collect();
    let b: Vec<String> = right.iter().map(line).collect();
    // lcs[i][j]: the longest common subsequence of a[i..] and b[j..].
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut out = format!("--- {left_name}\n+++ {right_name}\n");
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push_str(&format!("    {}\n", a[i]));
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push_str(&format!("  + {}\n", b[j]));
            j += 1;
        } else {
            out.push_str(&format!("  - {}\n", a[i]));
            i += 1;
        }
    }
    out
}

/// `vars` with repeated `HTTP_*` vars joined into the first.
pub(crate) fn joined(vars: Vec<Var>) -> Vec<Var> {
    let mut out: Vec<Var> = Vec::new();
    for (k, v) in vars {
        let repeat = k
            .starts_with(b"HTTP_")
            .then(|| out.iter_mut().find(|(o, _)| *o == k));
        if let Some(Some((_, first))) = repeat {
            let sep: &[u8] = if k == b"HTTP_COOKIE" { b"; " } else { b", " };
            first.extend_from_slice(sep);
            first.extend_from_slice(&v);
        } else {
            out.push((k, v));
        }
    }
    out
}

/// The value of `key`, as text.
pub(crate) fn get(vars: &[Var], key: &str) -> Option<String> {
    let (_, v) = vars.iter().find(|(k, _)| k == key.as_bytes())?;
    Some(String::from_utf8_lossy(v).into_owned())
}

/// Replaces the value of `key`, where it is.
pub(crate) fn set(vars: &mut [Var], key: &str, value: &str) {
    let var = vars.iter_mut().find(|(k, _)| k == key.as_bytes());
    var.unwrap_or_else(|| panic!("no {key}")).1 = value.as_bytes().to_vec();
}

/// Removes `key`, returning its value.
pub(crate) fn take(vars: &mut Vec<Var>, key: &str) -> Option<Vec<u8>> {
    let at = vars.iter().position(|(k, _)| k == key.as_bytes())?;
    Some(vars.remove(at).1)
}
