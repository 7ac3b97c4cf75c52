//! The addresses of the hosts and of what runs on them: routerd's control plane on the router
//! host, a node on each app host.

use std::time::Duration;

/// routerd's control listener, on the router host's address: agents on other hosts reach it.
pub(crate) const ROUTER_ADDR: &str = "10.231.0.1";
/// The port of that control listener.
pub(crate) const CONTROL_PORT: u16 = 9032;
/// The nodes' uwsgi port on their hosts.
pub(crate) const NODE_PORT: u16 = 3031;
/// Agents report every 500 ms; routerd drops a node three intervals after its last report.
pub(crate) const REPORT_INTERVAL: Duration = Duration::from_millis(500);

/// The address of app host `i` (1-based).
pub(crate) fn app_addr(i: usize) -> String {
    format!("10.231.0.{}", 10 + i)
}
