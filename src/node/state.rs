//! Where a node came from, the state an operator (or its agent) put it in, and the one derivation
//! of the state shown to users: `routerctl` and the `uwsgi_router_node_state` metric both read
//! [`Node::status`].

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use super::Node;

/// Where a node came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Listed in the config file.
    Static,
    /// Announced by an agent over the Registry API.
    Registered,
    /// Announced by a uWSGI `--subscribe-to` datagram.
    Subscribed,
}

impl Source {
    /// Label value for logs, metrics and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Static => "static",
            Self::Registered => "registered",
            Self::Subscribed => "subscribed",
        }
    }
}

/// The state a drain or resume puts a node in (ejection is health, kept apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum AdminState {
    /// Takes new requests.
    Active = 0,
    /// Takes no new requests; in-flight ones finish.
    Draining = 1,
    /// Drained: nothing in flight and no new requests until resumed (or removed).
    Drained = 2,
    /// Out of rotation until resumed, as the node's agent keeps it: entered at once, or as the end
    /// of a drain of a node whose agent keeps its operator state (which stays listed).
    Maintenance = 3,
}

impl AdminState {
    pub(super) fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Draining,
            2 => Self::Drained,
            3 => Self::Maintenance,
            _ => Self::Active,
        }
    }
}

/// The state shown to users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeStatus {
    /// Takes requests at its full weight.
    Active,
    /// Takes requests, ramping up its weight during slow start.
    Joining,
    /// Passive health checks took it out for a while.
    Ejected,
    /// Finishing its requests; no new ones.
    Draining,
    /// Nothing in flight, no new requests until resumed.
    Drained,
    /// Out of rotation until resumed, kept so by the node's agent on every router.
    Maintenance,
}

impl NodeStatus {
    /// Every status, in the order metrics list them.
    pub const ALL: [Self; 6] = [
        Self::Active,
        Self::Joining,
        Self::Ejected,
        Self::Draining,
        Self::Drained,
        Self::Maintenance,
    ];

    /// Label value for metrics and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Joining => "joining",
            Self::Ejected => "ejected",
            Self::Draining => "draining",
            Self::Drained => "drained",
            Self::Maintenance => "maintenance",
        }
    }

    /// True for the statuses in which the node takes new requests.
    pub fn takes_requests(self) -> bool {
        matches!(self, Self::Active | Self::Joining)
    }
}

impl Node {
    /// The state a drain or resume put the node in.
    pub fn admin_state(&self) -> AdminState {
        AdminState::from_u8(self.admin_state.load(Relaxed))
    }

    /// Marks the node as one whose agent keeps its operator state (before it is shared): a drain
    /// then ends in [`AdminState::Maintenance`], and the node stays.
    pub fn with_agent_admin(mut self) -> Self {
        self.agent_admin = true;
        self.stays_drained = true.into();
        self
    }

    /// The node's agent itself is draining it to stop: once drained it leaves, as any dynamic
    /// node, instead of staying in maintenance. A node already in maintenance drains again, so
    /// that its agent hears it is drained once nothing is in flight.
    pub fn leave_once_drained(&self) {
        self.stays_drained.store(false, Relaxed);
        let _ = self.admin_state.compare_exchange(
            AdminState::Maintenance as u8,
            AdminState::Draining as u8,
            Relaxed,
            Relaxed,
        );
    }

    /// True when the node's agent keeps its operator state (its Announce carried one).
    pub fn agent_admin(&self) -> bool {
        self.agent_admin
    }

    /// Ends a drain, nothing being in flight any more: `Drained`, or `Maintenance` for a node
    /// whose agent keeps its operator state (an operator's drain). Returns the state it is now in.
    pub fn finish_drain(&self) -> AdminState {
        let end = if self.stays_drained.load(Relaxed) {
            AdminState::Maintenance
        } else {
            AdminState::Drained
        };
        self.set_admin_state(end);
        end
    }

    /// The state shown to users. A drain wins over an ejection: an operator who drained a node
    /// sees it draining whatever its health, and ejection only matters while it takes requests.
    pub fn status(&self, now_ms: u64, slow_start: Duration) -> NodeStatus {
        match self.admin_state() {
            AdminState::Draining => NodeStatus::Draining,
            AdminState::Drained => NodeStatus::Drained,
            AdminState::Maintenance => NodeStatus::Maintenance,
            AdminState::Active if self.health.is_ejected(now_ms) => NodeStatus::Ejected,
            AdminState::Active
                if now_ms.saturating_sub(self.joined_ms) < crate::clock::ms(slow_start) =>
            {
                NodeStatus::Joining
            }
            AdminState::Active => NodeStatus::Active,
        }
    }
}
