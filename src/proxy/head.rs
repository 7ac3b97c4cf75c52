//! Reading the request head (header and vars) from a client, without copying it afterwards.

use std::io;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::protocol::{
    append_var, Header, PacketError, RequestId, Vars, HEADER_LEN, REQUEST_ID_VAR,
};

/// First read buffer: nginx's vars are usually well under 1 KiB; a larger block grows it once.
const INITIAL_CAPACITY: usize = 4096;

/// A request head as received: the exact bytes (header, vars and any body bytes that came with
/// them, forwarded unchanged) and the parsed header.
#[derive(Debug)]
pub(super) struct Head {
    /// Everything read so far.
    pub(super) bytes: Bytes,
    /// The parsed header.
    pub(super) header: Header,
}

impl Head {
    /// The validated vars block.
    pub(super) fn vars(&self) -> Vars<'_> {
        Vars::parse(&self.bytes[HEADER_LEN..self.header.packet_len()])
            .expect("vars were validated by read_head")
    }

    /// Body bytes the client still owes: its CONTENT_LENGTH less those that came with the head.
    /// A missing or unreadable CONTENT_LENGTH counts as no body (the node decides what it reads).
    pub(super) fn body_left(&self) -> u64 {
        let announced = self
            .vars()
            .get(b"CONTENT_LENGTH")
            .and_then(|v| std::str::from_utf8(v).ok()?.parse::<u64>().ok())
            .unwrap_or(0);
        let came = (self.bytes.len() - self.header.packet_len()) as u64;
        announced.saturating_sub(came)
    }

    /// The bytes to send to a node with `modifiers`: the head as received, or a copy with bytes
    /// 0 and 3 (modifier1, modifier2) replaced when the node's differ, as uWSGI's FastRouter does
    /// for subscribed nodes, and with `tag`'s id appended as `HTTP_X_REQUEST_ID` when the router
    /// made it. An id that would take the vars past 65535 bytes is left out.
    pub(super) fn bytes_for(&self, modifiers: Option<(u8, u8)>, tag: Option<&RequestTag>) -> Bytes {
        let mut copy = tag.filter(|t| t.added).and_then(|t| {
            append_var(self.header, &self.bytes, REQUEST_ID_VAR, t.id.as_bytes())
                .map_err(|e| tracing::debug!(request_id = %t.id, error = %e, "request id not passed to the node"))
                .ok()
        });
        if let Some((m1, m2)) = modifiers.filter(|&m| (self.bytes[0], self.bytes[3]) != m) {
            let copy = copy.get_or_insert_with(|| BytesMut::from(&self.bytes[..]));
            copy[0] = m1;
            copy[3] = m2;
        }
        copy.map_or_else(|| self.bytes.clone(), BytesMut::freeze)
    }
}

impl Head {
    /// The head of a packet built by the router itself (the HTTP front end's): header and vars,
    /// no body bytes.
    pub(super) fn from_packet(bytes: Bytes, max_vars: usize) -> Result<Self, PacketError> {
        let header = Header::parse(&bytes, max_vars)?;
        if bytes.len() != header.packet_len() {
            return Err(PacketError::TruncatedVars {
                expected: usize::from(header.datasize),
                got: bytes.len().saturating_sub(HEADER_LEN),
            });
        }
        Vars::parse(&bytes[HEADER_LEN..])?;
        Ok(Self { bytes, header })
    }
}

/// A request's id and whether the router made it (so it must be added to the vars).
#[derive(Debug, Clone)]
pub(super) struct RequestTag {
    /// The id.
    pub(super) id: RequestId,
    /// True when the client sent no usable id: the node gets this one appended.
    pub(super) added: bool,
}

impl RequestTag {
    /// The id of the request with `vars`: the client's `HTTP_X_REQUEST_ID` if usable, else a new
    /// one, which the node must then be given.
    pub(super) fn of(vars: &Vars<'_>) -> Self {
        match vars.get(REQUEST_ID_VAR).and_then(RequestId::given) {
            Some(id) => Self { id, added: false },
            None => Self {
                id: RequestId::generate(),
                added: true,
            },
        }
    }
}

