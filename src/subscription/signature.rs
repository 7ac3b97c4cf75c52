//! Secured subscriptions, as uWSGI's `--subscriptions-sign-check`: the node signs everything after
//! the header up to the `sign` var with its RSA private key (PKCS#1 v1.5 over the configured
//! digest); the router checks it against `DIR/<key>.pem` and checks the packet's `unix` time, so
//! a captured packet cannot be replayed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use rsa::RsaPublicKey;

use crate::config::SignDigest;

/// Why a packet's signature was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// No `sign` or no `unix` var, while signatures are required.
    #[error("the packet is not signed (no {0} var) and subscription.key_dir requires it")]
    Unsigned(&'static str),
    /// No readable public key for the packet's key.
    #[error("no public key for this key: {path}: {error}")]
    NoKey {
        /// Where it was looked for.
        path: PathBuf,
        /// What went wrong.
        error: String,
    },
    /// The signature does not match the packet and the key.
    #[error("the signature does not match key {0}")]
    Mismatch(PathBuf),
    /// `unix` is too far from the router's clock.
    #[error("packet time {unix} is more than {window}s away from the router's {now}")]
    Stale {
        /// The packet's time.
        unix: u64,
        /// The router's time.
        now: u64,
        /// The window, in seconds.
        window: u64,
    },
    /// `unix` is older than a packet already accepted from the same node.
    #[error("packet time {unix} is older than {last}, already seen from this node (replayed?)")]
    Replayed {
        /// The packet's time.
        unix: u64,
        /// The newest time accepted from the node.
        last: u64,
    },
}

impl SignatureError {
    /// A short stable name for metrics labels and log fields.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unsigned(_) => "unsigned",
            Self::NoKey { .. } => "no_public_key",
            Self::Mismatch(_) => "bad_signature",
            Self::Stale { .. } => "stale",
            Self::Replayed { .. } => "replayed",
        }
    }
}

/// The public key file of `key` in `dir`, named as uWSGI names it: `<key>.pem` with every byte
/// other than ASCII letters, digits, `.`, `-` and `_` replaced by `_` (so no key leaves `dir`).
pub fn key_file(dir: &Path, key: &[u8]) -> PathBuf {
    let mut name: String = key
        .iter()
        .map(|&b| match b {
            b'0'..=b'9' | b'A'..=b'Z' | b'a'..=b'z' | b'.' | b'-' | b'_' => char::from(b),
            _ => '_',
        })
        .collect();
    name.push_str(".pem");
    dir.join(name)
}

/// Reads a public key: `BEGIN PUBLIC KEY` (what `openssl rsa -pubout` writes and uWSGI reads)
/// or `BEGIN RSA PUBLIC KEY`.
pub fn read_public_key(path: &Path) -> Result<RsaPublicKey, SignatureError> {
    let no_key = |error: String| SignatureError::NoKey {
        path: path.to_owned(),
        error,
    };
    let pem = std::fs::read_to_string(path).map_err(|e| no_key(e.to_string()))?;
    RsaPublicKey::from_public_key_pem(&pem)
        .or_else(|_| RsaPublicKey::from_pkcs1_pem(&pem))
        .map_err(|e| no_key(format!("not an RSA public key in PEM: {e}")))
}

/// Checks `signature` over `message` with `key`.
pub fn verify(
    key: RsaPublicKey,
    digest: SignDigest,
    message: &[u8],
    signature: &[u8],
    path: &Path,
) -> Result<(), SignatureError> {
    let mismatch = || SignatureError::Mismatch(path.to_owned());
    let signature = Signature::try_from(signature).map_err(|_| mismatch())?;
    let checked = match digest {
        SignDigest::Sha1 => VerifyingKey::<sha1::Sha1>::new(key).verify(message, &signature),
        SignDigest::Sha256 => VerifyingKey::<sha2::Sha256>::new(key).verify(message, &signature),
        SignDigest::Sha384 => VerifyingKey::<sha2::Sha384>::new(key).verify(message, &signature),
        SignDigest::Sha512 => VerifyingKey::<sha2::Sha512>::new(key).verify(message, &signature),
    };
    checked.map_err(|_| mismatch())
}

/// A node as the replay check knows it: the key and the address it announced.
type NodeKey = (Box<[u8]>, Box<[u8]>);

/// The newest `unix` time accepted from each node (key and address), for the replay check.
/// Entries older than the window are forgotten: the window check refuses those packets anyway.
#[derive(Debug, Default)]
pub(super) struct ReplayGuard {
    last: HashMap<NodeKey, u64>,
}

/// Most nodes remembered; past it, the oldest half is dropped (only signed packets get here).
const REPLAY_MEMORY: usize = 100_000;

