//! LSP's base protocol as a tokio-util-style `Decoder`: a header section of
//! `Name: value\r\n` lines ended by an empty line, `Content-Length` required (and
//! bounded), `Content-Type` and unknown headers accepted and ignored, then exactly that
//! many body bytes. A header error loses the stream's framing for good, so the reader
//! ends on the first one; a stream ending mid-frame is an error too (`decode_eof`).

use std::fmt;
use std::io;

use overlap::codec::{BytesMut, Decoder};

/// The longest header section taken before its blank line must have come.
pub const MAX_HEADER: usize = 8 * 1024;

/// Why a frame could not be read.
#[derive(Debug)]
pub enum FrameError {
    /// The header section has no `Content-Length`.
    MissingContentLength,
    /// `Content-Length`'s value is not a decimal number.
    BadContentLength(String),
    /// The announced body is over the limit; nothing of it was read.
    TooLarge {
        len: usize,
        max: usize,
    },
    /// No blank line within [`MAX_HEADER`] bytes.
    HeaderTooLong,
    /// A header line that is not `Name: value`, or not UTF-8.
    MalformedHeader(String),
    /// The stream ended inside a frame's body.
    Truncated {
        have: usize,
        need: usize,
    },
    /// The stream ended inside a header section, after this many bytes of it.
    TruncatedHeader(usize),
    Io(io::Error),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::MissingContentLength => write!(f, "header without Content-Length"),
            FrameError::BadContentLength(v) => write!(f, "Content-Length {v:?} is not a number"),
            FrameError::TooLarge { len, max } => {
                write!(f, "message of {len} bytes is over the {max}-byte limit")
            }
            FrameError::HeaderTooLong => write!(f, "header over {MAX_HEADER} bytes"),
            FrameError::MalformedHeader(line) => write!(f, "malformed header line {line:?}"),
            FrameError::Truncated { have, need } => {
                write!(f, "stream ended mid-message ({have} of {need} body bytes)")
            }
            FrameError::TruncatedHeader(n) => {
                write!(f, "stream ended mid-header ({n} bytes of header)")
            }
            FrameError::Io(e) => write!(f, "read failed: {e}"),
        }
    }
}

impl From<io::Error> for FrameError {
    fn from(e: io::Error) -> FrameError {
        FrameError::Io(e)
    }
}

/// The decoder: bodies out, headers checked.
#[derive(Debug)]
pub struct LspCodec {
    max_body: usize,
    /// The current frame's header length and body length, once its header was parsed.
    frame: Option<(usize, usize)>,
}

impl LspCodec {
    pub fn new(max_body: usize) -> LspCodec {
        LspCodec {
            max_body,
            frame: None,
        }
    }

    fn parse_header(&self, header: &[u8]) -> Result<usize, FrameError> {
        let text = std::str::from_utf8(header)
            .map_err(|_| FrameError::MalformedHeader(String::from_utf8_lossy(header).into()))?;
        let mut length = None;
        for line in text.split("\r\n").filter(|l| !l.is_empty()) {
            let Some((name, value)) = line.split_once(':') else {
                return Err(FrameError::MalformedHeader(line.to_owned()));
            };
            if name.trim().eq_ignore_ascii_case("content-length") {
                let value = value.trim();
                let n: usize = match value.bytes().all(|b| b.is_ascii_digit()) {
                    true if !value.is_empty() => value.parse().map_err(|_| {
                        // All digits, and still no usize: far over any limit.
                        FrameError::TooLarge {
                            len: usize::MAX,
                            max: self.max_body,
                        }
                    })?,
                    _ => return Err(FrameError::BadContentLength(value.to_owned())),
                };
                length = Some(n);
            }
        }
        let len = length.ok_or(FrameError::MissingContentLength)?;
        if len > self.max_body {
            return Err(FrameError::TooLarge {
                len,
                max: self.max_body,
            });
        }
        Ok(len)
    }
}

impl Decoder for LspCodec {
    type Item = Vec<u8>;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Vec<u8>>, FrameError> {
        let (head, body) = match self.frame {
            Some(frame) => frame,
            None => {
                let Some(end) = src.windows(4).position(|w| w == b"\r\n\r\n") else {
                    if src.len() > MAX_HEADER {
                        return Err(FrameError::HeaderTooLong);
                    }
                    return Ok(None);
                };
                if end > MAX_HEADER {
                    return Err(FrameError::HeaderTooLong);
                }
                let body = self.parse_header(&src[..end])?;
                self.frame = Some((end + 4, body));
                (end + 4, body)
            }
        };
        if src.len() < head + body {
            src.reserve(head + body - src.len());
            return Ok(None);
        }
        self.frame = None;
        src.advance(head);
        Ok(Some(src.split_to(body).to_vec()))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Vec<u8>>, FrameError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(match self.frame {
                Some((head, body)) => FrameError::Truncated {
                    have: src.len() - head,
                    need: body,
                },
                None => FrameError::TruncatedHeader(src.len()),
            }),
        }
    }
}

/// One message framed for the wire.
pub fn frame(body: &str) -> Vec<u8> {
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}
