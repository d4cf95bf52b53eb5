//! A `CopyEvent` already encoded, and the codec that puts it on the wire as it is.
//!
//! Why: one change goes to every stream watching it, thousands on one replica. Encoding it once and sharing the
//! bytes (as Kubernetes' watch cache does with `CachingObject`) takes the protobuf work out of the per-stream cost;
//! each stream copies the bytes into its frame and nothing more. The bytes are exactly what prost makes of a
//! `CopyEvent`, so clients (generated from the same proto) decode them as usual.
//!
//! The codec also keeps a stream's encode buffer small: tonic allocates it when the stream opens (8 KiB by
//! default), and a watch stream sends one small message at a time.

use std::marker::PhantomData;

use bytes::{BufMut, Bytes};
use prost::Message;
use tonic::codec::{BufferSettings, Codec, EncodeBuf, Encoder};
use tonic::Status;
use tonic_prost::ProstDecoder;

use super::CopyEvent;

/// The protobuf encoding of one [`CopyEvent`]; cheap to clone (the bytes are shared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedCopyEvent(Bytes);

impl EncodedCopyEvent {
    pub fn new(event: &CopyEvent) -> EncodedCopyEvent {
        EncodedCopyEvent(event.encode_to_vec().into())
    }

    /// The event again, for tests and tools that look inside.
    pub fn decode(&self) -> Result<CopyEvent, prost::DecodeError> {
        CopyEvent::decode(self.0.clone())
    }
}

/// A message's first encode buffer: enough for a typical copy event with its tags. A larger one grows the buffer.
const BUFFER: usize = 1024;
/// Bytes gathered before they go to the connection: tonic's default.
const YIELD_THRESHOLD: usize = 32 * 1024;

/// Decodes requests with prost and writes [`EncodedCopyEvent`]s as they are.
#[derive(Debug)]
pub struct EncodedCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for EncodedCodec<T, U> {
    fn default() -> Self {
        EncodedCodec(PhantomData)
    }
}

impl<U: Message + Default + Send + 'static> Codec for EncodedCodec<EncodedCopyEvent, U> {
    type Encode = EncodedCopyEvent;
    type Decode = U;
    type Encoder = Copier;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Copier {
        Copier
    }

    fn decoder(&mut self) -> ProstDecoder<U> {
        ProstDecoder::new(BufferSettings::default())
    }
}

#[derive(Debug)]
pub struct Copier;

impl Encoder for Copier {
    type Item = EncodedCopyEvent;
    type Error = Status;

    fn encode(&mut self, item: EncodedCopyEvent, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item.0);
        Ok(())
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::new(BUFFER, YIELD_THRESHOLD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bytes_are_the_event_as_prost_encodes_it() {
        let event = CopyEvent { sequence: 42, snapshot: true, previous_state: 3, ..CopyEvent::default() };
        let encoded = EncodedCopyEvent::new(&event);
        assert_eq!(encoded.0.as_ref(), event.encode_to_vec().as_slice());
        assert_eq!(encoded.decode().unwrap(), event);
    }
}
