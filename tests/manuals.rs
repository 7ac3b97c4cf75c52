//! `routerd --write-manuals DIR`, the packaging step: a manual page for each binary (and each
//! routerctl command) with NAME, SYNOPSIS and OPTIONS, rendered by `man -l` (man-db, which
//! `tests/run.sh` installs), and bash, zsh and fish completions for all three that their shells
//! load.

mod support;

use std::path::Path;
use std::process::Command;

use support::command::{run, said};
use support::programs::find_program;

const BINARIES: [&str; 3] = ["routerd", "router-agent", "routerctl"];

fn write_manuals(dir: &Path) {
    let out = run(Command::new(env!("CARGO_BIN_EXE_routerd"))
        .arg("--write-manuals")
        .arg(dir));
    assert!(out.status.success(), "{}", said(&out));
}

#[test]
fn every_binary_gets_a_manual_page_man_renders() {
    let dir = tempfile::tempdir().unwrap();
    write_manuals(dir.path());
    let man_dir = dir.path().join("man/man1");
    for bin in BINARIES {
        let page = std::fs::read_to_string(man_dir.join(format!("{bin}.1")))
            .unwrap_or_else(|e| panic!("{bin}.1: {e}"));
        for section in [".SH NAME", ".SH SYNOPSIS", ".SH OPTIONS"] {
            assert!(page.contains(section), "{bin}.1 has no {section}:\n{page}");
        }
        assert!(
            page.contains(env!("CARGO_PKG_VERSION")),
            "{bin}.1 names its version"
        );
        let out = run(Command::new(find_program("man"))
            .arg("-l")
            .arg(man_dir.join(format!("{bin}.1")))
            .env("MANWIDTH", "100")
            .env("MANPAGER", "cat")
            .env("PAGER", "cat"));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "man -l {bin}.1: {}", said(&out));
        for heading in ["NAME", "SYNOPSIS", "OPTIONS", "--version"] {
            assert!(
                text.contains(heading),
                "man {bin} shows no {heading}:\n{text}"
            );
        }
    }
    let drain = std::fs::read_to_string(man_dir.join("routerctl-drain.1")).unwrap();
    assert!(drain.contains("routerctl\\-drain"), "{drain}");
}

#[test]
fn every_binary_gets_completions_its_shells_load() {
    let dir = tempfile::tempdir().unwrap();
    write_manuals(dir.path());
    for bin in BINARIES {
        let bash = dir.path().join("bash-completion/completions").join(bin);
        // Sourced as bash-completion does, it registers a completion for the binary.
        let out = run(Command::new("bash")
            .arg("-c")
            .arg(format!("source '{}' && complete -p {bin}", bash.display())));
        assert!(
            out.status.success(),
            "bash completion of {bin}: {}",
            said(&out)
        );
        let zsh =
            std::fs::read_to_string(dir.path().join(format!("zsh/site-functions/_{bin}"))).unwrap();
        assert!(zsh.starts_with(&format!("#compdef {bin}")), "{zsh}");
        let fish = dir
            .path()
            .join(format!("fish/vendor_completions.d/{bin}.fish"));
        let fish = std::fs::read_to_string(fish).unwrap();
        assert!(fish.contains(&format!("complete -c {bin}")), "{fish}");
    }
}
