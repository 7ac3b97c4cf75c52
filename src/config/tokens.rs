//! Token files of the control plane (`control.registry_token_files`, `admin_token_files`): one
//! token per line. Config reads them to refuse a bad file at load and on reload (so
//! `--check-config` catches it); the control plane reads them again when it starts serving, so the
//! secrets themselves never sit in the config, its `Debug` output or the status it reports.

use std::path::Path;

/// Reads tokens from `path`: one per non-empty line, surrounding whitespace trimmed.
pub fn read_tokens(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read token file {}: {e}", path.display()))?;
    let tokens: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    if tokens.is_empty() {
        return Err(format!("token file {} holds no token", path.display()));
    }
    if let Some(short) = tokens.iter().find(|t| t.len() < 16) {
        return Err(format!(
            "token file {}: a token of {} characters is too short to be secret (use 16 or more, e.g. `openssl rand -hex 32`)",
            path.display(),
            short.len()
        ));
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_token_files_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t");
        std::fs::write(&f, "short\n").unwrap();
        assert!(read_tokens(&f).unwrap_err().contains("too short"));
        std::fs::write(&f, "\n\n").unwrap();
        assert!(read_tokens(&f).unwrap_err().contains("holds no token"));
        assert!(read_tokens(&dir.path().join("missing"))
            .unwrap_err()
            .contains("cannot read"));
    }
}
