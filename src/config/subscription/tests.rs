//! Parsing and checking of `[subscription]`, by key.

use std::time::Duration;

use crate::addr::Networks;
use crate::config::{Config, SignDigest};

#[test]
fn off_by_default_and_parsed_when_given() {
    assert!(!Config::default().subscription.enabled());
    let c = Config::parse(
        "[subscription]\nlisten = [\"127.0.0.1:2626\", \"unix:/run/x.sock\"]\ntolerance = \"5s\"\ncreate_pools = false\ndigest = \"SHA256\"\n",
    )
    .unwrap();
    let s = &c.subscription;
    assert!(s.enabled());
    assert_eq!(s.tolerance, Duration::from_secs(5));
    assert!(!s.create_pools);
    assert_eq!(s.digest, SignDigest::Sha256);
    assert_eq!(s.max_pools, 100);
}

#[test]
fn every_problem_names_its_key() {
    let err = Config::parse(
        r#"
[subscription]
listen = ["0.0.0.0:2626", "nowhere", "unix:/run/a.sock", "/run/a.sock"]
tolerance = "0s"
max_nodes = 0
max_pools = 0
allowed_networks = ["10.0.0.0/33"]
key_dir = "/nonexistent/keys"
"#,
    )
    .unwrap_err()
    .to_string();
    for expected in [
        "subscription.listen[1]: \"nowhere\" is not a subscription address",
        "subscription.listen[3]: /run/a.sock is listed twice",
        "subscription.tolerance: must be longer than 0s",
        "subscription.max_nodes: must be at least 1",
        "subscription.max_pools: must be at least 1",
        "subscription.allowed_networks[0]:",
        "subscription.key_dir: /nonexistent/keys is not a directory",
    ] {
        assert!(err.contains(expected), "{expected:?} not in:\n{err}");
    }
    // With a key directory, 0.0.0.0 is fine: only signed packets get in.
    assert!(!err.contains("subscription.listen[0]"), "{err}");
    let open = Config::parse("[subscription]\nlisten = [\"0.0.0.0:2626\"]\n")
        .unwrap_err()
        .to_string();
    assert!(
        open.contains("subscription.listen[0]: 0.0.0.0:2626 is reachable from other hosts"),
        "{open}"
    );
    let unknown = Config::parse("[subscription]\ndigest = \"md5\"\n")
        .unwrap_err()
        .to_string();
    assert!(unknown.contains("md5"), "{unknown}");
}

#[test]
fn notify_dir_and_relative_address_networks_are_checked_by_key() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().display();
    let ok = Config::parse(&format!(
        "[subscription]\nkey_dir = \"{keys}\"\nnotify_dir = \"{keys}\"\n[subscription.relative_address_networks]\n\"Shop.Example.com\" = [\"10.0.0.11/32\", \"10.0.1.0/24\"]\n"
    ))
    .unwrap();
    let s = &ok.subscription;
    assert_eq!(s.notify_dir.as_deref(), Some(dir.path()));
    let shop = s.relative_networks("shop.example.com");
    let nets = ["10.0.0.11/32", "10.0.1.0/24"].map(|n| n.parse().unwrap());
    assert_eq!(
        shop,
        &Networks::Only(nets.to_vec()),
        "keys match as hosts do"
    );
    assert!(!s
        .relative_networks("other.example.com")
        .allows("10.0.0.11".parse().unwrap()));

    for (toml, expected) in [
        (
            "notify_dir = \"relative/dir\"\n".to_owned(),
            "subscription.notify_dir: relative/dir is not an absolute path",
        ),
        (
            "notify_dir = \"/nonexistent/notify\"\n".to_owned(),
            "subscription.notify_dir: /nonexistent/notify is not a directory",
        ),
        (
            format!("key_dir = \"{keys}\"\n[subscription.relative_address_networks]\n\"shop.test\" = [\"10.0.0.0/33\"]\n"),
            "subscription.relative_address_networks.\"shop.test\"[0]: \"10.0.0.0/33\" is not a network",
        ),
        (
            format!("key_dir = \"{keys}\"\n[subscription.relative_address_networks]\n\"*.shop.test\" = []\n"),
            "subscription.relative_address_networks.\"*.shop.test\": \"*.shop.test\" is not a subscription key",
        ),
        (
            "[subscription.relative_address_networks]\n\"shop.test\" = [\"10.0.0.0/8\"]\n".to_owned(),
            "subscription.relative_address_networks: applies to signed subscriptions only",
        ),
    ] {
        let err = Config::parse(&format!("[subscription]\n{toml}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{expected:?} not in:\n{err}");
    }
    // Too long for a socket path in it to fit in `notify`.
    let long = dir.path().join("d".repeat(100));
    std::fs::create_dir(&long).unwrap();
    let err = Config::parse(&format!(
        "[subscription]\nnotify_dir = \"{}\"\n",
        long.display()
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("subscription.notify_dir:") && err.contains("is too long"),
        "{err}"
    );
}
