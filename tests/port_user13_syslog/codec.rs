//! RFC 6587's two framings of syslog over TCP, told apart by a connection's first byte: a
//! digit starts octet counting (`LEN SP MSG`), `<` the non-transparent framing (each
//! message ended by LF, a CR before it dropped, empty lines skipped). A frame over the
//! maximum, or bytes that fit neither, are an error: the connection is closed.

use std::fmt;
use std::io;

use overlap::codec::{BytesMut, Decoder, Encoder};

/// The most digits a frame's length may have (RFC 6587's lengths fit in far fewer).
const MAX_LEN_DIGITS: usize = 6;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    Unknown,
    OctetCounting,
    NonTransparent,
}

#[derive(Debug)]
pub enum FrameError {
    TooLong {
        len: usize,
        max: usize,
    },
    Garbage(String),
    /// The connection ended inside an octet-counted frame.
    Truncated,
    Io(io::Error),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLong { len, max } => {
                write!(f, "frame of {len} bytes over the maximum of {max}")
            }
            FrameError::Garbage(what) => write!(f, "garbage: {what}"),
            FrameError::Truncated => write!(f, "connection ended inside a frame"),
            FrameError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl From<io::Error> for FrameError {
    fn from(e: io::Error) -> FrameError {
        FrameError::Io(e)
    }
}

pub struct SyslogCodec {
    framing: Framing,
    max: usize,
}

impl SyslogCodec {
    pub fn new(max: usize) -> SyslogCodec {
        SyslogCodec {
            framing: Framing::Unknown,
            max,
        }
    }

    pub fn framing(&self) -> Framing {
        self.framing
    }

    fn octet_counted(&mut self, src: &mut BytesMut) -> Result<Option<Vec<u8>>, FrameError> {
        let head = &src[..src.len().min(MAX_LEN_DIGITS + 1)];
        let Some(space) = head.iter().position(|&b| b == b' ') else {
            if head.len() > MAX_LEN_DIGITS || !head.iter().all(u8::is_ascii_digit) {
                return Err(FrameError::Garbage(format!(
                    "not a frame length: {:?}",
                    String::from_utf8_lossy(head)
                )));
            }
            return Ok(None);
        };
        let digits = &head[..space];
        if digits.is_empty() || digits[0] == b'0' || !digits.iter().all(u8::is_ascii_digit) {
            return Err(FrameError::Garbage(format!(
                "not a frame length: {:?}",
                String::from_utf8_lossy(digits)
            )));
        }
        let len: usize = std::str::from_utf8(digits).unwrap().parse().unwrap();
        if len > self.max {
            return Err(FrameError::TooLong { len, max: self.max });
        }
        if src.len() < space + 1 + len {
            src.reserve(space + 1 + len - src.len());
            return Ok(None);
        }
        src.advance(space + 1);
        Ok(Some(src.split_to(len).freeze()))
    }

    fn line(&mut self, src: &mut BytesMut) -> Result<Option<Vec<u8>>, FrameError> {
        loop {
            let Some(lf) = src.iter().position(|&b| b == b'\n') else {
                if src.len() > self.max {
                    return Err(FrameError::TooLong {
                        len: src.len(),
                        max: self.max,
                    });
                }
                return Ok(None);
            };
            let mut frame = src.split_to(lf + 1).freeze();
            frame.pop();
            if frame.last() == Some(&b'\r') {
                frame.pop();
            }
            if frame.len() > self.max {
                return Err(FrameError::TooLong {
                    len: frame.len(),
                    max: self.max,
                });
            }
            if !frame.is_empty() {
                return Ok(Some(frame));
            }
        }
    }
}

impl Decoder for SyslogCodec {
    type Item = Vec<u8>;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Vec<u8>>, FrameError> {
        let Some(&first) = src.first() else {
            return Ok(None);
        };
        if self.framing == Framing::Unknown {
            self.framing = match first {
                b'0'..=b'9' => Framing::OctetCounting,
                b'<' => Framing::NonTransparent,
                other => {
                    return Err(FrameError::Garbage(format!(
                        "a connection may not start with {other:#04x}"
                    )))
                }
            };
        }
        match self.framing {
            Framing::OctetCounting => self.octet_counted(src),
            _ => self.line(src),
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Vec<u8>>, FrameError> {
        if let Some(frame) = self.decode(src)? {
            return Ok(Some(frame));
        }
        if src.is_empty() {
            return Ok(None);
        }
        match self.framing {
            // The last message may lack its LF (rsyslog takes it so too).
            Framing::NonTransparent => Ok(Some(src.split().freeze())),
            _ => Err(FrameError::Truncated),
        }
    }
}

/// Octet counting, for the forwarder (and the tests' senders).
impl Encoder<&[u8]> for SyslogCodec {
    type Error = FrameError;

    fn encode(&mut self, msg: &[u8], dst: &mut BytesMut) -> Result<(), FrameError> {
        dst.extend_from_slice(format!("{} ", msg.len()).as_bytes());
        dst.extend_from_slice(msg);
        Ok(())
    }
}

pub fn octet_frame(msg: &[u8]) -> Vec<u8> {
    let mut out = format!("{} ", msg.len()).into_bytes();
    out.extend_from_slice(msg);
    out
}
