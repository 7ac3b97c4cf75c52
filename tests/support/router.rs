//! The router under test, in-process: a [`Daemon`] started from TOML on ephemeral ports.

use uwsgi_router::config::Config;
use uwsgi_router::daemon::Daemon;

use super::FakeNode;

/// Starts an in-process router from TOML; `listen.uwsgi` defaults to one ephemeral TCP port.
pub async fn start_router(toml: &str) -> Daemon {
    let mut config = Config::parse(toml).expect("test config must be valid");
    if !toml.contains("[listen]") {
        config.listen.uwsgi = vec!["127.0.0.1:0".into()];
    }
    // Never a fixed port in tests: the control plane gets an ephemeral one unless configured.
    if !toml.contains("[control]") {
        config.control.listen = "127.0.0.1:0".into();
    }
    // ... and so does the metrics listener (`Daemon::metrics_addr`).
    if !toml.contains("[metrics]") {
        config.metrics.listen = Some("127.0.0.1:0".into());
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
