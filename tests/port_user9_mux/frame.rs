//! The wire format: a 10-byte header (kind, flags, stream id, a 32-bit value) and, for a
//! data frame, `value` bytes of payload.

use std::io;

use overlap::io::{AsyncRead, AsyncReadExt};

/// Payload bytes, its length in `value`.
pub const DATA: u8 = 0;
/// `value` more bytes the sender may send on the stream.
pub const WINDOW_UPDATE: u8 = 1;
/// An opaque `value` to echo with `ACK` (stream 0).
pub const PING: u8 = 2;
/// No new streams from now on; `value` a code (stream 0).
pub const GO_AWAY: u8 = 3;

/// Opens a stream.
pub const SYN: u8 = 1;
/// Answers a ping.
pub const ACK: u8 = 2;
/// The sender writes no more on the stream (half-close).
pub const FIN: u8 = 4;
/// The stream is abandoned: both directions fail.
pub const RST: u8 = 8;

/// The header's length on the wire.
pub const HEADER: usize = 10;
/// The largest data frame a sender makes, and a receiver takes.
pub const MAX_DATA: usize = 16 * 1024;

/// One frame, as queued for the writer or read by the reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub id: u32,
    pub value: u32,
    pub data: Vec<u8>,
}

impl Frame {
    pub fn data(id: u32, flags: u8, data: Vec<u8>) -> Frame {
        let value = data.len() as u32;
        Frame {
            kind: DATA,
            flags,
            id,
            value,
            data,
        }
    }

    pub fn control(kind: u8, flags: u8, id: u32, value: u32) -> Frame {
        Frame {
            kind,
            flags,
            id,
            value,
            data: Vec::new(),
        }
    }

    pub fn header(&self) -> [u8; HEADER] {
        let mut h = [0; HEADER];
        h[0] = self.kind;
        h[1] = self.flags;
        h[2..6].copy_from_slice(&self.id.to_be_bytes());
        h[6..10].copy_from_slice(&self.value.to_be_bytes());
        h
    }

    /// Reads one frame; `Ok(None)` at a clean end of file between frames.
    pub async fn read<R: AsyncRead + Unpin>(rd: &mut R) -> io::Result<Option<Frame>> {
        let mut h = [0u8; HEADER];
        // The first byte apart: an end of file here is a clean close, inside a frame not.
        if rd.read(&mut h[..1]).await? == 0 {
            return Ok(None);
        }
        rd.read_exact(&mut h[1..]).await?;
        let id = u32::from_be_bytes(h[2..6].try_into().unwrap());
        let value = u32::from_be_bytes(h[6..10].try_into().unwrap());
        let (kind, flags) = (h[0], h[1]);
        if kind > GO_AWAY {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unknown frame kind {kind}"),
            ));
        }
        let mut data = Vec::new();
        if kind == DATA {
            if value as usize > MAX_DATA {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("data frame of {value} bytes, past {MAX_DATA}"),
                ));
            }
            data = vec![0; value as usize];
            rd.read_exact(&mut data).await?;
        }
        Ok(Some(Frame {
            kind,
            flags,
            id,
            value,
            data,
        }))
    }
}
