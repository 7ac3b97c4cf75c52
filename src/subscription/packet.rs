//! A subscription datagram (modifier1 224) parsed with the uwsgi codec into a typed
//! [`Subscription`]. Pure: no I/O.

use crate::protocol::{parse_packet, PacketError, MAX_VARS_SIZE, MODIFIER1_SUBSCRIPTION};

/// Largest datagram accepted: the buffer uWSGI's own subscription server reads into.
pub const MAX_DATAGRAM: usize = 4096;

/// What the node asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Join the key's pool, or renew the lease (modifier2 0).
    Subscribe,
    /// Leave it (any other modifier2, as uWSGI reads it).
    Unsubscribe,
}

impl Action {
    /// Label value for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Subscribe => "subscribe",
            Self::Unsubscribe => "unsubscribe",
        }
    }
}

/// A subscription packet, borrowing from the datagram. Vars are read as uWSGI reads them: a later
/// occurrence of a name replaces an earlier one, and unknown names are ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription<'a> {
    /// Subscribe or unsubscribe.
    pub action: Action,
    /// The routing key, usually a host name, maybe with `:port`.
    pub key: &'a [u8],
    /// The node's uwsgi socket: `ip:port`, `:port` or a UNIX socket path.
    pub address: &'a [u8],
    /// The modifier1 requests to the node must carry; `None` when not announced.
    pub modifier1: Option<u8>,
    /// The modifier2 requests to the node must carry; `None` when not announced.
    pub modifier2: Option<u8>,
    /// Processes x threads of the node.
    pub cores: u32,
    /// The node's listen-queue backlog.
    pub load: u32,
    /// Relative weight; 0 means 1.
    pub weight: u32,
    /// A UNIX datagram socket of the node to acknowledge a new subscription to.
    pub notify: Option<&'a [u8]>,
    /// The sender's clock (unix seconds), present in signed packets.
    pub unix: Option<u64>,
    /// The signature and what it covers, when the packet is signed.
    pub signed: Option<Signed<'a>>,
}

/// The signed part of a packet and its signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signed<'a> {
    /// Every byte after the header up to the `sign` var: what uWSGI signs.
    pub message: &'a [u8],
    /// The raw RSA signature.
    pub signature: &'a [u8],
}

/// Why a datagram is not a usable subscription packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadPacket {
    /// Longer than [`MAX_DATAGRAM`].
    #[error("datagram of {0} bytes or more is over the {MAX_DATAGRAM}-byte limit")]
    Oversize(usize),
    /// Not a valid uwsgi packet.
    #[error("malformed packet: {0}")]
    Malformed(#[from] PacketError),
    /// A valid uwsgi packet of another kind.
    #[error("modifier1 {0} is not a subscription (224)")]
    NotSubscription(u8),
    /// Bytes after the vars block.
    #[error("{0} byte(s) after the vars block")]
    TrailingData(usize),
    /// A var every subscription carries is missing or empty.
    #[error("no {0} var")]
    Missing(&'static str),
    /// A numeric var is not a number (or out of range).
    #[error("{0} is not a number in range")]
    BadNumber(&'static str),
    /// Something follows the signature, so it would not cover everything.
    #[error("the sign var is not the last one")]
    SignNotLast,
}

impl BadPacket {
    /// A short stable name for metrics labels and log fields.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Oversize(_) => "oversize",
            Self::Malformed(_) => "malformed",
            Self::NotSubscription(_) => "not_subscription",
            Self::TrailingData(_) => "trailing_data",
            Self::Missing(_) => "missing_var",
            Self::BadNumber(_) => "bad_number",
            Self::SignNotLast => "sign_not_last",
        }
    }
}

