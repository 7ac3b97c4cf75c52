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
                weight: 1,
                backup: false
            },
            StaticNode {
                addr: "unix:/run/a.sock".parse().unwrap(),
                weight: 5,
                backup: false
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

#[test]
fn traffic_settings_fall_back_to_the_global_timeouts_and_are_checked_by_key() {
    let c = Config::parse(
        "[timeouts]\nconnect = \"2s\"\nidle = \"30s\"\n[pools.default]\nmax_connections = 8\n\
         nodes = [{ address = \"10.0.0.1:3031\", backup = true }]\n\
         [pools.default.timeouts]\nfirst_byte = \"5s\"\n[pools.default.queue]\nsize = 0\n",
    )
    .unwrap();
    let pool = &c.pools["default"];
    assert_eq!(
        pool.timeouts,
        NodeTimeouts {
            connect: Duration::from_secs(2),
            first_byte: Duration::from_secs(5),
            idle: Duration::from_secs(30),
        }
    );
    assert_eq!(pool.max_connections, 8);
    assert_eq!(pool.queue.size, 0);
    assert_eq!(pool.queue.timeout, QueueConfig::default().timeout);
    assert!(pool.nodes[0].backup);

    let err = Config::parse(
        "[pools.default]\nmax_connections = 2000000\n[pools.default.timeouts]\nconnect = \"0s\"\n\
         idle = \"2d\"\n[pools.default.queue]\nsize = 5000000\ntimeout = \"2h\"\n",
    )
    .unwrap_err()
    .to_string();
    for expected in [
        "pools.default.max_connections: use 0 (no limit) to 1000000",
        "pools.default.timeouts.connect: 0s is out of range",
        "pools.default.timeouts.idle: 2days is out of range",
        "pools.default.queue.size: use 0 to 1000000",
        "pools.default.queue.timeout: 2h is out of range",
    ] {
        assert!(err.contains(expected), "{expected:?} not in:\n{err}");
    }
}
