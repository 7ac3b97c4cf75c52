//! The subscription datagram parser (`Subscription::parse`): the input is one datagram as a node
//! (or anyone who can reach the subscription socket) sends it. It must never panic; a refusal
//! must name its reason; and what it accepts must agree with the uwsgi codec: a modifier1 224
//! packet with nothing after its vars, key and address taken from the last var of each name,
//! and a signature, when there is one, that is the last var and covers every byte before it.
//! The key then goes through `key_host`, which names the pool a subscription joins.

#![no_main]

use libfuzzer_sys::fuzz_target;
use uwsgi_router::protocol::{parse_packet, HEADER_LEN, MAX_VARS_SIZE, MODIFIER1_SUBSCRIPTION};
use uwsgi_router::addr::key_host;
use uwsgi_router::subscription::{Action, BadPacket, Subscription, MAX_DATAGRAM};

fuzz_target!(|data: &[u8]| {
    let parsed = Subscription::parse(data);
    let codec = parse_packet(data, MAX_VARS_SIZE);
    let s = match parsed {
        Ok(s) => s,
        Err(e) => {
            let _ = (e.kind(), e.to_string());
            match e {
                BadPacket::Oversize(len) => assert!(len == data.len() && len > MAX_DATAGRAM),
                BadPacket::Malformed(inner) => assert_eq!(codec.err(), Some(inner)),
                BadPacket::NotSubscription(m1) => assert!(m1 == data[0] && m1 != 224),
                BadPacket::TrailingData(n) => assert!(codec.is_ok_and(|(_, _, b)| b.len() == n)),
                BadPacket::Missing(_) | BadPacket::BadNumber(_) | BadPacket::SignNotLast => {
                    assert!(codec.is_ok())
                }
            }
            return;
        }
    };
    assert!(data.len() <= MAX_DATAGRAM);
    let (header, vars, body) = codec.expect("an accepted subscription is a uwsgi packet");
    assert_eq!(header.modifier1, MODIFIER1_SUBSCRIPTION);
    assert!(body.is_empty());
    let expected = if header.modifier2 == 0 {
        Action::Subscribe
    } else {
        Action::Unsubscribe
    };
    assert_eq!(s.action, expected);
    assert!(!s.key.is_empty() && !s.address.is_empty());
    for field in [Some(s.key), Some(s.address), s.notify]
        .into_iter()
        .flatten()
    {
        assert!(inside(field, data), "fields borrow from the datagram");
    }

    // The last occurrence of a name wins; the sign var, if any, ends the packet.
    let block = &data[HEADER_LEN..];
    let unsigned: Vec<_> = vars.iter().take_while(|(k, _)| *k != b"sign").collect();
    let last = |name: &[u8]| {
        unsigned
            .iter()
            .rev()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
    };
    assert_eq!(last(b"key"), Some(s.key));
    assert_eq!(last(b"address"), Some(s.address));
    assert_eq!(s.unix.is_some(), last(b"unix").is_some());
    match s.signed {
        Some(signed) => {
            let mut sign_var = vec![4, 0];
            sign_var.extend_from_slice(b"sign");
            let len = u16::try_from(signed.signature.len()).unwrap();
            sign_var.extend_from_slice(&len.to_le_bytes());
            sign_var.extend_from_slice(signed.signature);
            assert_eq!(
                [signed.message, &sign_var[..]].concat(),
                block,
                "the signed part is everything before the sign var, which is last"
            );
        }
        None => assert_eq!(unsigned.len(), vars.iter().count(), "no sign var"),
    }
    match s.modifiers() {
        None => assert!(s.modifier1.is_none() && s.modifier2.is_none()),
        Some((m1, m2)) => {
            assert_eq!(m1, s.modifier1.unwrap_or(0));
            assert_eq!(m2, s.modifier2.unwrap_or(0));
        }
    }
    let _ = s.action.as_str();

    // The key as the route host a pool is named after, lowercased. (Not a fixed point: one
    // trailing dot is dropped, so key `a..` names host `a.`, which as a key names `a`.)
    if let Some(host) = key_host(s.key) {
        assert_eq!(host, host.to_ascii_lowercase());
    }
});

fn inside(field: &[u8], data: &[u8]) -> bool {
    let range = data.as_ptr_range();
    let start = field.as_ptr();
    range.start <= start && start as usize + field.len() <= range.end as usize
}
