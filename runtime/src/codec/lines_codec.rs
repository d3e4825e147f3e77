//! `LinesCodec`: lines of UTF-8 text, `\n` or `\r\n` ended, optionally bounded.

use std::{fmt, io};

use super::delimiter_scan::{find_byte, DelimiterScan, Found};
use super::{BytesMut, Decoder, Encoder};

/// Lines of text: tokio-util's `LinesCodec`. Decodes each line ended by `\n` (a `\r` before
/// it is dropped too) as a `String` without its ending, and at end of stream a last line
/// that has none; encodes a `String` or `&str` followed by `\n`.
///
/// A line that is not UTF-8 is an `io::Error` of kind `InvalidData` (in
/// [`LinesCodecError::Io`]). With a maximum length ([`new_with_max_length`]), a line longer
/// than that gives [`LinesCodecError::MaxLineLengthExceeded`] as soon as that many bytes
/// came without a newline (never holding more), and the codec then drops bytes up to the
/// next newline and goes on with the line after it. The length counts the `\r` of a
/// `\r\n` ending, as tokio-util's does (a 5-byte line ended by `\r\n` needs a maximum of
/// 6). In a [`FramedRead`](super::FramedRead)
/// the error ends the stream once (`None`), as any error does; poll it again to go on.
///
/// [`new_with_max_length`]: LinesCodec::new_with_max_length
///
/// ```
/// use overlap::codec::{BytesMut, Decoder, LinesCodec, LinesCodecError};
///
/// let mut codec = LinesCodec::new_with_max_length(6);
/// let mut buf = BytesMut::from(&b"short\r\nmuch too long\nnext\n"[..]);
/// assert_eq!(codec.decode(&mut buf).unwrap().as_deref(), Some("short"));
/// assert!(matches!(codec.decode(&mut buf), Err(LinesCodecError::MaxLineLengthExceeded)));
/// assert_eq!(codec.decode(&mut buf).unwrap().as_deref(), Some("next"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinesCodec {
    scan: DelimiterScan,
}

impl LinesCodec {
    /// Lines of any length (a peer that never sends a newline makes it hold all it sends:
    /// prefer [`new_with_max_length`](LinesCodec::new_with_max_length) for untrusted input).
    pub fn new() -> LinesCodec {
        LinesCodec::new_with_max_length(usize::MAX)
    }

    /// Lines of at most `max_length` bytes, the ending excluded; a longer one is an error.
    pub fn new_with_max_length(max_length: usize) -> LinesCodec {
        LinesCodec {
            scan: DelimiterScan::new(max_length),
        }
    }

    /// The maximum line length (`usize::MAX` when unbounded).
    pub fn max_length(&self) -> usize {
        self.scan.max_length
    }
}

impl Default for LinesCodec {
    fn default() -> LinesCodec {
        LinesCodec::new()
    }
}

fn without_carriage_return(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn utf8(line: &[u8]) -> Result<String, io::Error> {
    std::str::from_utf8(line)
        .map(str::to_owned)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "line is not valid UTF-8"))
}

impl Decoder for LinesCodec {
    type Item = String;
    type Error = LinesCodecError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<String>, LinesCodecError> {
        match self.scan.scan(buf, |s| find_byte(b'\n', s)) {
            Found::Chunk(end) => {
                // The String is made from the buffer in place, one copy: `split_to` would
                // copy the line into a buffer of its own first.
                let line = utf8(without_carriage_return(&buf[..end]));
                buf.advance(end + 1);
                Ok(Some(line?))
            }
            Found::TooLong => Err(LinesCodecError::MaxLineLengthExceeded),
            Found::Nothing => Ok(None),
        }
    }

    /// As [`decode`](LinesCodec::decode), then the bytes left as a last line. A lone `\r`
    /// left is no line, and stays in `buf`, as tokio-util's does: a reader that goes on
    /// after end of file (a tty, a file being appended to) may bring the rest of its line.
    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<String>, LinesCodecError> {
        if let Some(line) = self.decode(buf)? {
            return Ok(Some(line));
        }
        self.scan.reset();
        if buf.is_empty() || buf[..] == b"\r"[..] {
            return Ok(None);
        }
        let line = buf.split();
        Ok(Some(utf8(without_carriage_return(&line))?))
    }
}

impl<T: AsRef<str>> Encoder<T> for LinesCodec {
    type Error = LinesCodecError;

    fn encode(&mut self, line: T, dst: &mut BytesMut) -> Result<(), LinesCodecError> {
        let line = line.as_ref();
        dst.reserve(line.len() + 1);
        dst.put_slice(line.as_bytes());
        dst.put_u8(b'\n');
        Ok(())
    }
}

/// The error of a [`LinesCodec`].
#[derive(Debug)]
pub enum LinesCodecError {
    /// A line was longer than the maximum; the codec drops the rest of it and goes on.
    MaxLineLengthExceeded,
    /// The stream failed, or a line was not UTF-8 (kind `InvalidData`).
    Io(io::Error),
}

impl fmt::Display for LinesCodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinesCodecError::MaxLineLengthExceeded => write!(f, "max line length exceeded"),
            LinesCodecError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for LinesCodecError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LinesCodecError::MaxLineLengthExceeded => None,
            LinesCodecError::Io(e) => Some(e),
        }
    }
}

impl From<io::Error> for LinesCodecError {
    fn from(e: io::Error) -> LinesCodecError {
        LinesCodecError::Io(e)
    }
}
