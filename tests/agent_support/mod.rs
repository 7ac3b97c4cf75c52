//! Test support for router-agent: a fake uWSGI stats server serving the fixtures, a fake gRPC
//! Registry that records what agents send and answers as scripted, and agent configs on them.
//! A test binary including it also includes `mod support;` (its waits).
#![allow(dead_code, unreachable_pub, unused_imports)]

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::support::wait::{self, STEP};

/// A fake uWSGI stats server.
mod fake_stats;

/// A fake Registry.
mod fake_registry;

/// Stats, registry and agent together, as most tests start.
mod fakes;

/// Agent flags and configs.
mod setup;

/// A private /etc/hosts for an agent process.
mod hosts;

pub use fake_registry::{FakeRegistry, Script, Seen};
pub use fake_stats::{fixture, FakeStats};
pub use fakes::Fakes;
pub use hosts::HostsFile;
pub use setup::{AgentSetup, AGENT};

/// The agents' report interval in these tests.
pub const INTERVAL: Duration = Duration::from_millis(100);
/// The token the fake registry expects.
pub const TOKEN: &str = "s3cret-registry-token";

/// Binds `addr` again, retrying while the old socket is still being closed.
async fn rebind(addr: SocketAddr) -> TcpListener {
    let mut last = None;
    let bound = wait::within(STEP, async || match TcpListener::bind(addr).await {
        Ok(listener) => Some(listener),
        Err(e) => {
            last = Some(e);
            None
        }
    })
    .await;
    bound.unwrap_or_else(|e| panic!("cannot rebind {addr}: {e}: {last:?}"))
}
