//! uwsgi-router: a load-balancing router for the uwsgi protocol.
//!
//! A request's path through the modules: [`proxy`] accepts a client and reads the packet head with
//! the [`protocol`] codec; [`routing`] maps its host and path to a pool of the [`cluster`]; the
//! pool's snapshot and a [`balance`] algorithm pick a node; [`proxy`] connects (retrying other
//! nodes on connect failure), forwards the bytes both ways and records the outcome in the node's
//! health and in [`metrics`]. [`config`] describes it all, in the address and host pattern types
//! of [`addr`] that every module shares; [`daemon`] wires it up and handles
//! reload and shutdown signals; [`http`] serves `/metrics`, `/healthz` and `/readyz`.
//! Operators steer it through [`control`]'s Admin API with `routerctl`, whose logic is [`routerctl`];
//! the generated gRPC types both sides use are [`api`]. [`reloader`] applies a new config.

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
pub mod metrics;
pub mod node;
pub mod protocol;
pub mod proxy;
pub mod reloader;
pub mod routerctl;
pub mod routing;
pub mod scrape;
pub mod subscription;
pub mod throttle;
