//! Request and response bodies with known content, so corruption or truncation shows.

/// The stream view's pattern repeats every 251 bytes (a prime, so a lost chunk shifts it).
const PERIOD: usize = 251;

/// `len` bytes of the pattern the stream view sends: byte `i` is `i % 251`.
pub(crate) fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % PERIOD) as u8).collect()
}

/// Checks a body piece by piece against the pattern without keeping it.
pub(crate) struct PatternCheck {
    /// Bytes seen so far.
    pub(crate) seen: u64,
    /// Offset of the first byte that differed from the pattern.
    pub(crate) first_mismatch: Option<u64>,
    reference: Vec<u8>,
}

impl PatternCheck {
    /// A check that has seen nothing yet.
    pub(crate) fn new() -> Self {
        // Long enough to compare any piece up to 64 KiB from any phase with one memcmp.
        let reference = pattern(64 * 1024 + PERIOD);
        Self {
            seen: 0,
            first_mismatch: None,
            reference,
        }
    }

    /// Feeds the next piece of the body.
    pub(crate) fn feed(&mut self, mut piece: &[u8]) {
        while !piece.is_empty() {
            let n = piece.len().min(64 * 1024);
            let phase = (self.seen % PERIOD as u64) as usize;
            let expected = &self.reference[phase..phase + n];
            if self.first_mismatch.is_none() && piece[..n] != *expected {
                let at = piece
                    .iter()
                    .zip(expected)
                    .position(|(a, b)| a != b)
                    .unwrap_or(0);
                self.first_mismatch = Some(self.seen + at as u64);
            }
            self.seen += n as u64;
            piece = &piece[n..];
        }
    }
}

/// CRC-32 (IEEE, as Python's `zlib.crc32`), which the echo view reports for the body.
pub(crate) fn crc32(data: &[u8]) -> u32 {
    let table = crc32_table();
    let crc = data.iter().fold(!0u32, |crc, &b| {
        table[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8)
    });
    !crc
}

fn crc32_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    for (i, entry) in table.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 == 1 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
        *entry = c;
    }
    table
}
