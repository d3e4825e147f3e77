//! [`LengthDelimitedCodec`]: frames that each start with their length, and the [`Builder`]
//! of other layouts than its default (tokio-util's `codec::length_delimited`).

mod builder;

use std::{fmt, io};

use super::{BytesMut, Decoder, Encoder};
pub use builder::{Builder, LengthFieldType};

/// Frames that start with their length: tokio-util's `LengthDelimitedCodec`. By default
/// each frame is a 4-byte big-endian length, then that many bytes; frames of more than
/// 8 MiB are refused. Decoded frames are [`BytesMut`] (the length field left out); encode
/// takes a `BytesMut`, a `Vec<u8>` or a `&[u8]` and writes the length before it.
///
/// Other layouts (a length of 1 to 8 bytes, little-endian, after a header, counting the
/// header or not, ...) are set up with a [`Builder`]: `LengthDelimitedCodec::builder()`.
///
/// A frame whose length is over the maximum is an `io::Error` that says how big it was
/// and what the maximum is: of kind `InvalidData` when decoding (in a
/// [`FramedRead`](super::FramedRead), the stream then ends), `InvalidInput` when encoding,
/// as in tokio-util. Its inner error is a [`LengthDelimitedCodecError`].
///
/// ```
/// use overlap::codec::{Framed, LengthDelimitedCodec};
/// use overlap::io::{duplex, AsyncReadExt};
/// use overlap::sink::SinkExt;
/// use overlap::stream::StreamExt;
///
/// overlap::block_on(async {
///     let (mut a, b) = duplex(1024);
///     let mut frames = Framed::new(b, LengthDelimitedCodec::new());
///     frames.send(&b"hello"[..]).await?;
///     let mut wire = [0u8; 9];
///     a.read_exact(&mut wire).await?;
///     assert_eq!(&wire, b"\0\0\0\x05hello");
///
///     overlap::io::AsyncWriteExt::write_all(&mut a, b"\0\0\0\x02hi").await?;
///     assert_eq!(frames.next().await.unwrap()?, b"hi"[..]);
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct LengthDelimitedCodec {
    builder: Builder,
    state: DecodeState,
}

/// Where the decoder is in the current frame.
#[derive(Debug, Clone, Copy)]
enum DecodeState {
    /// Waiting for the header.
    Head,
    /// The header was read: waiting for this many bytes of data.
    Data(usize),
}

impl LengthDelimitedCodec {
    /// The default codec: a 4-byte big-endian length, frames of up to 8 MiB.
    pub fn new() -> LengthDelimitedCodec {
        Builder::new().new_codec()
    }

    /// A [`Builder`] for other layouts.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// The largest frame taken, in bytes.
    pub fn max_frame_length(&self) -> usize {
        self.builder.max_frame_len
    }

    /// Sets the largest frame taken (clipped to what the length field can express).
    pub fn set_max_frame_length(&mut self, val: usize) {
        self.builder.max_frame_length(val);
        self.builder.clip_max_frame_len();
    }

    /// The frame's data length from its header, once the header is all there; the header
    /// (and `num_skip` bytes in all) is then dropped from `src`.
    fn decode_head(&mut self, src: &mut BytesMut) -> io::Result<Option<usize>> {
        let b = &self.builder;
        if src.len() < b.num_head_bytes() {
            return Ok(None);
        }
        let field = &src[b.length_field_offset..b.length_field_offset + b.length_field_len];
        let push = |n: u64, &byte: &u8| (n << 8) | u64::from(byte);
        let n = if b.length_field_is_big_endian {
            field.iter().fold(0, push)
        } else {
            field.iter().rev().fold(0, push)
        };
        if n > b.max_frame_len as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                LengthDelimitedCodecError::new(n, b.max_frame_len),
            ));
        }
        let n = n as usize;
        let n = if b.length_adjustment < 0 {
            n.checked_sub(b.length_adjustment.unsigned_abs())
        } else {
            n.checked_add(b.length_adjustment.unsigned_abs())
        }
        .ok_or_else(|| {
            // InvalidInput, as tokio-util's (where a too-long frame is InvalidData).
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "provided length would overflow after adjustment",
            )
        })?;
        src.advance(b.get_num_skip());
        // Room for the whole frame at once, rather than growing read by read; but no more
        // than `RESERVE_AHEAD`: the length is the peer's word, and under a large (or no)
        // maximum a header alone must not make the buffer take memory it never fills, nor
        // overflow its capacity. A bigger frame grows its buffer as its bytes arrive.
        src.reserve(n.saturating_sub(src.len()).min(RESERVE_AHEAD));
        Ok(Some(n))
    }
}

