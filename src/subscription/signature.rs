//! Secured subscriptions, as uWSGI's `--subscriptions-sign-check`: the node signs everything after
//! the header up to the `sign` var with its RSA private key (PKCS#1 v1.5 over the configured
//! digest); the router checks it against `DIR/<key>.pem` and checks the packet's `unix` time, so
//! a captured packet cannot be replayed.
//!
//! The signature does not cover the 4-byte header, where the command is (modifier2: subscribe or
//! unsubscribe), nor the sender's address. So the replay check is per node as resolved (key and
//! the address the node is reached at), and it binds the whole datagram to its time: a packet
//! with the time of the last one accepted from the node must be that packet byte for byte, and
//! anything else, a flipped command included, needs a strictly newer time. uWSGI dates an
//! unsubscribe one second ahead (`unix` = now + command), so a node's own unsubscribe passes.

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use rsa::RsaPublicKey;

use crate::addr::NodeAddr;
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
    /// `unix` is the time of the last packet accepted from the node, but the datagram differs
    /// from it (its command, outside the signature, included).
    #[error("packet time {unix} is that of another packet already accepted from this node; a changed packet (or command) needs a newer time (replayed and altered?)")]
    Altered {
        /// The packet's time.
        unix: u64,
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
            Self::Replayed { .. } | Self::Altered { .. } => "replayed",
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

/// A node as the replay check knows it: its key as a route host, and the address it is reached
/// at once resolved (a relative address is two nodes when two hosts send it).
type NodeKey = (Box<str>, Box<str>);

/// The last packet accepted from a node.
#[derive(Debug, Clone, Copy)]
struct Seen {
    unix: u64,
    /// SHA-256 of the whole datagram, header included.
    digest: [u8; 32],
}

/// The last packet accepted from each node, for the replay check. Entries older than the window
/// are forgotten: the window check refuses those packets anyway.
#[derive(Debug, Default)]
pub(super) struct ReplayGuard {
    last: HashMap<NodeKey, Seen>,
}

/// Most nodes remembered; past it, the oldest half is dropped (only signed packets get here).
const REPLAY_MEMORY: usize = 100_000;

impl ReplayGuard {
    /// Accepts `datagram`, signed at `unix`, from the node (`host`, `node`) if `unix` is within
    /// `window` seconds of `now` and either newer than the last packet accepted from the node,
    /// or that same packet again (a node may announce itself twice in one second, and a
    /// duplicate can only renew a fresh lease or repeat an unsubscribe).
    pub(super) fn check(
        &mut self,
        host: &str,
        node: &NodeAddr,
        datagram: &[u8],
        unix: u64,
        now: u64,
        window: u64,
    ) -> Result<(), SignatureError> {
        if unix.abs_diff(now) > window {
            return Err(SignatureError::Stale { unix, now, window });
        }
        let digest: [u8; 32] = Sha256::digest(datagram).into();
        let id: NodeKey = (host.into(), node.to_string().into());
        if let Some(last) = self.last.get(&id) {
            if unix < last.unix {
                return Err(SignatureError::Replayed {
                    unix,
                    last: last.unix,
                });
            }
            if unix == last.unix {
                return if digest == last.digest {
                    Ok(())
                } else {
                    Err(SignatureError::Altered { unix })
                };
            }
        }
        if self.last.len() >= REPLAY_MEMORY {
            self.forget_before(now.saturating_sub(window));
            if self.last.len() >= REPLAY_MEMORY {
                let mut times: Vec<u64> = self.last.values().map(|s| s.unix).collect();
                times.sort_unstable();
                self.forget_before(times[times.len() / 2]);
            }
        }
        self.last.insert(id, Seen { unix, digest });
        Ok(())
    }

    /// Forgets nodes whose newest packet is older than `oldest`.
    pub(super) fn forget_before(&mut self, oldest: u64) {
        self.last.retain(|_, s| s.unix >= oldest);
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
        let a: NodeAddr = "127.0.0.1:3031".parse().unwrap();
        let other: NodeAddr = "127.0.0.2:3031".parse().unwrap();
        let b: NodeAddr = "127.0.0.3:3031".parse().unwrap();
        let kind = |r: Result<(), SignatureError>| r.unwrap_err().kind();
        g.check("k", &a, b"p1", now, now, 60).unwrap();
        g.check("k", &a, b"p1", now, now, 60).unwrap();
        g.check("k", &a, b"p2", now + 1, now, 60).unwrap();
        assert_eq!(kind(g.check("k", &a, b"p1", now, now, 60)), "replayed");
        g.check("k", &other, b"p1", now, now, 60).unwrap();
        g.check("other", &a, b"p1", now, now, 60).unwrap();
        assert_eq!(kind(g.check("k", &b, b"p", now - 61, now, 60)), "stale");
        assert_eq!(kind(g.check("k", &b, b"p", now + 61, now, 60)), "stale");
        g.forget_before(now + 1);
        g.check("k", &other, b"p0", now - 1, now, 60).unwrap();
    }

    #[test]
    fn a_packet_changed_outside_the_signature_needs_a_newer_time() {
        let mut g = ReplayGuard::default();
        let now = 1_000_000;
        let node: NodeAddr = "127.0.0.1:3031".parse().unwrap();
        let subscribe = [224, 10, 0, 0, 1, 2, 3];
        let mut unsubscribe = subscribe;
        unsubscribe[3] = 1;
        g.check("k", &node, &subscribe, now, now, 60).unwrap();
        let err = g.check("k", &node, &unsubscribe, now, now, 60).unwrap_err();
        assert_eq!(err.kind(), "replayed");
        assert!(matches!(err, SignatureError::Altered { unix } if unix == now));
        // The refusal changed nothing: the genuine packet is still the one remembered.
        g.check("k", &node, &subscribe, now, now, 60).unwrap();
        // uWSGI's own unsubscribe is dated a second ahead; the subscribe turned back from it is
        // refused, as is the older subscribe.
        g.check("k", &node, &unsubscribe, now + 1, now, 60).unwrap();
        assert!(g.check("k", &node, &subscribe, now + 1, now, 60).is_err());
        assert!(g.check("k", &node, &subscribe, now, now, 60).is_err());
        g.check("k", &node, &subscribe, now + 2, now, 60).unwrap();
    }
}
