//! uwsgi-router: a load-balancing router for the uwsgi protocol.
//!
//! A request's path through the modules: [`proxy`] accepts a client and reads the packet head with
//! the [`protocol`] codec; [`routing`] maps its host and path to a pool of the [`cluster`]; the
//! pool's snapshot and a [`balance`] algorithm pick a node; [`proxy`] connects (retrying other
//! nodes on connect failure), forwards the bytes both ways and records the outcome in the node's
//! health and in [`metrics`]. [`config`] describes it all; [`daemon`] wires it up and handles
//! reload and shutdown signals.

pub mod balance;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod control;
pub mod daemon;
pub mod metrics;
pub mod protocol;
pub mod proxy;
pub mod routing;
