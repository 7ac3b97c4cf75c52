//! The request id: the client's `X-Request-Id` when it is usable, else a new one. Either way it is
//! plain visible ASCII, so logs, replies and headers carry it without escaping.

use std::fmt;

/// The var nginx passes a client's `X-Request-Id` header in, and the one a node reads it from
/// (`request.META['HTTP_X_REQUEST_ID']` in Django).
pub const REQUEST_ID_VAR: &[u8] = b"HTTP_X_REQUEST_ID";

/// The longest client id taken as it is; a longer one is replaced.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// Length of a generated id: 128 random bits in hex.
const GENERATED_LEN: usize = 32;

/// A request id, 1 to [`MAX_REQUEST_ID_LEN`] visible ASCII characters, none of them a quote or a
/// backslash. Held inline: making or copying one allocates nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct RequestId {
    len: u8,
    bytes: [u8; MAX_REQUEST_ID_LEN],
}

impl RequestId {
    /// The client's id, if usable: 1 to 128 bytes of visible ASCII without `"` or `\`. Anything
    /// else (empty, too long, spaces, control or non-ASCII bytes) is not trusted into logs.
    pub fn given(value: &[u8]) -> Option<Self> {
        let usable = (1..=MAX_REQUEST_ID_LEN).contains(&value.len())
            && value
                .iter()
                .all(|&b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
        usable.then(|| Self::from_ascii(value))
    }

    /// A new id: 128 bits from the thread's random generator (seeded once per thread, so no
    /// system call per request), as 32 lowercase hex digits.
    pub fn generate() -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let bits: u128 = rand::random();
        let mut hex = [0u8; GENERATED_LEN];
        for (i, digit) in hex.iter_mut().enumerate() {
            *digit = HEX[((bits >> (4 * (GENERATED_LEN - 1 - i))) & 0xf) as usize];
        }
        Self::from_ascii(&hex)
    }

    fn from_ascii(value: &[u8]) -> Self {
        let mut bytes = [0u8; MAX_REQUEST_ID_LEN];
        bytes[..value.len()].copy_from_slice(value);
        Self {
            len: value.len() as u8,
            bytes,
        }
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The id as text (it is ASCII).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).expect("a request id is ASCII")
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestId({:?})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_usable_client_ids_as_they_are() {
        for id in ["abc", "0f8e-11ee:x/y=z+", &"a".repeat(128)] {
            assert_eq!(RequestId::given(id.as_bytes()).unwrap().as_str(), id);
        }
    }

    #[test]
    fn refuses_ids_that_would_need_escaping() {
        let long = "a".repeat(129);
        for bad in [
            &b""[..],
            b"a b",
            b"a\"b",
            b"a\\b",
            b"a\nb",
            b"\xc3\xa9",
            long.as_bytes(),
        ] {
            assert_eq!(RequestId::given(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn generated_ids_are_32_hex_digits_and_differ() {
        let a = RequestId::generate();
        let b = RequestId::generate();
        assert_eq!(a.as_str().len(), 32);
        assert!(a.as_str().bytes().all(|c| c.is_ascii_hexdigit()));
        assert!(RequestId::given(a.as_bytes()).is_some());
        assert_ne!(a, b);
    }
}
