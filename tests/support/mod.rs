//! Test support shared by every test binary (each includes it with `mod support;`): the router
//! in-process and as a binary, fake uwsgi nodes, a uwsgi client and packet builder, one child
//! process wrapper and one set of bounded waits. Everything listens on 127.0.0.1 ephemeral ports
//! or in temp dirs.
#![allow(dead_code, unreachable_pub, unused_imports)]

/// The real routerd binary, run as a process.
pub mod binary;

/// Short commands run to their end.
pub mod command;

/// A uwsgi client: connect, send, read the response.
pub mod client;

/// Fake uwsgi nodes with scripted behaviour.
pub mod fake_node;

/// A raw HTTP/1.1 client on one kept-alive connection.
pub mod http_client;

/// `nginx -t` on a site file.
pub mod nginx_check;

/// uwsgi request packets.
pub mod packet;

/// Free loopback ports, and whether one accepts.
pub mod ports;

/// A child process with its log, killed with its group on drop.
pub mod process;

/// Where system programs and repository files are.
pub mod programs;

/// The metric names a PromQL expression uses.
pub mod promql;

/// A gRPC Registry client standing in for an agent.
pub mod registry_client;

/// The request id the router adds to what a node receives.
pub mod request_id;
/// The router in-process.
pub mod router;

/// Scraping `/metrics` and probing `/healthz` and `/readyz` over HTTP; parsing the text format.
pub mod scrape;

/// Test certificates for TLS and mTLS.
pub mod tls;

/// uWSGI nodes running a Django site, and uwsgi requests straight to them.
pub mod uwsgi_node;

/// Bounded waits on the real signal.
pub mod wait;

pub use client::*;
pub use fake_node::*;
pub use packet::{get, request};
pub use router::*;
pub use wait::{wait_for, wait_until, STEP};
