//! LSP's base protocol as a tokio-util-style codec: a header of `Name: value\r\n` lines
//! ending in an empty line, `Content-Length` required (other fields, `Content-Type`,
//! ignored), then that many bytes of body.
//!
//! Limits: a header over `max_header` bytes without its end is an error (the buffer never
//! grows past it); a length that is not plain decimal digits, or missing, or given twice,
//! is an error; a body over `max_body` is not buffered but skipped as it arrives, and
//! handed up as [`Frame::Oversized`] so the peer can answer it and go on. Errors are the
//! unrecoverable ones: after them the byte stream has no frame boundary to resync on.
//! Bytes left at end of input (a header or body cut short) are [`FrameError::Truncated`].

use std::fmt;
use std::io;

use overlap::codec::{BytesMut, Decoder, Encoder};

use super::json::Json;

/// What the decoder hands up.
#[derive(Debug)]
pub enum Frame {
    /// A whole body.
    Message(BytesMut),
    /// A message whose length was over the maximum: its body was skipped, unread.
    Oversized { len: u64, max: usize },
}

#[derive(Debug)]
pub enum FrameError {
    HeaderTooLong { max: usize },
    BadHeaderLine(String),
    MissingLength,
    BadLength(String),
    Truncated { what: &'static str, have: usize },
    Io(io::Error),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::HeaderTooLong { max } => {
                write!(f, "a message header longer than {max} bytes")
            }
            FrameError::BadHeaderLine(line) => write!(f, "a bad header line: {line:?}"),
            FrameError::MissingLength => write!(f, "a message header without Content-Length"),
            FrameError::BadLength(v) => write!(f, "an invalid Content-Length: {v:?}"),
            FrameError::Truncated { what, have } => {
                write!(f, "end of input in a message {what} ({have} bytes of it)")
            }
            FrameError::Io(e) => write!(f, "reading messages: {e}"),
        }
    }
}

impl std::error::Error for FrameError {}

impl From<io::Error> for FrameError {
    fn from(e: io::Error) -> FrameError {
        FrameError::Io(e)
    }
}

/// What the encoder writes.
#[derive(Debug)]
pub enum Outgoing {
    /// A message, its header made for it.
    Message(Json),
    /// Bytes as they are (the tests' malformed input).
    Raw(Vec<u8>),
}

#[derive(Debug)]
enum State {
    /// Looking for the header's end; `scanned` bytes of the buffer hold none.
    Header {
        scanned: usize,
    },
    Body(usize),
    Skip(u64),
}

#[derive(Debug)]
pub struct LspCodec {
    max_header: usize,
    max_body: usize,
    state: State,
}

pub const DEFAULT_MAX_HEADER: usize = 1024;

impl LspCodec {
    pub fn new(max_body: usize) -> LspCodec {
        LspCodec {
            max_header: DEFAULT_MAX_HEADER,
            max_body,
            state: State::Header { scanned: 0 },
        }
    }

    /// The body's length from a header (its end excluded).
    fn parse_header(header: &[u8]) -> Result<u64, FrameError> {
        let mut length = None;
        let lines = header.split(|&b| b == b'\n').filter(|_| !header.is_empty());
        for line in lines {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let shown = || String::from_utf8_lossy(line).into_owned();
            let text = std::str::from_utf8(line)
                .ok()
                .filter(|t| t.is_ascii())
                .ok_or_else(|| FrameError::BadHeaderLine(shown()))?;
            let (name, value) = text
                .split_once(':')
                .ok_or_else(|| FrameError::BadHeaderLine(shown()))?;
            if name.is_empty() || name.contains(' ') {
                return Err(FrameError::BadHeaderLine(shown()));
            }
            if !name.eq_ignore_ascii_case("content-length") {
                continue;
            }
            if length.is_some() {
                return Err(FrameError::BadLength(format!(
                    "{} (given twice)",
                    value.trim()
                )));
            }
            let value = value.trim();
            // Digits only: no sign, no spaces inside, at most 19 of them (u64 without
            // overflow); `parse` alone would take a leading `+`.
            if value.is_empty() || value.len() > 19 || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(FrameError::BadLength(value.to_string()));
            }
            length = Some(value.parse::<u64>().unwrap());
        }
        length.ok_or(FrameError::MissingLength)
    }
}

impl Decoder for LspCodec {
    type Item = Frame;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        loop {
            match self.state {
                State::Header { scanned } => {
                    let from = scanned.saturating_sub(3);
                    let end = src[from..]
                        .windows(4)
                        .position(|w| w == b"\r\n\r\n")
                        .map(|i| from + i);
                    let Some(end) = end else {
                        if src.len() > self.max_header {
                            src.clear();
                            return Err(FrameError::HeaderTooLong {
                                max: self.max_header,
                            });
                        }
                        self.state = State::Header { scanned: src.len() };
                        return Ok(None);
                    };
                    if end + 4 > self.max_header {
                        src.clear();
                        return Err(FrameError::HeaderTooLong {
                            max: self.max_header,
                        });
                    }
                    let parsed = LspCodec::parse_header(&src[..end]);
                    src.advance(end + 4);
                    self.state = State::Header { scanned: 0 };
                    let len = parsed.inspect_err(|_| src.clear())?;
                    if len > self.max_body as u64 {
                        self.state = State::Skip(len);
                        return Ok(Some(Frame::Oversized {
                            len,
                            max: self.max_body,
                        }));
                    }
                    self.state = State::Body(len as usize);
                }
                State::Body(len) => {
                    if src.len() < len {
                        src.reserve(len - src.len());
                        return Ok(None);
                    }
                    self.state = State::Header { scanned: 0 };
                    return Ok(Some(Frame::Message(src.split_to(len))));
                }
                State::Skip(left) => {
                    let n = left.min(src.len() as u64);
                    src.advance(n as usize);
                    if n < left {
                        self.state = State::Skip(left - n);
                        return Ok(None);
                    }
                    self.state = State::Header { scanned: 0 };
                }
            }
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        if let Some(frame) = self.decode(src)? {
            return Ok(Some(frame));
        }
        let what = match self.state {
            State::Header { .. } if src.is_empty() => return Ok(None),
            State::Header { .. } => "header",
            State::Body(_) | State::Skip(_) => "body",
        };
        let have = src.len();
        src.clear();
        self.state = State::Header { scanned: 0 };
        Err(FrameError::Truncated { what, have })
    }
}

impl Encoder<Outgoing> for LspCodec {
    type Error = FrameError;

    fn encode(&mut self, item: Outgoing, dst: &mut BytesMut) -> Result<(), FrameError> {
        match item {
            Outgoing::Message(msg) => {
                let body = msg.to_text();
                dst.reserve(body.len() + 32);
                dst.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
                dst.extend_from_slice(body.as_bytes());
            }
            Outgoing::Raw(bytes) => dst.extend_from_slice(&bytes),
        }
        Ok(())
    }
}
