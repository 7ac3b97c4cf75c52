use proptest::prelude::*;

use super::*;

const NGINX_GET: &[u8] = include_bytes!("../../tests/fixtures/nginx-get.bin");
const NGINX_POST: &[u8] = include_bytes!("../../tests/fixtures/nginx-post.bin");
const SUBSCRIBE: &[u8] = include_bytes!("../../tests/fixtures/uwsgi-subscribe.bin");
const UNSUBSCRIBE: &[u8] = include_bytes!("../../tests/fixtures/uwsgi-unsubscribe.bin");

#[test]
fn parses_nginx_get_capture() {
    let (header, vars, body) = parse_packet(NGINX_GET, MAX_VARS_SIZE).unwrap();
    assert_eq!((header.modifier1, header.modifier2), (0, 0));
    assert_eq!(header.packet_len(), NGINX_GET.len());
    assert!(body.is_empty());
    assert_eq!(vars.get(b"REQUEST_METHOD"), Some(&b"GET"[..]));
    assert_eq!(vars.get(b"HTTP_HOST"), Some(&b"peers.local"[..]));
    assert_eq!(vars.get(b"PATH_INFO"), Some(&b"/hello/world"[..]));
    assert_eq!(vars.get(b"CONTENT_LENGTH"), Some(&b""[..]));
    assert_eq!(vars.get(b"NOT_THERE"), None);
    assert_eq!(vars.iter().count(), 16);
}

#[test]
fn parses_nginx_post_capture_and_leaves_the_body() {
    let (_, vars, body) = parse_packet(NGINX_POST, MAX_VARS_SIZE).unwrap();
    assert_eq!(vars.get(b"CONTENT_LENGTH"), Some(&b"10240"[..]));
    assert_eq!(body.len(), 10_240);
}

#[test]
fn parses_uwsgi_subscription_captures() {
    let (header, vars, rest) = parse_packet(SUBSCRIBE, MAX_VARS_SIZE).unwrap();
    assert_eq!(
        (header.modifier1, header.modifier2),
        (MODIFIER1_SUBSCRIPTION, 0)
    );
    assert!(rest.is_empty());
    assert_eq!(vars.get(b"key"), Some(&b"example.com"[..]));
    assert_eq!(vars.get(b"address"), Some(&b"127.0.0.1:3201"[..]));
    let (header, _, _) = parse_packet(UNSUBSCRIBE, MAX_VARS_SIZE).unwrap();
    assert_eq!(header.modifier2, 1);
}

#[test]
fn reencoding_a_capture_gives_the_same_bytes() {
    let (header, vars, _) = parse_packet(NGINX_GET, MAX_VARS_SIZE).unwrap();
    let again = encode_packet(header.modifier1, header.modifier2, vars.iter()).unwrap();
    assert_eq!(&again[..], NGINX_GET);
}

#[test]
fn names_each_fault() {
    assert_eq!(
        Header::parse(&[0, 1], MAX_VARS_SIZE),
        Err(PacketError::TruncatedHeader { got: 2 })
    );
    assert_eq!(
        Header::parse(&[0, 0x00, 0x20, 0], 4096),
        Err(PacketError::VarsTooLarge {
            datasize: 8192,
            max: 4096
        })
    );
    // datasize 10 but only 3 bytes of vars.
    assert_eq!(
        parse_packet(&[0, 10, 0, 0, 1, 0, b'a'], MAX_VARS_SIZE).unwrap_err(),
        PacketError::TruncatedVars {
            expected: 10,
            got: 3
        }
    );
    // key length 9 in a 5-byte block.
    assert_eq!(
        Vars::parse(&[9, 0, b'a', b'b', b'c']).unwrap_err(),
        PacketError::VarOverrun {
            offset: 0,
            what: "key",
            len: 9,
            remaining: 3
        }
    );
    // value length runs past the end.
    assert_eq!(
        Vars::parse(&[1, 0, b'k', 5, 0, b'v']).unwrap_err().kind(),
        "var_overrun"
    );
    // a key with no room for its value's length.
    assert_eq!(
        Vars::parse(&[1, 0, b'k', 0]).unwrap_err(),
        PacketError::TrailingBytes {
            offset: 3,
            count: 1
        }
    );
}

#[test]
fn encode_refuses_oversized_fields() {
    let big = vec![b'x'; 70_000];
    let err = encode_packet(0, 0, [(&b"K"[..], &big[..])]).unwrap_err();
    assert_eq!(
        err,
        EncodeError::FieldTooLong {
            what: "value",
            len: 70_000
        }
    );
    let half = vec![b'x'; 40_000];
    let err = encode_packet(0, 0, [(&b"A"[..], &half[..]), (&b"B"[..], &half[..])]).unwrap_err();
    assert!(matches!(err, EncodeError::BlockTooLong { .. }));
}

