//! `AnyDelimiterCodec`: chunks ended by any of a set of delimiter bytes.

use std::{fmt, io};

use super::delimiter_scan::{DelimiterScan, Found};
use super::{BytesMut, Decoder, Encoder};

/// Chunks ended by any one of a set of bytes: tokio-util's `AnyDelimiterCodec`. Decodes
/// each chunk up to the next byte among `seek_delimiters` as a [`BytesMut`], the delimiter
/// dropped, and at end of stream what is left as a last chunk; encodes a `String` or
/// `&str` followed by `sequence_writer`. `Default` seeks `,`, `;`, `\n` and `\r` and
/// writes `,`.
///
/// With a maximum length ([`new_with_max_length`](AnyDelimiterCodec::new_with_max_length)),
/// a longer chunk gives [`AnyDelimiterCodecError::MaxChunkLengthExceeded`] as soon as that
/// many bytes came without a delimiter, and the codec then drops bytes up to the next
/// delimiter and goes on, as [`LinesCodec`](super::LinesCodec) does.
///
/// ```
/// use overlap::codec::{AnyDelimiterCodec, BytesMut, Decoder, Encoder};
///
/// let mut codec = AnyDelimiterCodec::new(b",;".to_vec(), b";".to_vec());
/// let mut buf = BytesMut::from(&b"a,b;c"[..]);
/// assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), b"a"[..]);
/// assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), b"b"[..]);
/// assert_eq!(codec.decode(&mut buf).unwrap(), None);
/// assert_eq!(codec.decode_eof(&mut buf).unwrap().unwrap(), b"c"[..]);
///
/// let mut out = BytesMut::new();
/// codec.encode("x", &mut out).unwrap();
/// assert_eq!(out, b"x;"[..]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AnyDelimiterCodec {
    scan: DelimiterScan,
    seek_delimiters: Vec<u8>,
    sequence_writer: Vec<u8>,
}

impl AnyDelimiterCodec {
    /// Chunks of any length ended by any byte of `seek_delimiters`; encoding writes
    /// `sequence_writer` after each.
    pub fn new(seek_delimiters: Vec<u8>, sequence_writer: Vec<u8>) -> AnyDelimiterCodec {
        AnyDelimiterCodec::new_with_max_length(seek_delimiters, sequence_writer, usize::MAX)
    }

    /// The same, chunks of at most `max_length` bytes; a longer one is an error.
    pub fn new_with_max_length(
        seek_delimiters: Vec<u8>,
        sequence_writer: Vec<u8>,
        max_length: usize,
    ) -> AnyDelimiterCodec {
        AnyDelimiterCodec {
            scan: DelimiterScan::new(max_length),
            seek_delimiters,
            sequence_writer,
        }
    }

    /// The maximum chunk length (`usize::MAX` when unbounded).
    pub fn max_length(&self) -> usize {
        self.scan.max_length
    }
}

impl Default for AnyDelimiterCodec {
    fn default() -> AnyDelimiterCodec {
        AnyDelimiterCodec::new(b",;\n\r".to_vec(), b",".to_vec())
    }
}

impl Decoder for AnyDelimiterCodec {
    type Item = BytesMut;
    type Error = AnyDelimiterCodecError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<BytesMut>, Self::Error> {
        let delimiters = &self.seek_delimiters;
        match self
            .scan
            .scan(buf, |s| s.iter().position(|b| delimiters.contains(b)))
        {
            Found::Chunk(end) => {
                let chunk = buf.split_to(end);
                buf.advance(1);
                Ok(Some(chunk))
            }
            Found::TooLong => Err(AnyDelimiterCodecError::MaxChunkLengthExceeded),
            Found::Nothing => Ok(None),
        }
    }

    /// As [`decode`](AnyDelimiterCodec::decode), then the bytes left as a last chunk.
    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<BytesMut>, Self::Error> {
        if let Some(chunk) = self.decode(buf)? {
            return Ok(Some(chunk));
        }
        self.scan.reset();
        if buf.is_empty() {
            Ok(None)
        } else {
            Ok(Some(buf.split()))
        }
    }
}

impl<T: AsRef<str>> Encoder<T> for AnyDelimiterCodec {
    type Error = AnyDelimiterCodecError;

    fn encode(&mut self, chunk: T, dst: &mut BytesMut) -> Result<(), Self::Error> {
        let chunk = chunk.as_ref();
        dst.reserve(chunk.len() + self.sequence_writer.len());
        dst.put_slice(chunk.as_bytes());
        dst.put_slice(&self.sequence_writer);
        Ok(())
    }
}

/// The error of an [`AnyDelimiterCodec`].
#[derive(Debug)]
pub enum AnyDelimiterCodecError {
    /// A chunk was longer than the maximum; the codec drops the rest of it and goes on.
    MaxChunkLengthExceeded,
    /// The stream failed.
    Io(io::Error),
}

impl fmt::Display for AnyDelimiterCodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnyDelimiterCodecError::MaxChunkLengthExceeded => {
                write!(f, "max chunk length exceeded")
            }
            AnyDelimiterCodecError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for AnyDelimiterCodecError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AnyDelimiterCodecError::MaxChunkLengthExceeded => None,
            AnyDelimiterCodecError::Io(e) => Some(e),
        }
    }
}

impl From<io::Error> for AnyDelimiterCodecError {
    fn from(e: io::Error) -> AnyDelimiterCodecError {
        AnyDelimiterCodecError::Io(e)
    }
}
