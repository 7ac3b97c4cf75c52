//! The Registry's gRPC codec: prost with small per-stream buffers. Tonic allocates its codec buffer
//! up front for each stream, both ways (8 KiB each by default); a registry holds one stream per
//! node for as long as the node serves, and its messages are tens of bytes, so at fleet scale the
//! default buffers were most of a node's memory. A larger message (an announce with many labels)
//! grows the buffer as needed.

use std::marker::PhantomData;

use prost::Message;
use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// Initial size (and growth step) of a stream's encode and decode buffers.
const BUFFER_BYTES: usize = 512;
/// Bytes of ready messages batched into one write: a session rarely has more than one ready.
const YIELD_BYTES: usize = 4 * 1024;

/// A [`ProstCodec`] with [`BUFFER_BYTES`] buffers.
#[derive(Debug)]
pub(crate) struct LeanCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for LeanCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

fn settings() -> BufferSettings {
    BufferSettings::new(BUFFER_BYTES, YIELD_BYTES)
}

impl<T, U> Codec for LeanCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(settings())
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<T, U>::raw_decoder(settings())
    }
}

/// The generated Registry server, on [`LeanCodec`] (see `build.rs`).
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod server {
    include!(concat!(env!("OUT_DIR"), "/lean/uwsgi_router.v1.rs"));
}
