//! Distribution properties of every algorithm, over many picks.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::node::{Evidence, InFlight, LoadReport, Node, Outcome, Source};

/// `n` requests in flight on `node` while the result is held.
fn busy(node: &Arc<Node>, n: usize) -> Vec<InFlight> {
    (0..n).map(|_| node.start_request()).collect()
}

/// One request on `node` answered after `first_byte` (a latency sample taken now).
fn answered(node: &Arc<Node>, first_byte: Duration) {
    node.start_request().finish(
        Outcome::Responded(Some(200)),
        Evidence::Answered(first_byte, Some(200)),
        &crate::config::EjectionConfig::default(),
    );
}

fn nodes(weights: &[u32]) -> Vec<Arc<Node>> {
    weights
        .iter()
        .enumerate()
        .map(|(i, &w)| {
            let addr = format!("127.0.0.1:{}", 4000 + i);
            Arc::new(Node::new(
                addr.clone(),
                addr.parse().unwrap(),
                Source::Static,
                w,
            ))
        })
        .collect()
}

fn cx<'a>(nodes: &'a [Arc<Node>], key: Option<&'a [u8]>) -> PickContext<'a> {
    PickContext {
        nodes,
        now_ms: crate::clock::now_ms() + 1_000_000,
        slow_start: Duration::ZERO,
        hash_key: key,
    }
}

fn counts(
    b: &dyn Balance,
    nodes: &[Arc<Node>],
    picks: usize,
    usable: &dyn Fn(usize) -> bool,
) -> Vec<usize> {
    let mut c = vec![0; nodes.len()];
    for _ in 0..picks {
        c[b.pick(&cx(nodes, None), usable).unwrap()] += 1;
    }
    c
}

/// As [`counts`] with every node usable, picking at the real time (fresh samples and reports).
fn counts_now(b: &dyn Balance, nodes: &[Arc<Node>], picks: usize) -> Vec<usize> {
    let mut c = vec![0; nodes.len()];
    for _ in 0..picks {
        let cx = PickContext {
            now_ms: crate::clock::now_ms(),
            ..cx(nodes, None)
        };
        c[b.pick(&cx, &all).unwrap()] += 1;
    }
    c
}

fn all(_: usize) -> bool {
    true
}

/// Asserts each share is within `tol` (absolute fraction) of its weight's share.
fn assert_shares(c: &[usize], weights: &[u32], tol: f64) {
    let total: usize = c.iter().sum();
    let wsum: u32 = weights.iter().sum();
    for (i, (&n, &w)) in c.iter().zip(weights).enumerate() {
        let got = n as f64 / total as f64;
        let want = f64::from(w) / f64::from(wsum);
        assert!(
            (got - want).abs() <= tol,
            "node {i}: share {got:.3}, want {want:.3} (counts {c:?})"
        );
    }
}

#[test]
fn round_robin_is_exactly_even_and_skips_unusable() {
    let n = nodes(&[1, 5, 1]);
    let b = build(Algorithm::RoundRobin, &n);
    assert_eq!(counts(&*b, &n, 300, &all), vec![100, 100, 100]);
    // The node after the unusable one gets its own turn only, not the skipped one's too.
    assert_eq!(counts(&*b, &n, 300, &|i| i != 1), vec![150, 0, 150]);
    let n = nodes(&[1, 1, 1, 1]);
    let b = build(Algorithm::RoundRobin, &n);
    assert_eq!(
        counts(&*b, &n, 400, &|i| i == 0 || i == 3),
        vec![200, 0, 0, 200]
    );
}

#[test]
fn weighted_round_robin_respects_weights_exactly_per_cycle() {
    let w = [5, 1, 1, 3];
    let n = nodes(&w);
    let b = build(Algorithm::WeightedRoundRobin, &n);
    assert_eq!(counts(&*b, &n, 1000, &all), vec![500, 100, 100, 300]);
    // With the heaviest node out, the others keep their proportions (1:1:3).
    assert_eq!(counts(&*b, &n, 1000, &|i| i != 0), vec![0, 200, 200, 600]);
}

#[test]
fn random_respects_weights_within_tolerance() {
    let w = [1, 2, 3];
    let n = nodes(&w);
    let b = build(Algorithm::Random, &n);
    assert_shares(&counts(&*b, &n, 60_000, &all), &w, 0.02);
    assert_eq!(counts(&*b, &n, 1000, &|i| i == 2)[2], 1000);
}

#[test]
fn least_connections_picks_fewest_per_weight() {
    let n = nodes(&[1, 1, 2]);
    let _held = [busy(&n[0], 4), busy(&n[1], 1), busy(&n[2], 3)]; // 1.5 per unit of weight
    let b = build(Algorithm::LeastConnections, &n);
    assert_eq!(counts(&*b, &n, 100, &all), vec![0, 100, 0]);
    // Ties spread over the tied nodes.
    let _more = [busy(&n[1], 3), busy(&n[2], 5)];
    let c = counts(&*b, &n, 3000, &all);
    assert!(c.iter().all(|&x| x > 800), "{c:?}");
}

#[test]
fn least_load_respects_weights_when_idle() {
    let w = [1, 1, 4];
    let n = nodes(&w);
    let b = build(Algorithm::LeastLoad, &n);
    let c = counts(&*b, &n, 30_000, &all);
    // P2C favours the heavier node strongly; it must get the most traffic and the others some.
    assert!(c[2] > c[0] * 2 && c[2] > c[1] * 2, "{c:?}");
    assert!(c[0] > 0 && c[1] > 0, "{c:?}");
}

