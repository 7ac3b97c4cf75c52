//! The subscription signature check (`subscription::{key_file, read_public_key, verify}`), fed
//! arbitrary packets and arbitrary keys. Nothing here may panic, and a key name must never lead
//! out of the key directory.
//!
//! Input layout: `selector, key length (u16 LE), key bytes, datagram`.
//! - selector bits 0-1: the digest (SHA-1, SHA-256, SHA-384, SHA-512);
//! - selector / 4 % 5: where the key comes from: 0 the test key of tests/fixtures (key bytes
//!   unused), 1 the key bytes as a key file's text, 2 the key bytes as DER inside a
//!   `BEGIN PUBLIC KEY` file, 3 the same inside `BEGIN RSA PUBLIC KEY`, 4 the key bytes as
//!   components: one byte of exponent length, the exponent, then the modulus (big-endian).
//!   Sources 1 to 3 go through `read_public_key` as the router reads `DIR/<key>.pem`.
//!
//! A signed subscription is checked as the router checks it: its signed part against its `sign`
//! var. Any other datagram is split into a message and a signature of the key's size (so the
//! arithmetic runs, not only the length check).

#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use base64ct::{Base64, Encoding};
use libfuzzer_sys::fuzz_target;
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPublicKey};
use uwsgi_router::config::SignDigest;
use uwsgi_router::subscription::{key_file, read_public_key, verify, Subscription};

const TEST_KEY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/subscription-test-key.pub.pem"
);

fn test_key() -> &'static RsaPublicKey {
    static KEY: OnceLock<RsaPublicKey> = OnceLock::new();
    KEY.get_or_init(|| read_public_key(Path::new(TEST_KEY)).expect("the fixture key reads"))
}

/// A key file of this process's own, rewritten for each input that brings its key.
fn scratch_key_file() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!(
            "uwsgi-router-fuzz-signature-{}.pem",
            std::process::id()
        ))
    })
}

fn read_key_text(text: &[u8]) -> Option<RsaPublicKey> {
    let path = scratch_key_file();
    std::fs::write(path, text).expect("the scratch key file is writable");
    read_public_key(path).ok()
}

fn pem(label: &str, der: &[u8]) -> Vec<u8> {
    let body = Base64::encode_string(der);
    let mut text = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        text.push_str(std::str::from_utf8(line).unwrap());
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----\n"));
    text.into_bytes()
}

fn key(source: u8, bytes: &[u8]) -> Option<RsaPublicKey> {
    match source {
        0 => Some(test_key().clone()),
        1 => read_key_text(bytes),
        2 => read_key_text(&pem("PUBLIC KEY", bytes)),
        3 => read_key_text(&pem("RSA PUBLIC KEY", bytes)),
        _ => {
            let (&e_len, rest) = bytes.split_first()?;
            let (e, n) = rest.split_at(usize::from(e_len).min(rest.len()));
            RsaPublicKey::new(BigUint::from_bytes_be(n), BigUint::from_bytes_be(e)).ok()
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [selector, lo, hi, rest @ ..] = data else {
        return;
    };
    let digest = match selector & 3 {
        0 => SignDigest::Sha1,
        1 => SignDigest::Sha256,
        2 => SignDigest::Sha384,
        _ => SignDigest::Sha512,
    };
    let source = selector / 4 % 5;
    let key_len = usize::from(u16::from_le_bytes([*lo, *hi])).min(rest.len());
    let (key_bytes, datagram) = rest.split_at(key_len);
    let Some(key) = key(source, key_bytes) else {
        return;
    };

    let dir = Path::new("keys");
    let parsed = Subscription::parse(datagram).ok();
    if let Some(s) = &parsed {
        let path = key_file(dir, s.key);
        assert_eq!(
            path.parent(),
            Some(dir),
            "{path:?} stays in the key directory"
        );
        let name = path.file_name().unwrap().to_str().unwrap();
        assert_eq!(name.len(), s.key.len() + 4);
        assert!(name.ends_with(".pem"));
        assert!(name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)));
    }
    let path = Path::new("keys/fuzz.pem");
    let (message, signature) = match parsed.and_then(|s| s.signed) {
        Some(signed) => (signed.message, signed.signature),
        None => datagram.split_at(datagram.len().saturating_sub(key.size())),
    };
    let result = verify(key.clone(), digest, message, signature, path);
    if let Err(e) = &result {
        let _ = (e.kind(), e.to_string());
    }
    if result.is_ok() && source == 0 && !message.is_empty() {
        // Accepted by the real key: then one changed bit of the message must be refused.
        let mut forged = message.to_vec();
        forged[0] ^= 1;
        assert!(verify(key, digest, &forged, signature, path).is_err());
    }
});
