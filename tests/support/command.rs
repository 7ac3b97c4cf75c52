//! Short commands run to their end (systemd-analyze, nginx -t, a validator), and what they said,
//! for assertion messages.

use std::process::{Command, Output};

/// Runs `cmd` to its end, capturing stdout and stderr.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// The exit status, stdout and stderr of `out`.
pub fn said(out: &Output) -> String {
    format!(
        "exit {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
