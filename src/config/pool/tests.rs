//! Parsing and checking of `[pools.NAME]`, by key.

use super::*;
use crate::config::Config;

#[test]
fn nodes_and_networks_are_parsed_once() {
    let c = Config::parse(
        "[pools.default]\n[pools.web]\nallowed_networks = [\"10.0.0.0/8\"]\nnodes = [\"10.0.0.1:3031\", { address = \"unix:/run/a.sock\", weight = 5 }]\n",
    )
    .unwrap();
    let pool = &c.pools["web"];
    assert_eq!(
        pool.allowed_networks,
        Networks::Only(vec!["10.0.0.0/8".parse().unwrap()])
    );
    assert_eq!(
        pool.nodes,
        [
            StaticNode {
                addr: "10.0.0.1:3031".parse().unwrap(),
                weight: 1
            },
            StaticNode {
                addr: "unix:/run/a.sock".parse().unwrap(),
                weight: 5
            },
        ]
    );
    assert_eq!(c.pools["default"].allowed_networks, Networks::Any);
}

#[test]
fn a_bad_network_refuses_the_config_instead_of_opening_the_pool() {
    let err = Config::parse(
        "[pools.web]\nallowed_networks = [\"10.0.0.0/33\"]\nnodes = [\"a.test:1\", \"A.test:1\"]\n",
    )
    .unwrap_err()
    .to_string();
    for expected in [
        "pools.web.allowed_networks[0]: \"10.0.0.0/33\" is not a network: use CIDR such as \"10.0.0.0/8\" or \"::1/128\"",
        "pools.web.nodes[1]: A.test:1 is listed twice",
    ] {
        assert!(err.contains(expected), "{expected:?} not in:\n{err}");
    }
}
