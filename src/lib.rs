//! uwsgi-router: a load-balancing router for the uwsgi protocol.
//!
//! A request's path through the modules: [`proxy`] accepts a client and reads the packet head with
//! the [`protocol`] codec, then reads the router snapshot (`proxy::Dispatch`: the config in force
//! and its routes, written only by `proxy::Dispatcher`); [`routing`] maps its host and path to a
//! pool of the [`cluster`]; the pool's snapshot and a [`balance`] algorithm pick a [`node`];
//! [`proxy`] connects (retrying other nodes on connect failure) and forwards the bytes both ways;
//! the node's in-flight guard and the pool record the outcome, latency and health in one place,
//! and the session hands its line to the [`access_log`], whose writer thread writes it.
//!
//! Each piece of state has one owner: a node's counters, load, admin state and health are private
//! to [`node`], which derives the state shown to users; membership, leases, drains, ejections and
//! their typed causes belong to [`cluster`], whose events write the log line and the metric
//! together. [`config`] is built once into typed values, in the address, host pattern and network
//! types of [`addr`]; [`reloader`] applies a new one; [`daemon`] wires it all up and handles the
//! signals. [`metrics`] is the catalog and the recording functions; [`scrape`] renders `/metrics`,
//! which [`http`] serves with `/healthz` and `/readyz`. Nodes join through [`control`]'s Registry
//! (agents: [`agent`]) or [`subscription`] datagrams; operators steer it through [`control`]'s
//! Admin API with `routerctl` ([`routerctl`]); [`api`] holds the generated gRPC types both sides
//! use. [`manuals`] writes the three binaries' man pages and completions from their clap
//! definitions (routerd's in [`routerd_cli`]).
//!
//! Imports run one way: [`protocol`], [`clock`], [`addr`] -> [`config`] -> [`node`] -> [`metrics`]
//! -> [`access_log`] -> [`balance`] -> [`cluster`] -> [`routing`] -> [`proxy`], [`control`],
//! [`subscription`] -> [`reloader`] -> [`daemon`].

pub mod access_log;
pub mod addr;
pub mod agent;
pub mod api;
pub mod balance;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod conn_limit;
pub mod control;
pub mod daemon;
pub mod http;
pub mod logging;
pub mod manuals;
pub mod metrics;
pub mod node;
pub mod notify;
pub mod protocol;
pub mod proxy;
pub mod reloader;
pub mod routerctl;
pub mod routerd_cli;
pub mod routing;
pub mod scrape;
pub mod subscription;
pub mod throttle;
