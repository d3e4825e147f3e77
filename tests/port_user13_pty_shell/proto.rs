//! The wire protocol: each frame a type byte, a 4-byte big-endian length and the payload,
//! as a tokio-util `Decoder`/`Encoder` pair. The client sends data, resizes and interrupts;
//! the server sends data, an error (a rejection, the idle timeout, the shutdown, a bad
//! frame) and, last, the shell's exit.

use std::io;

use overlap::codec::{BytesMut, Decoder, Encoder};

/// The longest payload either side accepts.
pub const MAX_PAYLOAD: usize = 64 * 1024;

/// How the shell ended, as the final frame says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Bytes for the terminal (from the client) or from it (from the server).
    Data(Vec<u8>),
    /// The terminal's new size, rows then columns.
    Resize { rows: u16, cols: u16 },
    /// Ctrl-C: the tty's interrupt character, through its line discipline.
    Interrupt,
    /// Why the server ends (or refuses) a session, in words.
    Error(String),
    /// The shell's end: the last frame of a session.
    Exit(Exit),
}

const DATA: u8 = b'D';
const RESIZE: u8 = b'R';
const INTERRUPT: u8 = b'I';
const ERROR: u8 = b'E';
const EXIT: u8 = b'X';

fn bad(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

#[derive(Debug, Default)]
pub struct FrameCodec;

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<Frame>> {
        if src.len() < 5 {
            return Ok(None);
        }
        let kind = src[0];
        let len = u32::from_be_bytes([src[1], src[2], src[3], src[4]]) as usize;
        if len > MAX_PAYLOAD {
            return Err(bad(format!("a frame of {len} bytes")));
        }
        if src.len() < 5 + len {
            src.reserve(5 + len - src.len());
            return Ok(None);
        }
        src.advance(5);
        let payload = src.split_to(len).freeze();
        let frame = match (kind, payload.len()) {
            (DATA, _) => Frame::Data(payload),
            (RESIZE, 4) => Frame::Resize {
                rows: u16::from_be_bytes([payload[0], payload[1]]),
                cols: u16::from_be_bytes([payload[2], payload[3]]),
            },
            (INTERRUPT, 0) => Frame::Interrupt,
            (ERROR, _) => Frame::Error(String::from_utf8_lossy(&payload).into_owned()),
            (EXIT, 5) => {
                let n = i32::from_be_bytes([payload[1], payload[2], payload[3], payload[4]]);
                match payload[0] {
                    0 => Frame::Exit(Exit::Code(n)),
                    1 => Frame::Exit(Exit::Signal(n)),
                    other => return Err(bad(format!("an exit of kind {other}"))),
                }
            }
            (RESIZE | INTERRUPT | EXIT, n) => {
                return Err(bad(format!("frame {:?} with {n} bytes", kind as char)))
            }
            (other, _) => return Err(bad(format!("unknown frame type {other:#04x}"))),
        };
        Ok(Some(frame))
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = io::Error;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> io::Result<()> {
        let (kind, payload): (u8, Vec<u8>) = match frame {
            Frame::Data(d) => (DATA, d),
            Frame::Resize { rows, cols } => {
                let mut p = rows.to_be_bytes().to_vec();
                p.extend_from_slice(&cols.to_be_bytes());
                (RESIZE, p)
            }
            Frame::Interrupt => (INTERRUPT, Vec::new()),
            Frame::Error(msg) => (ERROR, msg.into_bytes()),
            Frame::Exit(exit) => {
                let (k, n) = match exit {
                    Exit::Code(n) => (0u8, n),
                    Exit::Signal(n) => (1u8, n),
                };
                let mut p = vec![k];
                p.extend_from_slice(&n.to_be_bytes());
                (EXIT, p)
            }
        };
        if payload.len() > MAX_PAYLOAD {
            return Err(bad(format!("a frame of {} bytes", payload.len())));
        }
        dst.reserve(5 + payload.len());
        dst.put_u8(kind);
        dst.put_u32(payload.len() as u32);
        dst.extend_from_slice(&payload);
        Ok(())
    }
}
