//! The 4-byte packet header: modifier1, datasize (u16 little-endian), modifier2.

use super::PacketError;

/// Length of the packet header.
pub const HEADER_LEN: usize = 4;

/// The largest vars block the format can carry (datasize is a u16).
pub const MAX_VARS_SIZE: usize = u16::MAX as usize;

/// A parsed packet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Packet type: 0 WSGI, 5 PSGI, 7 Rack, ..., 224 subscription.
    pub modifier1: u8,
    /// Length of the vars block that follows.
    pub datasize: u16,
    /// Sub-type; for subscriptions 0 subscribe, anything else unsubscribe.
    pub modifier2: u8,
}

impl Header {
    /// Parses the first 4 bytes of `buf`, refusing a vars block larger than `max_vars`.
    pub fn parse(buf: &[u8], max_vars: usize) -> Result<Self, PacketError> {
        let &[modifier1, lo, hi, modifier2, ..] = buf else {
            return Err(PacketError::TruncatedHeader { got: buf.len() });
        };
        let datasize = u16::from_le_bytes([lo, hi]);
        if usize::from(datasize) > max_vars {
            return Err(PacketError::VarsTooLarge {
                datasize: usize::from(datasize),
                max: max_vars,
            });
        }
        Ok(Self {
            modifier1,
            datasize,
            modifier2,
        })
    }

    /// The header's wire bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let [lo, hi] = self.datasize.to_le_bytes();
        [self.modifier1, lo, hi, self.modifier2]
    }

    /// Header plus vars: where the body (if any) starts.
    pub fn packet_len(&self) -> usize {
        HEADER_LEN + usize::from(self.datasize)
    }
}
