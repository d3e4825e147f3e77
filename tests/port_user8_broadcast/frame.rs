//! The frames after the upgrade: a kind byte, a big-endian `u32` length, the payload. The
//! server sends text, pings, lag notices (how many messages were skipped, a `u64`) and a
//! close with its reason; a client sends text (published to everyone), pongs and a close.

use overlap::io::{AsyncRead, AsyncReadExt};

pub const TEXT: u8 = 1;
pub const PING: u8 = 2;
pub const PONG: u8 = 3;
pub const CLOSE: u8 = 4;
pub const LAGGED: u8 = 5;

/// The biggest payload either side takes.
pub const MAX_PAYLOAD: usize = 64 * 1024;

/// A frame as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Text(Vec<u8>),
    Ping,
    Pong,
    Close(String),
    Lagged(u64),
}

pub fn encode(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + payload.len());
    out.push(kind);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

pub fn close(reason: &str) -> Vec<u8> {
    encode(CLOSE, reason.as_bytes())
}

/// What a read of the next frame found instead of one.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadEnd {
    /// The stream ended between two frames.
    Eof,
    /// The stream ended (or failed) inside a frame.
    Cut,
    /// The peer broke the protocol; the reason is what the close frame says.
    Protocol(String),
}

/// Reads one frame. Not cancel-safe (a frame cut by a drop is lost), so the server reads in
/// a future of its own, never as a `select!` branch.
pub async fn read_frame(rd: &mut (impl AsyncRead + Unpin)) -> Result<Frame, ReadEnd> {
    let mut head = [0u8; 5];
    let mut got = 0;
    while got < head.len() {
        match rd.read(&mut head[got..]).await {
            Ok(0) if got == 0 => return Err(ReadEnd::Eof),
            Ok(0) | Err(_) => return Err(ReadEnd::Cut),
            Ok(n) => got += n,
        }
    }
    let len = u32::from_be_bytes(head[1..].try_into().unwrap()) as usize;
    if !matches!(head[0], TEXT..=LAGGED) {
        let reason = format!("protocol error: unknown frame kind {:#04x}", head[0]);
        return Err(ReadEnd::Protocol(reason));
    }
    if len > MAX_PAYLOAD {
        let reason =
            format!("protocol error: a frame of {len} bytes, over the {MAX_PAYLOAD} limit");
        return Err(ReadEnd::Protocol(reason));
    }
    let mut payload = vec![0; len];
    rd.read_exact(&mut payload)
        .await
        .map_err(|_| ReadEnd::Cut)?;
    Ok(match head[0] {
        TEXT => Frame::Text(payload),
        PING => Frame::Ping,
        PONG => Frame::Pong,
        CLOSE => Frame::Close(String::from_utf8_lossy(&payload).into_owned()),
        _ => match <[u8; 8]>::try_from(payload.as_slice()) {
            Ok(n) => Frame::Lagged(u64::from_be_bytes(n)),
            Err(_) => return Err(ReadEnd::Protocol("protocol error: a bad lag notice".into())),
        },
    })
}
