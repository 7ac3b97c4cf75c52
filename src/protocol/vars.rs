//! The vars block: repeated `u16 LE key length, key, u16 LE value length, value`, read in place.

use bytes::{BufMut, BytesMut};

use super::{EncodeError, Header, PacketError, HEADER_LEN, MAX_VARS_SIZE};

/// A validated vars block, borrowed from the packet: iterating and looking up copy nothing.
#[derive(Debug, Clone, Copy)]
pub struct Vars<'a> {
    block: &'a [u8],
}

impl<'a> Vars<'a> {
    /// Validates the whole block: every length must stay inside it and nothing may be left over.
    pub fn parse(block: &'a [u8]) -> Result<Self, PacketError> {
        let mut offset = 0;
        while offset < block.len() {
            offset = field_end(block, offset, "key")?;
            offset = field_end(block, offset, "value")?;
        }
        Ok(Self { block })
    }

    /// The vars in wire order, as `(key, value)` byte slices.
    pub fn iter(&self) -> VarsIter<'a> {
        VarsIter { rest: self.block }
    }

    /// The value of the var named `key` (exact, case-sensitive); of several, the last, since
    /// uWSGI lets a later var replace an earlier one and the router must read what the app reads.
    pub fn get(&self, key: &[u8]) -> Option<&'a [u8]> {
        self.iter()
            .filter(|(k, _)| *k == key)
            .last()
            .map(|(_, v)| v)
    }

    /// The raw block.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.block
    }

    /// True when the block holds no var.
    pub fn is_empty(&self) -> bool {
        self.block.is_empty()
    }
}

/// Checks the length-prefixed field at `offset` and returns where it ends.
fn field_end(block: &[u8], offset: usize, what: &'static str) -> Result<usize, PacketError> {
    let remaining = block.len() - offset;
    let Some(&[lo, hi]) = block.get(offset..offset + 2) else {
        return Err(PacketError::TrailingBytes {
            offset,
            count: remaining,
        });
    };
    let len = usize::from(u16::from_le_bytes([lo, hi]));
    if len > remaining - 2 {
        return Err(PacketError::VarOverrun {
            offset,
            what,
            len,
            remaining: remaining - 2,
        });
    }
    Ok(offset + 2 + len)
}

/// Iterator over a validated vars block.
#[derive(Debug, Clone)]
pub struct VarsIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for VarsIter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let key = take_field(&mut self.rest)?;
        let value = take_field(&mut self.rest)?;
        Some((key, value))
    }
}

fn take_field<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (&[lo, hi], tail) = rest.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_le_bytes([lo, hi]));
    let (field, tail) = tail.split_at_checked(len)?;
    *rest = tail;
    Some(field)
}

/// Appends the encoded vars to `buf`.
pub fn encode_vars<'a, I>(vars: I, buf: &mut BytesMut) -> Result<(), EncodeError>
where
    I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
{
    for (key, value) in vars {
        put_field(buf, key, "key")?;
        put_field(buf, value, "value")?;
    }
    Ok(())
}

fn put_field(buf: &mut BytesMut, field: &[u8], what: &'static str) -> Result<(), EncodeError> {
    let len = u16::try_from(field.len()).map_err(|_| EncodeError::FieldTooLong {
        what,
        len: field.len(),
    })?;
    buf.put_u16_le(len);
    buf.put_slice(field);
    Ok(())
}

/// Encodes a whole packet: header with the given modifiers, then the vars.
pub fn encode_packet<'a, I>(modifier1: u8, modifier2: u8, vars: I) -> Result<BytesMut, EncodeError>
where
    I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
{
    let mut buf = BytesMut::with_capacity(512);
    buf.put_slice(&[0; HEADER_LEN]);
    encode_vars(vars, &mut buf)?;
    let len = buf.len() - HEADER_LEN;
    if len > MAX_VARS_SIZE {
        return Err(EncodeError::BlockTooLong { len });
    }
    let header = Header {
        modifier1,
        datasize: len as u16,
        modifier2,
    };
    buf[..HEADER_LEN].copy_from_slice(&header.encode());
    Ok(buf)
}

/// `packet` (a header, its vars block, and whatever followed it: early body bytes) with one more
/// var at the end of the block and the header's datasize grown to match; every other byte as it
/// was. `header` is `packet`'s, already parsed. Refused when the block would pass 65535 bytes.
pub fn append_var(
    header: Header,
    packet: &[u8],
    key: &[u8],
    value: &[u8],
) -> Result<BytesMut, EncodeError> {
    let end = header.packet_len();
    let added = 4 + key.len() + value.len();
    let len = usize::from(header.datasize) + added;
    if len > MAX_VARS_SIZE {
        return Err(EncodeError::BlockTooLong { len });
    }
    let grown = Header {
        datasize: len as u16,
        ..header
    };
    let mut buf = BytesMut::with_capacity(packet.len() + added);
    buf.put_slice(&grown.encode());
    buf.put_slice(&packet[HEADER_LEN..end]);
    put_field(&mut buf, key, "key")?;
    put_field(&mut buf, value, "value")?;
    buf.put_slice(&packet[end..]);
    Ok(buf)
}
