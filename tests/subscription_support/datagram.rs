//! Subscription datagrams as uWSGI sends them: the vars of `--subscribe-to` in its order, signed
//! as uWSGI signs them, and packets captured from a real uWSGI re-sent as their node would now.

use std::time::{SystemTime, UNIX_EPOCH};

use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::RsaPrivateKey;
use uwsgi_router::protocol::{encode_packet, encode_vars};

/// The counter of subscription datagrams, by outcome.
pub const PACKETS: &str = "uwsgi_router_subscription_packets_total";
/// modifier2 of a subscribe.
pub const SUBSCRIBE: u8 = 0;
/// modifier2 of an unsubscribe.
pub const UNSUBSCRIBE: u8 = 1;

/// The vars uWSGI 2.0 sends, in its order.
pub fn announce(key: &str, address: &str) -> Vec<(&'static str, Vec<u8>)> {
    [
        ("key", key),
        ("address", address),
        ("modifier1", "0"),
        ("modifier2", "0"),
        ("cores", "2"),
        ("load", "0"),
        ("weight", "0"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.as_bytes().to_vec()))
    .collect()
}

/// `vars` with `name` set to `value` (replaced where present, else appended).
pub fn with(
    mut vars: Vec<(&'static str, Vec<u8>)>,
    name: &'static str,
    value: &str,
) -> Vec<(&'static str, Vec<u8>)> {
    match vars.iter_mut().find(|(k, _)| *k == name) {
        Some(var) => var.1 = value.as_bytes().to_vec(),
        None => vars.push((name, value.as_bytes().to_vec())),
    }
    vars
}

/// A subscription packet (modifier1 224) with command `action`.
pub fn packet(action: u8, vars: &[(&str, Vec<u8>)]) -> Vec<u8> {
    encode_packet(
        224,
        action,
        vars.iter().map(|(k, v)| (k.as_bytes(), &v[..])),
    )
    .unwrap()
    .to_vec()
}

/// Seconds since the Unix epoch, as uWSGI dates signed datagrams.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Signs as uWSGI does: `unix`, then an RSA-SHA1 signature over every var before `sign`.
pub fn signed(
    action: u8,
    vars: Vec<(&'static str, Vec<u8>)>,
    key: &RsaPrivateKey,
    unix: u64,
) -> Vec<u8> {
    let mut vars = with(vars, "unix", &unix.to_string());
    let mut block = bytes::BytesMut::new();
    encode_vars(vars.iter().map(|(k, v)| (k.as_bytes(), &v[..])), &mut block).unwrap();
    let signature = SigningKey::<sha1::Sha1>::new(key.clone()).sign(&block);
    vars.push(("sign", signature.to_vec()));
    packet(action, &vars)
}

/// The test nodes' private key (`tests/fixtures/subscription-test-key.pem`).
pub fn test_key() -> RsaPrivateKey {
    let pem = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/subscription-test-key.pem"
    ))
    .unwrap();
    RsaPrivateKey::from_pkcs8_pem(&pem).unwrap()
}

/// A signed subscribe captured from uWSGI 2.0.
pub const UWSGI_SIGNED_SUBSCRIBE: &[u8] = include_bytes!("../fixtures/uwsgi-subscribe-signed.bin");
/// A signed unsubscribe captured from uWSGI 2.0.
pub const UWSGI_SIGNED_UNSUBSCRIBE: &[u8] =
    include_bytes!("../fixtures/uwsgi-unsubscribe-signed.bin");

/// A key directory trusting the test key for each of `keys`, and for `sync.test` ([`sync`]).
pub fn key_dir(keys: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for key in keys.iter().chain(&["sync.test"]) {
        std::fs::copy(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/subscription-test-key.pub.pem"
            ),
            dir.path().join(format!("{key}.pem")),
        )
        .unwrap();
    }
    dir
}

/// What the uWSGI node of a captured fixture sends now for `address`: the fixture's vars, in
/// uWSGI's order and with its command, the address and time replaced, signed again with the
/// node's key (the fixture's own time is long out of any replay window).
pub fn as_uwsgi_sends(fixture: &[u8], address: &str, unix: u64) -> Vec<u8> {
    let (header, vars, _) = uwsgi_router::protocol::parse_packet(fixture, 65535).unwrap();
    let vars: Vec<(&'static str, Vec<u8>)> = vars
        .iter()
        .filter_map(|(name, value)| {
            let name: &'static str = match name {
                b"key" => "key",
                b"address" => "address",
                b"modifier1" => "modifier1",
                b"modifier2" => "modifier2",
                b"cores" => "cores",
                b"load" => "load",
                b"weight" => "weight",
                b"unix" => "unix",
                // `sign` is made again; `notify` names a socket of the capturing host.
                _ => return None,
            };
            Some((name, value.to_vec()))
        })
        .collect();
    signed(
        header.modifier2,
        with(vars, "address", address),
        &test_key(),
        unix,
    )
}

/// The datagram with its command (modifier2, outside the signature) set to `action`.
pub fn with_command(datagram: &[u8], action: u8) -> Vec<u8> {
    let mut altered = datagram.to_vec();
    altered[3] = action;
    altered
}