impl<'a> Subscription<'a> {
    /// Parses one datagram.
    pub fn parse(datagram: &'a [u8]) -> Result<Self, BadPacket> {
        if datagram.len() > MAX_DATAGRAM {
            return Err(BadPacket::Oversize(datagram.len()));
        }
        let (header, vars, rest) = parse_packet(datagram, MAX_VARS_SIZE)?;
        if header.modifier1 != MODIFIER1_SUBSCRIPTION {
            return Err(BadPacket::NotSubscription(header.modifier1));
        }
        if !rest.is_empty() {
            return Err(BadPacket::TrailingData(rest.len()));
        }
        let mut s = Self {
            action: match header.modifier2 {
                0 => Action::Subscribe,
                _ => Action::Unsubscribe,
            },
            key: b"",
            address: b"",
            modifier1: None,
            modifier2: None,
            cores: 0,
            load: 0,
            weight: 0,
            notify: None,
            unix: None,
            signed: None,
        };
        let block = vars.as_bytes();
        let mut offset = 0;
        for (name, value) in vars.iter() {
            if s.signed.is_some() {
                return Err(BadPacket::SignNotLast);
            }
            if name == b"sign" {
                s.signed = Some(Signed {
                    message: &block[..offset],
                    signature: value,
                });
            } else {
                s.set(name, value)?;
            }
            offset += 4 + name.len() + value.len();
        }
        if s.key.is_empty() {
            return Err(BadPacket::Missing("key"));
        }
        if s.address.is_empty() {
            return Err(BadPacket::Missing("address"));
        }
        Ok(s)
    }

    fn set(&mut self, name: &[u8], value: &'a [u8]) -> Result<(), BadPacket> {
        match name {
            b"key" => self.key = value,
            b"address" => self.address = value,
            b"modifier1" => self.modifier1 = Some(number(value, "modifier1")?),
            b"modifier2" => self.modifier2 = Some(number(value, "modifier2")?),
            b"cores" => self.cores = saturating(number(value, "cores")?),
            b"load" => self.load = saturating(number(value, "load")?),
            b"weight" => self.weight = saturating(number(value, "weight")?),
            b"notify" => self.notify = Some(value).filter(|v| !v.is_empty()),
            b"unix" => self.unix = Some(number(value, "unix")?),
            _ => {}
        }
        Ok(())
    }

    /// The modifiers requests to this node must carry, when it announced any.
    pub fn modifiers(&self) -> Option<(u8, u8)> {
        match (self.modifier1, self.modifier2) {
            (None, None) => None,
            (m1, m2) => Some((m1.unwrap_or(0), m2.unwrap_or(0))),
        }
    }
}

/// A decimal number as uWSGI writes it.
fn number<T: std::str::FromStr>(value: &[u8], field: &'static str) -> Result<T, BadPacket> {
    std::str::from_utf8(value)
        .ok()
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse().ok())
        .ok_or(BadPacket::BadNumber(field))
}