impl ReplayGuard {
    /// Accepts `unix` from node (`key`, `address`) if it is within `window` seconds of `now` and
    /// not older than what the node sent before. The same second twice is allowed: a node may
    /// announce itself twice in one second, and that replay can only renew a fresh lease.
    pub(super) fn check(
        &mut self,
        key: &[u8],
        address: &[u8],
        unix: u64,
        now: u64,
        window: u64,
    ) -> Result<(), SignatureError> {
        if unix.abs_diff(now) > window {
            return Err(SignatureError::Stale { unix, now, window });
        }
        let id = (Box::from(key), Box::from(address));
        if let Some(&last) = self.last.get(&id) {
            if unix < last {
                return Err(SignatureError::Replayed { unix, last });
            }
        }
        if self.last.len() >= REPLAY_MEMORY {
            self.forget_before(now.saturating_sub(window));
            if self.last.len() >= REPLAY_MEMORY {
                let mut times: Vec<u64> = self.last.values().copied().collect();
                times.sort_unstable();
                self.forget_before(times[times.len() / 2]);
            }
        }
        self.last.insert(id, unix);
        Ok(())
    }

    /// Forgets nodes whose newest packet is older than `oldest`.
    pub(super) fn forget_before(&mut self, oldest: u64) {
        self.last.retain(|_, &mut t| t >= oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subscription::Subscription;

    const SIGNED: &[u8] = include_bytes!("../../tests/fixtures/uwsgi-subscribe-signed.bin");
    const PUBLIC_KEY: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/subscription-test-key.pub.pem"
    );

    #[test]
    fn key_files_are_named_as_uwsgi_names_them() {
        let dir = Path::new("/keys");
        assert_eq!(
            key_file(dir, b"Shop.example.com"),
            Path::new("/keys/Shop.example.com.pem")
        );
        assert_eq!(
            key_file(dir, b"example.com:8080"),
            Path::new("/keys/example.com_8080.pem")
        );
        assert_eq!(
            key_file(dir, b"../../etc/passwd"),
            Path::new("/keys/.._.._etc_passwd.pem")
        );
        assert_eq!(key_file(dir, "é/x".as_bytes()), Path::new("/keys/___x.pem"));
    }

    #[test]
    fn a_real_uwsgi_signature_verifies_and_a_changed_byte_does_not() {
        let path = Path::new(PUBLIC_KEY);
        let key = read_public_key(path).unwrap();
        let s = Subscription::parse(SIGNED).unwrap();
        let signed = s.signed.unwrap();
        verify(
            key.clone(),
            SignDigest::Sha1,
            signed.message,
            signed.signature,
            path,
        )
        .unwrap();
        let err = verify(
            key.clone(),
            SignDigest::Sha256,
            signed.message,
            signed.signature,
            path,
        )
        .unwrap_err();
        assert_eq!(
            err.kind(),
            "bad_signature",
            "the digest must match the node's"
        );
        let mut forged = signed.message.to_vec();
        let at = forged.len() / 2;
        forged[at] ^= 1;
        let err = verify(
            key.clone(),
            SignDigest::Sha1,
            &forged,
            signed.signature,
            path,
        )
        .unwrap_err();
        assert_eq!(err.kind(), "bad_signature");
        let err = verify(
            key,
            SignDigest::Sha1,
            signed.message,
            &signed.signature[1..],
            path,
        )
        .unwrap_err();
        assert_eq!(err.kind(), "bad_signature");
    }

    #[test]
    fn missing_or_bad_key_files_are_named() {
        let err = read_public_key(Path::new("/nonexistent/k.pem")).unwrap_err();
        assert_eq!(err.kind(), "no_public_key");
        assert!(err.to_string().contains("/nonexistent/k.pem"));
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(
            &junk,
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        )
        .unwrap();
        assert_eq!(read_public_key(&junk).unwrap_err().kind(), "no_public_key");
    }

    #[test]
    fn replays_and_stale_packets_are_refused() {
        let mut g = ReplayGuard::default();
        let now = 1_000_000;
        g.check(b"k", b"a", now, now, 60).unwrap();
        g.check(b"k", b"a", now, now, 60).unwrap();
        g.check(b"k", b"a", now + 1, now, 60).unwrap();
        assert_eq!(
            g.check(b"k", b"a", now, now, 60).unwrap_err().kind(),
            "replayed"
        );
        g.check(b"k", b"other", now, now, 60).unwrap();
        assert_eq!(
            g.check(b"k", b"b", now - 61, now, 60).unwrap_err().kind(),
            "stale"
        );
        assert_eq!(
            g.check(b"k", b"b", now + 61, now, 60).unwrap_err().kind(),
            "stale"
        );
        g.forget_before(now + 1);
        g.check(b"k", b"other", now - 1, now, 60).unwrap();
    }
}
