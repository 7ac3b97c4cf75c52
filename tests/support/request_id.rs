//! Taking apart what a node received: the packet as the client sent it, and the request id the
//! router appended to its vars.

use uwsgi_router::protocol::{parse_packet, MAX_VARS_SIZE};

/// `received` (a packet, and any body after it) without its last var, when that var is the
/// `HTTP_X_REQUEST_ID` the router appends, with the header's datasize put back; and that id.
/// Panics if the last var is something else.
pub fn split_request_id(received: &[u8]) -> (Vec<u8>, String) {
    let (header, vars, body) = parse_packet(received, MAX_VARS_SIZE).expect("a valid packet");
    let (key, value) = vars.iter().last().expect("at least one var");
    assert_eq!(key, b"HTTP_X_REQUEST_ID", "the last var is the router's id");
    let var_len = 4 + key.len() + value.len();
    let block = vars.as_bytes();
    let datasize = (block.len() - var_len) as u16;
    let mut original = vec![header.modifier1];
    original.extend_from_slice(&datasize.to_le_bytes());
    original.push(header.modifier2);
    original.extend_from_slice(&block[..block.len() - var_len]);
    original.extend_from_slice(body);
    (
        original,
        String::from_utf8(value.to_vec()).expect("an ASCII id"),
    )
}

/// The value of `key` in the vars a node received.
pub fn var_of(received: &[u8], key: &str) -> Option<String> {
    let (_, vars, _) = parse_packet(received, MAX_VARS_SIZE).expect("a valid packet");
    vars.get(key.as_bytes())
        .map(|v| String::from_utf8_lossy(v).into_owned())
}