fn saturating(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::encode_packet;

    // Captured from uWSGI 2.0.21 (`--socket 127.0.0.1:3201 --subscribe-to
    // 127.0.0.1:PORT:example.com`), and, signed, from `--processes 2 --threads 2 --weight 3
    // --subscribe-to 127.0.0.1:PORT:signed.example.com,5,SHA1:subscription-test-key.pem
    // --subscription-notify-socket /run/uwsgi/notify.sock`.
    const SUBSCRIBE: &[u8] = include_bytes!("../../tests/fixtures/uwsgi-subscribe.bin");
    const UNSUBSCRIBE: &[u8] = include_bytes!("../../tests/fixtures/uwsgi-unsubscribe.bin");
    const SIGNED: &[u8] = include_bytes!("../../tests/fixtures/uwsgi-subscribe-signed.bin");
    const SIGNED_UNSUBSCRIBE: &[u8] =
        include_bytes!("../../tests/fixtures/uwsgi-unsubscribe-signed.bin");

    #[test]
    fn parses_uwsgi_subscribe_and_unsubscribe() {
        let s = Subscription::parse(SUBSCRIBE).unwrap();
        assert_eq!(s.action, Action::Subscribe);
        assert_eq!(s.key, b"example.com");
        assert_eq!(s.address, b"127.0.0.1:3201");
        assert_eq!(s.modifiers(), Some((0, 0)));
        assert_eq!((s.cores, s.load, s.weight), (2, 0, 0));
        assert_eq!((s.notify, s.unix, s.signed), (None, None, None));
        let u = Subscription::parse(UNSUBSCRIBE).unwrap();
        assert_eq!(u.action, Action::Unsubscribe);
        assert_eq!(u.key, s.key);
        assert_eq!(u.address, s.address);
    }

    #[test]
    fn parses_a_signed_uwsgi_packet() {
        let s = Subscription::parse(SIGNED).unwrap();
        assert_eq!(s.key, b"signed.example.com");
        assert_eq!(s.modifiers(), Some((5, 0)));
        assert_eq!((s.cores, s.weight), (4, 3));
        assert_eq!(s.notify, Some(&b"/run/uwsgi/notify.sock"[..]));
        assert!(s.unix.is_some());
        let signed = s.signed.unwrap();
        assert_eq!(signed.signature.len(), 256, "RSA-2048");
        // The signed part is the vars block up to the sign var: 4-byte header, then it.
        assert_eq!(signed.message, &SIGNED[4..4 + signed.message.len()]);
        assert!(signed
            .message
            .ends_with(s.unix.unwrap().to_string().as_bytes()));
        let u = Subscription::parse(SIGNED_UNSUBSCRIBE).unwrap();
        assert_eq!(u.action, Action::Unsubscribe);
        assert!(
            u.unix > s.unix,
            "uWSGI dates an unsubscribe one second ahead"
        );
    }

    fn packet(m1: u8, m2: u8, vars: &[(&str, &str)]) -> Vec<u8> {
        let vars = vars.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes()));
        encode_packet(m1, m2, vars).unwrap().to_vec()
    }

    #[test]
    fn refuses_what_is_not_a_subscription() {
        let kind = |b: &[u8]| Subscription::parse(b).unwrap_err().kind();
        assert_eq!(kind(&[224, 9, 0]), "malformed");
        assert_eq!(kind(&vec![0; MAX_DATAGRAM + 1]), "oversize");
        assert_eq!(
            kind(&packet(0, 0, &[("key", "a"), ("address", "b")])),
            "not_subscription"
        );
        assert_eq!(
            kind(&packet(224, 0, &[("address", "127.0.0.1:1")])),
            "missing_var"
        );
        assert_eq!(kind(&packet(224, 0, &[("key", "a")])), "missing_var");
        let bad_weight = packet(224, 0, &[("key", "a"), ("address", "b"), ("weight", "-1")]);
        assert_eq!(kind(&bad_weight), "bad_number");
        let big_modifier = [("key", "a"), ("address", "b"), ("modifier1", "256")];
        assert_eq!(kind(&packet(224, 0, &big_modifier)), "bad_number");
        let after_sign = [
            ("key", "a"),
            ("address", "b"),
            ("sign", "x"),
            ("weight", "9"),
        ];
        assert_eq!(kind(&packet(224, 0, &after_sign)), "sign_not_last");
        let mut trailing = packet(224, 0, &[("key", "a"), ("address", "b")]);
        trailing.push(0);
        assert_eq!(kind(&trailing), "trailing_data");
    }

    #[test]
    fn later_vars_win_and_unknown_ones_are_ignored() {
        let p = packet(
            224,
            7,
            &[
                ("key", "a"),
                ("address", "127.0.0.1:1"),
                ("backup", "1"),
                ("address", "127.0.0.1:2"),
                ("cores", "99999999999"),
            ],
        );
        let s = Subscription::parse(&p).unwrap();
        assert_eq!(s.action, Action::Unsubscribe, "any modifier2 but 0");
        assert_eq!(s.address, b"127.0.0.1:2");
        assert_eq!(s.cores, u32::MAX);
        assert_eq!(s.modifiers(), None);
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics_and_signs_only_a_prefix(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
        ) {
            if let Ok(s) = Subscription::parse(&bytes) {
                if let Some(signed) = s.signed {
                    proptest::prop_assert!(bytes[4..].starts_with(signed.message));
                }
            }
        }

        #[test]
        fn what_uwsgi_would_send_parses_back(
            key in "[a-z0-9-]{1,30}(\\.[a-z]{2,8}){0,3}",
            port in 1u16..,
            m1 in 0u8..,
            cores in 0u32..,
            weight in 0u32..,
            unsubscribe: bool,
        ) {
            let address = format!("127.0.0.1:{port}");
            let (m1s, cores_s, weight_s) = (m1.to_string(), cores.to_string(), weight.to_string());
            let p = packet(224, u8::from(unsubscribe), &[
                ("key", &key), ("address", &address), ("modifier1", &m1s), ("modifier2", "0"),
                ("cores", &cores_s), ("load", "0"), ("weight", &weight_s),
            ]);
            let s = Subscription::parse(&p).unwrap();
            proptest::prop_assert_eq!(s.key, key.as_bytes());
            proptest::prop_assert_eq!(s.address, address.as_bytes());
            proptest::prop_assert_eq!(s.modifiers(), Some((m1, 0)));
            proptest::prop_assert_eq!((s.cores, s.weight), (cores, weight));
            let expected = if unsubscribe { Action::Unsubscribe } else { Action::Subscribe };
            proptest::prop_assert_eq!(s.action, expected);
        }
    }
}
