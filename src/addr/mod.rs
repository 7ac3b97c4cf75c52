//! Addresses and patterns as config and packets write them, each parsed once into a type: where
//! routerd listens and the mode of its UNIX sockets, where a node is, where subscriptions arrive,
//! which hosts a route matches, which networks an address must be in. Low in the crate (nothing
//! above the codec), so config, cluster, routing, proxy and subscriptions all take them from here.

mod datagram;
mod host;
mod listen;
mod mode;
mod networks;
mod node;

pub use datagram::{BadDatagramAddr, DatagramAddr};
pub use host::{key_host, split_port, BadHostPattern, HostPattern};
pub use listen::{BadListenAddr, ListenAddr};
pub use mode::{parse_socket_mode, BadSocketMode};
pub use networks::{parse_networks, BadNetwork, Networks};
pub use node::{BadNodeAddr, NodeAddr};
