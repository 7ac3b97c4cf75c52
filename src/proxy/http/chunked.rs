//! Decoding a node's chunked response body as it arrives, in pieces of any size (hyper encodes
//! it again for the client).

use bytes::{Bytes, BytesMut};

/// Longest chunk-size line (size, extensions) or trailer line accepted.
const MAX_LINE: usize = 4096;

/// Where the decoder is in the body.
#[derive(Debug, Default)]
enum State {
    /// Reading a chunk-size line.
    #[default]
    Size,
    /// This many data bytes of the current chunk are left.
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// Trailer lines after the last chunk, until an empty one.
    Trailers,
    /// The body is complete.
    Done,
}

/// An incremental chunked-body decoder.
#[derive(Debug, Default)]
pub(crate) struct Dechunk {
    state: State,
    /// A line being read (size or trailer), or a partial CRLF.
    line: Vec<u8>,
}

impl Dechunk {
    /// True once the last chunk and its trailers are in.
    pub(crate) fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// The data bytes in `input`; bytes after the end of the body are ignored.
    pub(crate) fn feed(&mut self, mut input: &[u8]) -> Result<Bytes, String> {
        let mut out = BytesMut::new();
        while !input.is_empty() {
            match self.state {
                State::Size | State::Trailers => {
                    let Some(end) = self.take_line(&mut input)? else {
                        break;
                    };
                    let line = std::mem::take(&mut self.line);
                    let text = &line[..end];
                    if matches!(self.state, State::Trailers) {
                        if text.is_empty() {
                            self.state = State::Done;
                        }
                        continue;
                    }
                    let size_text = text.split(|&b| b == b';').next().unwrap_or(b"");
                    let size = std::str::from_utf8(size_text)
                        .ok()
                        .map(str::trim)
                        .filter(|s| !s.is_empty() && s.len() <= 16)
                        .and_then(|s| u64::from_str_radix(s, 16).ok())
                        .ok_or_else(|| "bad chunk size".to_owned())?;
                    self.state = if size == 0 {
                        State::Trailers
                    } else {
                        State::Data(size)
                    };
                }
                State::Data(left) => {
                    let take = input.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    out.extend_from_slice(&input[..take]);
                    input = &input[take..];
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        State::DataEnd
                    } else {
                        State::Data(left)
                    };
                }
                State::DataEnd => {
                    let Some(end) = self.take_line(&mut input)? else {
                        break;
                    };
                    if end != 0 {
                        return Err("chunk data longer than its size".to_owned());
                    }
                    self.line.clear();
                    self.state = State::Size;
                }
                State::Done => break,
            }
        }
        Ok(out.freeze())
    }

    /// Moves bytes of `input` into `line` up to and including a LF; returns the line's length
    /// without its CRLF once complete.
    fn take_line(&mut self, input: &mut &[u8]) -> Result<Option<usize>, String> {
        match input.iter().position(|&b| b == b'\n') {
            Some(i) => {
                self.line.extend_from_slice(&input[..=i]);
                *input = &input[i + 1..];
                let mut end = self.line.len() - 1;
                if end > 0 && self.line[end - 1] == b'\r' {
                    end -= 1;
                }
                Ok(Some(end))
            }
            None => {
                self.line.extend_from_slice(input);
                *input = &[];
                if self.line.len() > MAX_LINE {
                    return Err("chunk line too long".to_owned());
                }
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_whatever_the_pieces() {
        let body = b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\nafter";
        for split in 1..body.len() {
            let mut d = Dechunk::default();
            let mut out = Vec::new();
            for piece in body.chunks(split) {
                out.extend_from_slice(&d.feed(piece).unwrap());
            }
            assert_eq!(out, b"hello, world", "pieces of {split}");
            assert!(d.is_done());
        }
    }

    #[test]
    fn refuses_bad_sizes_and_overlong_data() {
        assert!(Dechunk::default().feed(b"zz\r\n").is_err());
        assert!(Dechunk::default().feed(b"2\r\nabc\r\n").is_err());
        assert!(Dechunk::default().feed(&vec![b'1'; MAX_LINE + 1]).is_err());
        let mut d = Dechunk::default();
        d.feed(b"3\r\nab").unwrap();
        assert!(!d.is_done(), "a body cut short is not done");
    }
}