#[test]
fn replies_are_complete_http_responses() {
    let r = reply(
        ReplyStatus::ServiceUnavailable,
        "no pool for host example.org",
        None,
    );
    let text = std::str::from_utf8(&r).unwrap();
    assert!(text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.contains(&format!("Content-Length: {}", body.len())));
    assert!(!head.contains("X-Request-Id"));
    assert_eq!(body, "no pool for host example.org\n");
}

#[test]
fn replies_carry_the_request_id_in_body_and_header() {
    let id = RequestId::given(b"req-42").unwrap();
    let r = reply(ReplyStatus::BadGateway, "node sent no response", Some(&id));
    let text = std::str::from_utf8(&r).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.contains(&format!("Content-Length: {}", body.len())));
    assert!(head.contains("\r\nX-Request-Id: req-42"), "{head}");
    assert_eq!(body, "node sent no response\nrequest id: req-42\n");
}

#[test]
fn appending_a_var_keeps_every_other_byte() {
    for capture in [NGINX_GET, NGINX_POST] {
        let (header, vars, body) = parse_packet(capture, MAX_VARS_SIZE).unwrap();
        let grown = append_var(header, capture, b"HTTP_X_REQUEST_ID", b"abc").unwrap();
        let added = 2 + 17 + 2 + 3;
        assert_eq!(grown.len(), capture.len() + added);
        let (h, v, b) = parse_packet(&grown, MAX_VARS_SIZE).unwrap();
        assert_eq!(
            (h.modifier1, h.modifier2),
            (header.modifier1, header.modifier2)
        );
        assert_eq!(
            usize::from(h.datasize),
            usize::from(header.datasize) + added
        );
        assert_eq!(v.get(b"HTTP_X_REQUEST_ID"), Some(&b"abc"[..]));
        let end = header.packet_len();
        assert_eq!(grown[4..end], capture[4..end], "the vars as they were");
        assert_eq!(b, body, "the body bytes as they were");
        assert_eq!(v.iter().count(), vars.iter().count() + 1);
    }
}

#[test]
fn appending_a_var_respects_the_65535_byte_block() {
    let fill = vec![b'x'; MAX_VARS_SIZE - 4 - 1];
    let packet = encode_packet(0, 0, [(&b"F"[..], &fill[..])]).unwrap();
    let (header, _, _) = parse_packet(&packet, MAX_VARS_SIZE).unwrap();
    assert_eq!(usize::from(header.datasize), MAX_VARS_SIZE);
    let err = append_var(header, &packet, b"K", b"").unwrap_err();
    assert!(matches!(err, EncodeError::BlockTooLong { len } if len == MAX_VARS_SIZE + 5));
}

fn var_list() -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
    prop::collection::vec(
        (
            prop::collection::vec(any::<u8>(), 0..40),
            prop::collection::vec(any::<u8>(), 0..300),
        ),
        0..30,
    )
}

proptest! {
    #[test]
    fn encode_decode_round_trip(vars in var_list(), m1 in any::<u8>(), m2 in any::<u8>()) {
        let packet = encode_packet(m1, m2, vars.iter().map(|(k, v)| (&k[..], &v[..]))).unwrap();
        let (header, decoded, rest) = parse_packet(&packet, MAX_VARS_SIZE).unwrap();
        prop_assert_eq!((header.modifier1, header.modifier2), (m1, m2));
        prop_assert!(rest.is_empty());
        let decoded: Vec<(Vec<u8>, Vec<u8>)> =
            decoded.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
        prop_assert_eq!(decoded, vars);
    }

    #[test]
    fn decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2048), max in 0usize..70_000) {
        if let Ok((header, vars, _)) = parse_packet(&bytes, max) {
            prop_assert!(usize::from(header.datasize) <= max);
            // A valid block iterates to its end, consuming every byte.
            let used: usize = vars.iter().map(|(k, v)| 4 + k.len() + v.len()).sum();
            prop_assert_eq!(used, vars.as_bytes().len());
        }
    }

    #[test]
    fn corrupting_a_length_is_detected_or_harmless(vars in var_list(), pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut packet = encode_packet(0, 0, vars.iter().map(|(k, v)| (&k[..], &v[..]))).unwrap().to_vec();
        if packet.len() > HEADER_LEN {
            let i = HEADER_LEN + pos.index(packet.len() - HEADER_LEN);
            packet[i] = byte;
            let _ = parse_packet(&packet, MAX_VARS_SIZE);
        }
    }
}

#[test]
fn a_repeated_var_reads_as_its_last_value_as_uwsgi_reads_it() {
    let packet = encode_packet(
        0,
        0,
        [
            (&b"HTTP_HOST"[..], &b"first.test"[..]),
            (b"PATH_INFO", b"/"),
            (b"HTTP_HOST", b"last.test"),
        ],
    )
    .unwrap();
    let vars = Vars::parse(&packet[HEADER_LEN..]).unwrap();
    assert_eq!(vars.get(b"HTTP_HOST"), Some(&b"last.test"[..]));
    assert_eq!(vars.get(b"PATH_INFO"), Some(&b"/"[..]));
    assert_eq!(vars.get(b"NONE"), None);
}