/// The most room a frame's header makes its buffer reserve before the frame's bytes
/// arrive: the default maximum frame length.
const RESERVE_AHEAD: usize = 8 * 1024 * 1024;

impl Default for LengthDelimitedCodec {
    fn default() -> LengthDelimitedCodec {
        LengthDelimitedCodec::new()
    }
}

impl Decoder for LengthDelimitedCodec {
    type Item = BytesMut;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<BytesMut>> {
        let n = match self.state {
            DecodeState::Head => match self.decode_head(src)? {
                Some(n) => {
                    self.state = DecodeState::Data(n);
                    n
                }
                None => return Ok(None),
            },
            DecodeState::Data(n) => n,
        };
        if src.len() < n {
            return Ok(None);
        }
        self.state = DecodeState::Head;
        // A frame that is all of the buffer moves out without a copy.
        let frame = if src.len() == n {
            src.split()
        } else {
            src.split_to(n)
        };
        Ok(Some(frame))
    }
}

impl LengthDelimitedCodec {
    fn encode_slice(&mut self, data: &[u8], dst: &mut BytesMut) -> io::Result<()> {
        let b = &self.builder;
        let n = data.len();
        if n > b.max_frame_len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                LengthDelimitedCodecError::new(n as u64, b.max_frame_len),
            ));
        }
        // The field holds the length as the decoder will read it, before its adjustment.
        let field = if b.length_adjustment < 0 {
            n.checked_add(b.length_adjustment.unsigned_abs())
        } else {
            n.checked_sub(b.length_adjustment.unsigned_abs())
        }
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "provided length would overflow after adjustment",
            )
        })? as u64;
        let len = b.length_field_len;
        if len < 8 && field >> (8 * len) != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("frame length {field} does not fit a {len}-byte length field"),
            ));
        }
        dst.reserve(len + n);
        if b.length_field_is_big_endian {
            dst.put_slice(&field.to_be_bytes()[8 - len..]);
        } else {
            dst.put_slice(&field.to_le_bytes()[..len]);
        }
        dst.put_slice(data);
        Ok(())
    }
}

impl Encoder<BytesMut> for LengthDelimitedCodec {
    type Error = io::Error;

    fn encode(&mut self, data: BytesMut, dst: &mut BytesMut) -> io::Result<()> {
        self.encode_slice(&data, dst)
    }
}

impl Encoder<Vec<u8>> for LengthDelimitedCodec {
    type Error = io::Error;

    fn encode(&mut self, data: Vec<u8>, dst: &mut BytesMut) -> io::Result<()> {
        self.encode_slice(&data, dst)
    }
}

impl Encoder<&[u8]> for LengthDelimitedCodec {
    type Error = io::Error;

    fn encode(&mut self, data: &[u8], dst: &mut BytesMut) -> io::Result<()> {
        self.encode_slice(data, dst)
    }
}

/// The error inside the `io::Error` of a frame longer than a [`LengthDelimitedCodec`]'s
/// maximum: it says both.
///
/// ```
/// use overlap::codec::{BytesMut, Decoder, LengthDelimitedCodec, LengthDelimitedCodecError};
///
/// let mut codec = LengthDelimitedCodec::builder().max_frame_length(10).new_codec();
/// let err = codec.decode(&mut BytesMut::from(&b"\0\0\0\x0bhello world"[..])).unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
/// assert_eq!(err.to_string(), "frame size too big: 11 bytes, the maximum is 10");
/// let inner = err.get_ref().unwrap().downcast_ref::<LengthDelimitedCodecError>().unwrap();
/// assert_eq!((inner.frame_length(), inner.max_frame_length()), (11, 10));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LengthDelimitedCodecError {
    len: u64,
    max: usize,
}

impl LengthDelimitedCodecError {
    fn new(len: u64, max: usize) -> LengthDelimitedCodecError {
        LengthDelimitedCodecError { len, max }
    }

    /// The length the frame claimed (decoding) or had (encoding).
    pub fn frame_length(&self) -> u64 {
        self.len
    }

    /// The codec's maximum.
    pub fn max_frame_length(&self) -> usize {
        self.max
    }
}

impl fmt::Display for LengthDelimitedCodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "frame size too big: {} bytes, the maximum is {}",
            self.len, self.max
        )
    }
}

impl std::error::Error for LengthDelimitedCodecError {}
