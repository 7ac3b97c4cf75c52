//! The uwsgi wire format: packet header, vars block, the status line of a response and the replies
//! the router writes itself. Pure: no I/O.

mod error;
mod header;
mod reply;
mod request_id;
mod status;
mod vars;

pub use error::{EncodeError, PacketError};
pub use header::{Header, HEADER_LEN, MAX_VARS_SIZE};
pub use reply::{reply, ReplyStatus};
pub use request_id::{RequestId, MAX_REQUEST_ID_LEN, REQUEST_ID_VAR};
pub use status::{response_status, StatusLine, STATUS_PREFIX};
pub use vars::{append_var, encode_packet, encode_vars, Vars, VarsIter};

/// `modifier1` of a subscription packet (uWSGI's FastRouter protocol).
pub const MODIFIER1_SUBSCRIPTION: u8 = 224;

/// Splits one whole packet (a datagram, or a captured request): header, then exactly `datasize`
/// bytes of vars, then whatever follows (a request body; nothing for a subscription).
pub fn parse_packet(
    bytes: &[u8],
    max_vars: usize,
) -> Result<(Header, Vars<'_>, &[u8]), PacketError> {
    let header = Header::parse(bytes, max_vars)?;
    let end = header.packet_len();
    let block = bytes
        .get(HEADER_LEN..end)
        .ok_or(PacketError::TruncatedVars {
            expected: usize::from(header.datasize),
            got: bytes.len() - HEADER_LEN,
        })?;
    let vars = Vars::parse(block)?;
    Ok((header, vars, &bytes[end..]))
}

#[cfg(test)]
mod tests;
