//! What can be wrong with a packet, named so that logs and metrics say which fault it was.

/// A malformed uwsgi packet. Every variant names the fault and where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Fewer than 4 bytes arrived before the peer stopped sending.
    #[error("truncated header: got {got} of 4 bytes")]
    TruncatedHeader {
        /// Bytes received.
        got: usize,
    },
    /// `datasize` announces a vars block larger than the configured maximum.
    #[error("vars block of {datasize} bytes exceeds the maximum of {max}")]
    VarsTooLarge {
        /// The announced size.
        datasize: usize,
        /// The configured limit (`limits.max_vars_size`).
        max: usize,
    },
    /// The peer stopped before sending all `datasize` bytes of vars.
    #[error("truncated vars: datasize says {expected} bytes, got {got}")]
    TruncatedVars {
        /// The announced size.
        expected: usize,
        /// Bytes received.
        got: usize,
    },
    /// A key or value length runs past the end of the vars block.
    #[error("var at offset {offset}: {what} length {len} runs past the vars block ({remaining} bytes left)")]
    VarOverrun {
        /// Offset of the length field inside the vars block.
        offset: usize,
        /// `"key"` or `"value"`.
        what: &'static str,
        /// The length the packet claims.
        len: usize,
        /// What was really left.
        remaining: usize,
    },
    /// Bytes left over at the end of the vars block that cannot hold a var.
    #[error("{count} stray byte(s) at the end of the vars block (offset {offset})")]
    TrailingBytes {
        /// Offset of the first stray byte.
        offset: usize,
        /// How many there are.
        count: usize,
    },
}

impl PacketError {
    /// A short, stable name for metrics labels and log fields.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::TruncatedHeader { .. } => "truncated_header",
            Self::VarsTooLarge { .. } => "vars_too_large",
            Self::TruncatedVars { .. } => "truncated_vars",
            Self::VarOverrun { .. } => "var_overrun",
            Self::TrailingBytes { .. } => "trailing_bytes",
        }
    }
}

/// A var that cannot be encoded: uwsgi lengths are 16-bit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A key or a value is longer than 65535 bytes.
    #[error("{what} of {len} bytes does not fit a uwsgi length field (max 65535)")]
    FieldTooLong {
        /// `"key"` or `"value"`.
        what: &'static str,
        /// Its length.
        len: usize,
    },
    /// All vars together are longer than 65535 bytes.
    #[error("vars block of {len} bytes does not fit the 16-bit datasize (max 65535)")]
    BlockTooLong {
        /// The block's length.
        len: usize,
    },
}
