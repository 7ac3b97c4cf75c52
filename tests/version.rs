//! Every binary's `--version` names the version and the commit it was built from.

#[test]
fn version_names_the_commit() {
    for bin in [
        env!("CARGO_BIN_EXE_routerd"),
        env!("CARGO_BIN_EXE_routerctl"),
        env!("CARGO_BIN_EXE_router-agent"),
    ] {
        let out = std::process::Command::new(bin)
            .arg("--version")
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        let (_, rest) = text
            .trim()
            .split_once(&format!(" {} (commit ", env!("CARGO_PKG_VERSION")))
            .unwrap_or_else(|| panic!("{bin}: {text}"));
        let commit = rest.strip_suffix(')').unwrap();
        assert!(
            commit == "unknown"
                || (commit.len() == 12 && commit.bytes().all(|b| b.is_ascii_hexdigit())),
            "{bin}: {text}"
        );
    }
}
