//! Where things are: the system programs the tests drive (nginx, uWSGI, Prometheus, ...), found
//! on PATH or in the sbin directories where Debian puts nginx, and the files of this repository.

use std::path::PathBuf;

/// What a test says when a program it needs is missing.
pub const INSTALL_HINT: &str = "run the test command `bash tests/run.sh`, which installs the \
     Debian packages the tests need (nginx-light, uwsgi-core, uwsgi-plugin-python3, \
     python3-django, prometheus, iproute2, ...)";

/// The path of `name`; fails the test with [`INSTALL_HINT`] when it is not installed.
pub fn find_program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = ["/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin"].map(PathBuf::from);
    std::env::split_paths(&path)
        .chain(extra)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("`{name}` is not installed: {INSTALL_HINT}"))
}

/// A path inside this repository (where Cargo.toml is).
pub fn repo_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}
