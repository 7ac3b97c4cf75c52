//! The router under test, in-process: a [`Daemon`] started from TOML on ephemeral ports, or from
//! a config file that a test rewrites and reloads.

use std::path::PathBuf;

use tempfile::TempDir;
use uwsgi_router::config::Config;
use uwsgi_router::daemon::Daemon;

use super::FakeNode;

/// Starts an in-process router from TOML; `listen.uwsgi` defaults to one ephemeral TCP port.
pub async fn start_router(toml: &str) -> Daemon {
    let mut config = Config::parse(toml).expect("test config must be valid");
    if !toml.contains("[listen]") {
        config.listen.uwsgi = vec!["127.0.0.1:0".parse().unwrap()];
    }
    // Never a fixed port in tests: the control plane gets an ephemeral one unless configured.
    if !toml.contains("[control]") {
        config.control.listen = Some(([127, 0, 0, 1], 0).into());
    }
    // ... and so does the metrics listener (`Daemon::metrics_addr`).
    if !toml.contains("[metrics]") {
        config.metrics.listen = Some(([127, 0, 0, 1], 0).into());
        config.metrics.listen_is_default = false;
    }
    Daemon::start(config, None).await.expect("router starts")
}

/// A pool config listing `nodes`.
pub fn pool_toml(algorithm: &str, nodes: &[&FakeNode]) -> String {
    let list: Vec<String> = nodes.iter().map(|n| format!("\"{}\"", n.addr)).collect();
    format!(
        "[pools.default]\nalgorithm = \"{algorithm}\"\nnodes = [{}]\n",
        list.join(", ")
    )
}

/// The control listener's URL of `router`, as agents and routerctl take it.
pub fn control_url(router: &Daemon) -> String {
    let addr = router
        .control_addr()
        .expect("the router has a control listener");
    format!("http://{addr}")
}

/// The config file of a router started by [`start_router_from_file`].
pub struct ConfigFile {
    /// The file; the router reloads from it.
    pub path: PathBuf,
    _dir: TempDir,
}

impl ConfigFile {
    /// The file's text for `body`: `body` with ephemeral uwsgi and control listeners.
    pub fn text(body: &str) -> String {
        format!(
            "{body}\n[listen]\nuwsgi = [\"127.0.0.1:0\"]\n[control]\nlisten = \"127.0.0.1:0\"\n"
        )
    }

    /// Replaces the file with the text for `body`.
    pub fn write(&self, body: &str) {
        self.write_raw(&Self::text(body));
    }

    /// Replaces the file with exactly `text` (for broken configs).
    pub fn write_raw(&self, text: &str) {
        std::fs::write(&self.path, text).expect("write the config file");
    }
}

/// An in-process router started from a config file holding [`ConfigFile::text`] of `body`, as
/// `routerd --config FILE` starts: reloads read the file again.
pub async fn start_router_from_file(body: &str) -> (Daemon, ConfigFile) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = ConfigFile {
        path: dir.path().join("routerd.toml"),
        _dir: dir,
    };
    file.write(body);
    let config = Config::load(&file.path).expect("the first config is valid");
    let router = Daemon::start(config, Some(file.path.clone()))
        .await
        .expect("router starts");
    (router, file)
}
