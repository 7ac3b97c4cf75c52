//! Checking an Announce and turning it into a cluster [`Node`]: ids, addresses, weights and labels
//! are validated here, with reasons an agent's operator can act on.

use std::time::Duration;

use crate::addr::NodeAddr;
use crate::api::Announce;
use crate::node::{Node, NodeMeta, Source};

/// Report interval assumed when the agent gives none.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// A lease is this many report intervals...
const LEASE_INTERVALS: u32 = 3;
/// ... within these bounds.
const LEASE_BOUNDS: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(60));
const MAX_LABELS: usize = 32;
const MAX_FIELD: usize = 128;

/// Why an announce is malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct AnnounceError(pub(super) String);

/// Validates `a`; returns the node, its pool, its lease and its report interval.
pub(super) fn node_from_announce(
    a: &Announce,
) -> Result<(Node, String, Duration, Duration), AnnounceError> {
    let err = |s: String| Err(AnnounceError(s));
    let id_ok = (1..=MAX_FIELD).contains(&a.node_id.len())
        && a.node_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._:@/-[]".contains(c));
    if !id_ok {
        return err(format!(
            "node_id {:?} must be 1 to 128 characters of A-Z a-z 0-9 . _ : @ / - [ ]",
            a.node_id
        ));
    }
    if a.pool.is_empty() || a.pool.len() > MAX_FIELD {
        return err("pool must be given (at most 128 characters)".into());
    }
    let addr: NodeAddr = match a.address.parse() {
        Ok(addr) => addr,
        Err(e) => return err(e.to_string()),
    };
    if a.weight > 1000 {
        return err(format!(
            "weight {} is out of range: use 1 to 1000",
            a.weight
        ));
    }
    if a.labels.len() > MAX_LABELS
        || a.labels
            .iter()
            .any(|(k, v)| k.len() > MAX_FIELD || v.len() > MAX_FIELD)
    {
        return err("at most 32 labels, keys and values at most 128 bytes".into());
    }
    if a.version.len() > MAX_FIELD {
        return err("version is at most 128 bytes".into());
    }
    let interval = match a.report_interval_ms {
        0 => DEFAULT_INTERVAL,
        ms => Duration::from_millis(u64::from(ms)),
    };
    let lease = (interval * LEASE_INTERVALS).clamp(LEASE_BOUNDS.0, LEASE_BOUNDS.1);
    let mut labels: Vec<(String, String)> = a
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.sort();
    let node = Node::new(
        a.node_id.as_str(),
        addr,
        Source::Registered,
        a.weight.max(1),
    )
    .with_meta(NodeMeta {
        labels,
        version: a.version.clone(),
    })
    .with_capacity(a.capacity);
    // An agent that keeps the node's operator state says where it stands before any request.
    let node = match &a.admin {
        Some(state) => {
            super::agent_admin::announced(node, state).map_err(|e| AnnounceError(e.to_string()))?
        }
        None => node,
    };
    Ok((node, a.pool.clone(), lease, interval))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn announce() -> Announce {
        Announce {
            node_id: "app-1:3031".into(),
            pool: "web".into(),
            address: "127.0.0.1:3031".into(),
            capacity: 4,
            weight: 0,
            report_interval_ms: 500,
            ..Default::default()
        }
    }

    #[test]
    fn a_good_announce_becomes_a_node() {
        let (node, pool, lease, interval) = node_from_announce(&announce()).unwrap();
        assert_eq!((&**node.id(), pool.as_str()), ("app-1:3031", "web"));
        assert_eq!(node.weight(), 1, "weight 0 means 1");
        assert_eq!(interval, Duration::from_millis(500));
        assert_eq!(lease, Duration::from_millis(1500));
        assert_eq!(node.capacity(), 4);
    }

    #[test]
    fn bad_announces_say_what_is_wrong() {
        for (change, words) in [
            (
                Box::new(|a: &mut Announce| a.node_id = String::new())
                    as Box<dyn Fn(&mut Announce)>,
                "node_id",
            ),
            (
                Box::new(|a: &mut Announce| a.node_id = "a b".into()),
                "node_id",
            ),
            (Box::new(|a: &mut Announce| a.pool = String::new()), "pool"),
            (
                Box::new(|a: &mut Announce| a.address = "nowhere".into()),
                "not a node address",
            ),
            (Box::new(|a: &mut Announce| a.weight = 5000), "weight"),
            (
                Box::new(|a: &mut Announce| {
                    a.labels.insert("k".repeat(200), "v".into());
                }),
                "labels",
            ),
        ] {
            let mut a = announce();
            change(&mut a);
            let e = node_from_announce(&a).unwrap_err();
            assert!(e.0.contains(words), "{words}: {}", e.0);
        }
    }

    #[test]
    fn leases_are_bounded() {
        let mut a = announce();
        a.report_interval_ms = 60_000;
        assert_eq!(node_from_announce(&a).unwrap().2, Duration::from_secs(60));
        a.report_interval_ms = 10;
        assert_eq!(node_from_announce(&a).unwrap().2, Duration::from_secs(1));
    }
}
