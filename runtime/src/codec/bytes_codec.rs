//! `BytesCodec`: bytes as they come, no framing.

use std::io;

use super::{BytesMut, Decoder, Encoder};

/// No framing at all: decodes whatever bytes were read, as one [`BytesMut`] per read, and
/// encodes bytes as they are (`BytesMut`, `Vec<u8>` or `&[u8]`). tokio-util's `BytesCodec`;
/// it turns a reader into a `Stream` of chunks and a writer into a `Sink` of them.
///
/// ```
/// use overlap::codec::{BytesCodec, FramedRead, FramedWrite};
/// use overlap::sink::SinkExt;
/// use overlap::stream::StreamExt;
///
/// overlap::block_on(async {
///     let (tx, rx) = overlap::pipe::pipe()?;
///     let mut sink = FramedWrite::new(tx, BytesCodec::new());
///     sink.send(&b"chunk"[..]).await?;
///     drop(sink);
///     let chunks: Vec<_> = FramedRead::new(rx, BytesCodec::new()).collect().await;
///     assert_eq!(chunks.len(), 1);
///     assert_eq!(chunks[0].as_ref().unwrap(), &b"chunk"[..]);
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BytesCodec(());

impl BytesCodec {
    /// The codec.
    pub fn new() -> BytesCodec {
        BytesCodec(())
    }
}

impl Decoder for BytesCodec {
    type Item = BytesMut;
    type Error = io::Error;

    /// All the bytes buffered, if any.
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<BytesMut>, io::Error> {
        if buf.is_empty() {
            Ok(None)
        } else {
            Ok(Some(buf.split()))
        }
    }
}

impl Encoder<BytesMut> for BytesCodec {
    type Error = io::Error;

    fn encode(&mut self, data: BytesMut, dst: &mut BytesMut) -> Result<(), io::Error> {
        dst.extend_from_slice(&data);
        Ok(())
    }
}

impl Encoder<Vec<u8>> for BytesCodec {
    type Error = io::Error;

    fn encode(&mut self, data: Vec<u8>, dst: &mut BytesMut) -> Result<(), io::Error> {
        dst.extend_from_slice(&data);
        Ok(())
    }
}

impl Encoder<&[u8]> for BytesCodec {
    type Error = io::Error;

    fn encode(&mut self, data: &[u8], dst: &mut BytesMut) -> Result<(), io::Error> {
        dst.extend_from_slice(data);
        Ok(())
    }
}
