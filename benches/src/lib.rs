//! Load tools for measuring uwsgi-router end to end, shared by the `fast-node`, `uwsgi-load` and
//! `bench` binaries.
//!
//! A measured request goes: `load` (closed-loop workers) -> `client` (one uwsgi exchange, as nginx
//! does it, over a `target` stream) -> the router under test -> `node` (a fast uwsgi backend).
//! `request` builds the packets, `latency` summarizes raw samples, `transfer` moves 1 GB bodies
//! and holds idle connections, `procfs` reads a process's CPU time and memory, and `child` keeps
//! every spawned process tied to the benchmark's lifetime. `fleet` simulates thousands of agents on
//! routerd's gRPC Registry, for the control plane at scale. `http_load` is the same closed loop
//! over HTTP/1.1 keep-alive, for measuring routers behind nginx, and counts answers per node.

pub mod child;
pub mod client;
pub mod fleet;
pub mod http_load;
pub mod latency;
pub mod load;
pub mod node;
pub mod procfs;
pub mod request;
pub mod target;
pub mod transfer;

/// The size of the reusable buffers used to stream and discard bodies.
pub const CHUNK: usize = 64 * 1024;

/// Raises this process's open-file soft limit to the hard limit (children inherit it) and returns
/// the new limit: 10,000 idle connections need more descriptors than the usual 1024.
pub fn raise_nofile() -> anyhow::Result<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    Ok(hard)
}

/// Makes sure this process (and the children it starts from now on) may open `want` files:
/// raises the hard limit too where allowed (as root), and returns the limit in force.
pub fn ensure_nofile(want: u64) -> anyhow::Result<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft >= want {
        return Ok(soft);
    }
    // Without the privilege to raise the hard limit, go as far as it allows.
    let limit = if setrlimit(Resource::RLIMIT_NOFILE, want, want.max(hard)).is_ok() {
        want
    } else {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
        hard
    };
    Ok(limit)
}
