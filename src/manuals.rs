//! Manual pages (`clap_mangen`) and shell completions (`clap_complete`) of the three binaries,
//! generated from the clap definitions they parse, so `man routerd` and Tab say what `--help`
//! says. `routerd --write-manuals DIR` writes them in the layout a `share/` directory uses.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

/// The command definitions of `routerd`, `router-agent` and `routerctl`.
pub fn commands() -> [clap::Command; 3] {
    [
        crate::routerd_cli::RouterdArgs::command(),
        crate::agent::Flags::command(),
        crate::routerctl::Cli::command(),
    ]
}

/// Where under a `share/` directory each shell looks for the completion of `bin`.
fn completion_path(shell: Shell, bin: &str) -> PathBuf {
    match shell {
        Shell::Zsh => format!("zsh/site-functions/_{bin}").into(),
        Shell::Fish => format!("fish/vendor_completions.d/{bin}.fish").into(),
        _ => format!("bash-completion/completions/{bin}").into(),
    }
}

/// Writes under `dir`: `man/man1/BIN.1` for each binary (and `routerctl-COMMAND.1` for each
/// routerctl command), and the bash, zsh and fish completions of each.
pub fn write_all(dir: &Path) -> io::Result<()> {
    let man_dir = dir.join("man/man1");
    fs::create_dir_all(&man_dir).map_err(|e| context(e, &man_dir))?;
    for cmd in commands() {
        let bin = cmd.get_name().to_owned();
        clap_mangen::generate_to(cmd.clone(), &man_dir).map_err(|e| context(e, &man_dir))?;
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let path = dir.join(completion_path(shell, &bin));
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(|e| context(e, parent))?;
            }
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd.clone(), &bin, &mut script);
            fs::write(&path, script).map_err(|e| context(e, &path))?;
        }
    }
    Ok(())
}

fn context(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}