/// Why no head could be read.
#[derive(Debug, thiserror::Error)]
pub(super) enum HeadError {
    /// The client closed the connection without sending a byte (health checks, port scans).
    #[error("client closed the connection before sending a request")]
    Closed,
    /// The client's bytes are not a valid uwsgi packet.
    #[error("malformed packet: {0}")]
    Malformed(#[from] PacketError),
    /// Reading failed.
    #[error("reading the request failed: {0}")]
    Io(#[from] io::Error),
}

/// Reads until the header and the whole vars block are in, and validates them.
pub(super) async fn read_head<S: AsyncRead + Unpin>(
    s: &mut S,
    max_vars: usize,
) -> Result<Head, HeadError> {
    let mut buf = BytesMut::with_capacity(INITIAL_CAPACITY);
    while buf.len() < HEADER_LEN {
        if s.read_buf(&mut buf).await? == 0 {
            return Err(match buf.len() {
                0 => HeadError::Closed,
                got => PacketError::TruncatedHeader { got }.into(),
            });
        }
    }
    let header = Header::parse(&buf, max_vars)?;
    let need = header.packet_len();
    if buf.capacity() < need {
        buf.reserve(need - buf.len());
    }
    while buf.len() < need {
        if s.read_buf(&mut buf).await? == 0 {
            return Err(PacketError::TruncatedVars {
                expected: usize::from(header.datasize),
                got: buf.len() - HEADER_LEN,
            }
            .into());
        }
    }
    Vars::parse(&buf[HEADER_LEN..need])?;
    Ok(Head {
        bytes: buf.freeze(),
        header,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_test::io::Builder;

    const GET: &[u8] = include_bytes!("../../tests/fixtures/nginx-get.bin");
    const POST: &[u8] = include_bytes!("../../tests/fixtures/nginx-post.bin");

    #[tokio::test]
    async fn reads_a_head_split_into_many_reads() {
        let mut b = Builder::new();
        for chunk in GET.chunks(7) {
            b.read(chunk);
        }
        let head = read_head(&mut b.build(), 65535).await.unwrap();
        assert_eq!(&head.bytes[..], GET);
        assert_eq!(head.vars().get(b"HTTP_HOST"), Some(&b"peers.local"[..]));
    }

    #[tokio::test]
    async fn keeps_body_bytes_that_came_with_the_head() {
        let head = read_head(&mut Builder::new().read(&POST[..2000]).build(), 65535)
            .await
            .unwrap();
        assert_eq!(
            head.bytes.len(),
            2000,
            "early body bytes are kept to be forwarded"
        );
        assert_eq!(head.header.packet_len(), 477);
    }

    #[tokio::test]
    async fn counts_the_body_bytes_still_owed() {
        let get = read_head(&mut Builder::new().read(GET).build(), 65535)
            .await
            .unwrap();
        assert_eq!(get.body_left(), 0, "a GET's CONTENT_LENGTH is empty");
        let post = read_head(&mut Builder::new().read(&POST[..2000]).build(), 65535)
            .await
            .unwrap();
        let announced: u64 = std::str::from_utf8(post.vars().get(b"CONTENT_LENGTH").unwrap())
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(post.body_left(), announced - (2000 - 477));
    }

    #[tokio::test]
    async fn modifiers_are_rewritten_only_when_they_differ() {
        let head = read_head(&mut Builder::new().read(GET).build(), 65535)
            .await
            .unwrap();
        assert_eq!(head.bytes_for(None, None), head.bytes);
        let same = head.bytes_for(Some((0, 0)), None);
        assert_eq!(
            same.as_ptr(),
            head.bytes.as_ptr(),
            "no copy when nothing changes"
        );
        let psgi = head.bytes_for(Some((5, 1)), None);
        assert_eq!((psgi[0], psgi[3]), (5, 1));
        assert_eq!(psgi[1..3], GET[1..3]);
        assert_eq!(psgi[4..], GET[4..]);
    }

    #[tokio::test]
    async fn a_made_id_is_appended_and_nothing_else_changes() {
        for capture in [GET, &POST[..2000]] {
            let head = read_head(&mut Builder::new().read(capture).build(), 65535)
                .await
                .unwrap();
            let tag = RequestTag::of(&head.vars());
            assert!(tag.added, "the captures carry no X-Request-Id");
            let sent = head.bytes_for(Some((5, 1)), Some(&tag));
            let var = [&[17, 0][..], REQUEST_ID_VAR, &[32, 0], tag.id.as_bytes()].concat();
            let end = head.header.packet_len();
            let datasize = head.header.datasize + var.len() as u16;
            assert_eq!(
                sent[..4],
                [5, datasize.to_le_bytes()[0], datasize.to_le_bytes()[1], 1]
            );
            assert_eq!(sent[4..end], capture[4..end], "the vars as received");
            assert_eq!(sent[end..end + var.len()], var[..], "then the id");
            assert_eq!(
                sent[end + var.len()..],
                capture[end..],
                "then the body as received"
            );
        }
    }

    #[tokio::test]
    async fn a_client_id_is_forwarded_unchanged_and_a_bad_one_replaced() {
        let packet = |id: &[u8]| {
            crate::protocol::encode_packet(
                0,
                0,
                [(&b"HTTP_HOST"[..], &b"h"[..]), (REQUEST_ID_VAR, id)],
            )
            .unwrap()
        };
        let given = packet(b"client-id-1");
        let head = read_head(&mut Builder::new().read(&given).build(), 65535)
            .await
            .unwrap();
        let tag = RequestTag::of(&head.vars());
        assert_eq!((tag.id.as_str(), tag.added), ("client-id-1", false));
        let sent = head.bytes_for(None, Some(&tag));
        assert_eq!(sent.as_ptr(), head.bytes.as_ptr(), "no copy");
        let bad = packet(b"two words");
        let head = read_head(&mut Builder::new().read(&bad).build(), 65535)
            .await
            .unwrap();
        let tag = RequestTag::of(&head.vars());
        assert!(tag.added);
        let sent = head.bytes_for(None, Some(&tag));
        let (_, vars, _) = crate::protocol::parse_packet(&sent, 65535).unwrap();
        assert_eq!(
            vars.get(REQUEST_ID_VAR),
            Some(tag.id.as_bytes()),
            "the last one wins"
        );
    }

    #[tokio::test]
    async fn an_id_that_does_not_fit_is_left_out() {
        let fill = vec![b'x'; 65535 - 4 - 1];
        let full = crate::protocol::encode_packet(0, 0, [(&b"F"[..], &fill[..])]).unwrap();
        let head = read_head(&mut Builder::new().read(&full).build(), 65535)
            .await
            .unwrap();
        let tag = RequestTag::of(&head.vars());
        assert_eq!(head.bytes_for(None, Some(&tag)), head.bytes);
    }

    #[tokio::test]
    async fn names_truncations_and_oversize() {
        let e = read_head(&mut Builder::new().build(), 65535)
            .await
            .unwrap_err();
        assert!(matches!(e, HeadError::Closed));
        let e = read_head(&mut Builder::new().read(&GET[..3]).build(), 65535)
            .await
            .unwrap_err();
        assert!(matches!(
            e,
            HeadError::Malformed(PacketError::TruncatedHeader { got: 3 })
        ));
        let e = read_head(&mut Builder::new().read(&GET[..100]).build(), 65535)
            .await
            .unwrap_err();
        assert!(matches!(
            e,
            HeadError::Malformed(PacketError::TruncatedVars {
                expected: 390,
                got: 96
            })
        ));
        let e = read_head(&mut Builder::new().read(GET).build(), 128)
            .await
            .unwrap_err();
        assert!(matches!(
            e,
            HeadError::Malformed(PacketError::VarsTooLarge { .. })
        ));
    }
}