#[test]
fn least_load_avoids_busy_and_slow_nodes() {
    let n = nodes(&[1, 1, 1]);
    answered(&n[0], Duration::from_millis(200)); // slow
    let _held = busy(&n[1], 20); // busy here
    answered(&n[2], Duration::from_millis(5));
    let b = build(Algorithm::LeastLoad, &n);
    // Picked now, while the latency samples are fresh.
    let c = counts_now(&*b, &n, 3000);
    // P2C: the worst node never wins a comparison, the best wins all of its own.
    assert_eq!(
        c[1], 0,
        "a node with many requests pending must lose: {c:?}"
    );
    assert!(
        c[2] > 1800 && c[0] < 1200,
        "the fast idle node must win most picks: {c:?}"
    );
    // A node that reports all its workers busy and a queue is avoided too.
    let m = nodes(&[1, 1]);
    let report = LoadReport {
        capacity: 4,
        busy: 4,
        queue: 10,
        weight: None,
    };
    m[0].record_report(&report, crate::clock::now_ms(), Duration::from_secs(60));
    let c = counts_now(&*build(Algorithm::LeastLoad, &m), &m, 1000);
    assert_eq!(c, vec![0, 1000]);
}

#[test]
fn least_load_counts_a_failed_attempt_as_a_slow_answer() {
    // Three nodes measured fast; one then refuses a connection. It must not keep winning on its
    // old estimate while it fails.
    let n = nodes(&[1, 1, 1]);
    for node in &n {
        answered(node, Duration::from_micros(300));
    }
    n[2].start_request().finish(
        Outcome::ConnectFailed,
        Evidence::Failed,
        &crate::config::EjectionConfig::default(),
    );
    let c = counts_now(&*build(Algorithm::LeastLoad, &n), &n, 300);
    assert_eq!(c[2], 0, "a node that failed loses to fast ones: {c:?}");
}

#[test]
fn least_load_picks_two_distinct_nodes() {
    // With two nodes, P2C must always compare both: the cheaper one wins every pick.
    let n = nodes(&[1, 1]);
    let _held = busy(&n[0], 1);
    let c = counts(&*build(Algorithm::LeastLoad, &n), &n, 1000, &all);
    assert_eq!(c, vec![0, 1000]);
}

#[test]
fn every_algorithm_skips_unusable_and_reports_none() {
    let n = nodes(&[1, 2, 3]);
    for alg in [
        Algorithm::LeastLoad,
        Algorithm::RoundRobin,
        Algorithm::WeightedRoundRobin,
        Algorithm::LeastConnections,
        Algorithm::Random,
        Algorithm::Hash,
    ] {
        let b = build(alg, &n);
        for _ in 0..200 {
            assert_eq!(b.pick(&cx(&n, Some(b"k")), &|i| i == 1), Some(1), "{alg:?}");
        }
        assert_eq!(b.pick(&cx(&n, Some(b"k")), &|_| false), None, "{alg:?}");
        assert_eq!(
            build(alg, &[]).pick(&cx(&[], Some(b"k")), &all),
            None,
            "{alg:?}"
        );
    }
}

fn hash_assignments(n: &[Arc<Node>], keys: &[String]) -> HashMap<String, Arc<str>> {
    let b = build(Algorithm::Hash, n);
    keys.iter()
        .map(|k| {
            let i = b.pick(&cx(n, Some(k.as_bytes())), &all).unwrap();
            (k.clone(), n[i].id().clone())
        })
        .collect()
}

#[test]
fn hash_is_stable_and_moves_about_one_nth_when_a_node_joins() {
    let keys: Vec<String> = (0..10_000)
        .map(|i| format!("10.1.{}.{}", i / 256, i % 256))
        .collect();
    let four = nodes(&[1, 1, 1, 1]);
    let before = hash_assignments(&four, &keys);
    assert_eq!(
        before,
        hash_assignments(&four, &keys),
        "same nodes, same assignment"
    );
    let five = nodes(&[1, 1, 1, 1, 1]);
    let after = hash_assignments(&five, &keys);
    let moved: Vec<_> = keys.iter().filter(|k| before[*k] != after[*k]).collect();
    let share = moved.len() as f64 / keys.len() as f64;
    assert!(
        (0.12..=0.28).contains(&share),
        "moved {share:.3}, expected about 1/5"
    );
    assert!(
        moved.iter().all(|k| after[*k] == *five[4].id()),
        "moved keys go only to the new node"
    );
    // Every node gets a fair share of keys.
    let mut per: HashMap<&Arc<str>, usize> = HashMap::new();
    after
        .values()
        .for_each(|id| *per.entry(id).or_default() += 1);
    assert!(per.values().all(|&c| (1200..=2800).contains(&c)), "{per:?}");
}

#[test]
fn hash_fails_over_to_the_next_node_and_back() {
    let n = nodes(&[1, 1, 1]);
    let b = build(Algorithm::Hash, &n);
    let home = b.pick(&cx(&n, Some(b"user-42")), &all).unwrap();
    let other = b.pick(&cx(&n, Some(b"user-42")), &|i| i != home).unwrap();
    assert_ne!(home, other);
    assert_eq!(b.pick(&cx(&n, Some(b"user-42")), &all), Some(home));
}
