//! The uwsgi codec (`uwsgi_router::protocol`): header, vars block and whole packets, both ways.
//!
//! The input is read twice:
//! - as a packet off the wire: whatever parses must describe the input exactly (header bytes,
//!   vars block, body) and encode back to the same bytes; whatever does not must say why without
//!   panicking;
//! - as a recipe for vars to encode (modifier1, modifier2, then fields of a length byte and that
//!   many bytes; a length byte of 255 repeats its field 300 times, so fields and blocks past the
//!   16-bit limits come up): encoding must succeed exactly when every length fits, and what it
//!   writes must parse back to the same vars.

#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use uwsgi_router::protocol::{
    encode_packet, encode_vars, parse_packet, EncodeError, Header, PacketError, Vars, HEADER_LEN,
    MAX_VARS_SIZE,
};

fuzz_target!(|data: &[u8]| {
    as_packet(data);
    as_vars_block(data);
    as_recipe(data);
});

fn as_packet(data: &[u8]) {
    for max in [MAX_VARS_SIZE, 4096, 64, 0] {
        let header = Header::parse(data, max);
        match &header {
            Ok(h) => {
                assert_eq!(h.encode(), data[..HEADER_LEN], "header round trip");
                assert!(usize::from(h.datasize) <= max);
            }
            Err(PacketError::TruncatedHeader { got }) => {
                assert!(data.len() < HEADER_LEN && *got == data.len())
            }
            Err(PacketError::VarsTooLarge { datasize, max: m }) => {
                assert!(*datasize > max && *m == max)
            }
            Err(other) => panic!("Header::parse gave {other:?}"),
        }
        match parse_packet(data, max) {
            Ok((h, vars, body)) => {
                assert_eq!(Ok(h), header);
                let end = h.packet_len();
                assert_eq!(end + body.len(), data.len());
                assert_eq!(vars.as_bytes(), &data[HEADER_LEN..end]);
                assert_eq!(body, &data[end..]);
                check_vars(vars);
                let encoded = encode_packet(h.modifier1, h.modifier2, vars.iter())
                    .expect("a parsed packet encodes");
                assert_eq!(&encoded[..], &data[..end], "packet round trip");
            }
            Err(e) => {
                let _ = (e.kind(), e.to_string());
                if let Ok(h) = header {
                    // The header was fine, so the vars block is what failed.
                    let block = data.get(HEADER_LEN..h.packet_len());
                    match block {
                        None => assert!(matches!(e, PacketError::TruncatedVars { .. })),
                        Some(block) => assert_eq!(Vars::parse(block).err(), Some(e)),
                    }
                }
            }
        }
    }
}

fn as_vars_block(data: &[u8]) {
    match Vars::parse(data) {
        Ok(vars) => {
            check_vars(vars);
            let mut buf = bytes::BytesMut::new();
            encode_vars(vars.iter(), &mut buf).expect("parsed vars encode");
            assert_eq!(&buf[..], data, "vars round trip");
        }
        Err(e) => {
            let _ = (e.kind(), e.to_string());
            match e {
                PacketError::VarOverrun { offset, .. } => assert!(offset + 2 <= data.len()),
                // A key without a value (count 0), or a length field cut short.
                PacketError::TrailingBytes { offset, count } => {
                    assert!(count < 2 && offset + count == data.len())
                }
                other => panic!("Vars::parse gave {other:?}"),
            }
        }
    }
}

/// A validated block iterates over all of itself, and `get` finds each name's last value (as
/// uWSGI, where a later var replaces an earlier one). `get` scans the block, so 16 names at most
/// (the first in byte order) are looked up: a block of tiny vars would cost its size squared.
fn check_vars(vars: Vars<'_>) {
    let mut len = 0;
    let mut count = 0;
    let mut last = BTreeMap::new();
    for (key, value) in vars.iter() {
        len += 4 + key.len() + value.len();
        count += 1;
        last.insert(key, value);
    }
    assert_eq!(len, vars.as_bytes().len(), "iteration covers the block");
    assert_eq!(vars.is_empty(), count == 0);
    for (key, value) in last.into_iter().take(16) {
        assert_eq!(vars.get(key), Some(value));
    }
}

fn as_recipe(data: &[u8]) {
    let [m1, m2, rest @ ..] = data else {
        return;
    };
    let mut fields: Vec<Vec<u8>> = Vec::new();
    let mut rest = rest;
    while let [len, tail @ ..] = rest {
        let take = usize::from(*len).min(tail.len());
        let (field, tail) = tail.split_at(take);
        fields.push(if *len == 255 {
            field.repeat(300)
        } else {
            field.to_vec()
        });
        rest = tail;
    }
    if fields.len() % 2 == 1 {
        fields.push(Vec::new());
    }
    let pairs: Vec<(&[u8], &[u8])> = fields
        .chunks(2)
        .map(|kv| (&kv[0][..], &kv[1][..]))
        .collect();
    let too_long = fields.iter().find(|f| f.len() > usize::from(u16::MAX));
    let block_len: usize = fields.iter().map(|f| 2 + f.len()).sum();
    match encode_packet(*m1, *m2, pairs.iter().copied()) {
        Ok(packet) => {
            assert!(too_long.is_none() && block_len <= MAX_VARS_SIZE);
            let (h, vars, body) = parse_packet(&packet, MAX_VARS_SIZE).expect("encoded parses");
            assert_eq!((h.modifier1, h.modifier2), (*m1, *m2));
            assert_eq!(usize::from(h.datasize), block_len);
            assert!(body.is_empty());
            assert!(vars.iter().eq(pairs.iter().copied()), "vars round trip");
        }
        Err(EncodeError::FieldTooLong { len, .. }) => {
            // The first field that does not fit is the one named.
            assert_eq!(Some(len), too_long.map(Vec::len));
        }
        Err(EncodeError::BlockTooLong { len }) => {
            assert!(too_long.is_none() && block_len > MAX_VARS_SIZE && len == block_len);
        }
    }
}
