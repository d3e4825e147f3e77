//! The wire format both sides speak, a small cousin of Postgres's: every message is a tag
//! byte, a big-endian `u32` body length and the body.
//!
//! Client to server: `S` startup (`user\0password`), `Q` query (its text), `X` terminate,
//! and, as the first and only message of a connection of its own, `K` a cancel request (the
//! backend's pid and secret, two `u32`s). Server to client: `R` authenticated, `K` the
//! backend key (pid, secret), `D` a row (its text), `C` command complete (a `u32` row
//! count), `E` an error (its message), `Z` ready for the next query. A query's answer is
//! any number of `D`, then `C` or `E`, then `Z`.

use std::io;

use overlap::io::AsyncWriteIntExt;
use overlap::io::{AsyncRead, AsyncReadExt, AsyncReadIntExt, AsyncWrite, AsyncWriteExt};

/// The longest body either side accepts; a longer length is taken as garbage.
pub const MAX_BODY: u32 = 16 << 20;

pub const STARTUP: u8 = b'S';
pub const QUERY: u8 = b'Q';
pub const TERMINATE: u8 = b'X';
pub const CANCEL: u8 = b'K';
pub const AUTH_OK: u8 = b'R';
pub const BACKEND_KEY: u8 = b'K';
pub const ROW: u8 = b'D';
pub const COMPLETE: u8 = b'C';
pub const ERROR: u8 = b'E';
pub const READY: u8 = b'Z';

/// Writes one message into `w` (a buffered writer: the caller flushes).
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, tag: u8, body: &[u8]) -> io::Result<()> {
    let len = u32::try_from(body.len())
        .ok()
        .filter(|&n| n <= MAX_BODY)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "message body too long"))?;
    w.write_u8(tag).await?;
    w.write_u32(len).await?;
    w.write_all(body).await
}

/// Reads one message: its tag and body. Not cancel-safe (the number helpers and
/// `read_exact` lose what they took when dropped), which is why a connection whose read
/// was cut is never used again.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<(u8, Vec<u8>)> {
    let tag = r.read_u8().await?;
    let len = r.read_u32().await?;
    if len > MAX_BODY {
        let msg = format!("message of {len} bytes (tag {:?})", tag as char);
        return Err(io::Error::new(io::ErrorKind::InvalidData, msg));
    }
    let mut body = vec![0; len as usize];
    r.read_exact(&mut body).await?;
    Ok((tag, body))
}

/// A backend's key, which a cancel request quotes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackendKey {
    pub pid: u32,
    pub secret: u32,
}

impl BackendKey {
    pub fn to_bytes(self) -> [u8; 8] {
        let mut out = [0; 8];
        out[..4].copy_from_slice(&self.pid.to_be_bytes());
        out[4..].copy_from_slice(&self.secret.to_be_bytes());
        out
    }

    pub fn from_bytes(body: &[u8]) -> Option<BackendKey> {
        let body: &[u8; 8] = body.try_into().ok()?;
        let pid = u32::from_be_bytes(body[..4].try_into().unwrap());
        let secret = u32::from_be_bytes(body[4..].try_into().unwrap());
        Some(BackendKey { pid, secret })
    }
}
