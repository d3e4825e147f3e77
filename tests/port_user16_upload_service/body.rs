//! A request body, streamed: with a `Content-Length` or chunked (RFC 9112 7.1), handed out
//! piece by piece straight from the connection's read buffer, never gathered whole. Each
//! wait for bytes is bounded by an idle timeout.

use std::time::Duration;

use overlap::io::{self, AsyncBufRead, AsyncBufReadExt, AsyncReadExt};
use overlap::time::timeout;

use super::http::Framing;

/// The longest chunk-size line (with its extensions), and the most trailer bytes.
const MAX_CHUNK_LINE: u64 = 1024;
const MAX_TRAILERS: u64 = 8 * 1024;

/// Why a body could not be read to its end.
#[derive(Debug)]
pub enum BodyError {
    /// The client closed (or reset) the connection part way.
    Vanished(io::Error),
    /// A bad chunk-size line, a chunk not followed by CRLF, bad trailers: 400.
    Malformed(&'static str),
    /// No byte came for the idle timeout.
    Idle,
}

impl From<io::Error> for BodyError {
    fn from(e: io::Error) -> BodyError {
        BodyError::Vanished(e)
    }
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// `left` bytes of data to go: of the whole body, or of the current chunk.
    Data {
        left: u64,
        chunked: bool,
    },
    /// A chunk's data ended: its CRLF, then the next size line.
    ChunkEnd,
    ChunkSize,
    Done,
}

/// A body being read. Call [`next`](Body::next) for a piece, then
/// [`consume`](Body::consume) with how much of it was used, until `next` gives `None`.
#[derive(Debug)]
pub struct Body {
    state: State,
    idle: Duration,
    /// Data bytes handed out and consumed so far.
    pub taken: u64,
}

impl Body {
    pub fn new(framing: Framing, idle: Duration) -> Body {
        let state = match framing {
            Framing::None => State::Done,
            Framing::Length(n) => State::Data {
                left: n,
                chunked: false,
            },
            Framing::Chunked => State::ChunkSize,
        };
        Body {
            state,
            idle,
            taken: 0,
        }
    }

    /// The next piece of the body, borrowed from `r`'s buffer (at most what is buffered
    /// and what is left of the chunk), or `None` at the body's end.
    pub async fn next<'r, R: AsyncBufRead + Unpin>(
        &mut self,
        r: &'r mut R,
    ) -> Result<Option<&'r [u8]>, BodyError> {
        loop {
            match self.state {
                State::Done => return Ok(None),
                State::Data { left: 0, chunked } => {
                    self.state = if chunked {
                        State::ChunkEnd
                    } else {
                        State::Done
                    };
                }
                State::ChunkEnd => {
                    let mut crlf = [0u8; 2];
                    self.idle(r.read_exact(&mut crlf)).await?;
                    if &crlf != b"\r\n" {
                        return Err(BodyError::Malformed("a chunk not followed by CRLF"));
                    }
                    self.state = State::ChunkSize;
                }
                State::ChunkSize => {
                    let size = self.chunk_size(r).await?;
                    if size == 0 {
                        self.trailers(r).await?;
                        self.state = State::Done;
                    } else {
                        self.state = State::Data {
                            left: size,
                            chunked: true,
                        };
                    }
                }
                State::Data { .. } => break,
            }
        }
        let State::Data { left, .. } = self.state else {
            unreachable!()
        };
        let idle = self.idle;
        let buf = match timeout(idle, r.fill_buf()).await {
            Err(_) => return Err(BodyError::Idle),
            Ok(Err(e)) => return Err(BodyError::Vanished(e)),
            Ok(Ok(buf)) => buf,
        };
        if buf.is_empty() {
            return Err(BodyError::Vanished(io::ErrorKind::UnexpectedEof.into()));
        }
        let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        Ok(Some(&buf[..n]))
    }

    /// Marks `n` bytes of the piece `next` gave as used.
    pub fn consume<R: AsyncBufRead + Unpin>(&mut self, r: &mut R, n: usize) {
        let State::Data { left, chunked } = self.state else {
            panic!("consume without a piece");
        };
        // tokio's `rd.consume(n)`: futures' `consume` takes `Pin<&mut Self>`.
        r.consume_unpin(n);
        self.taken += n as u64;
        self.state = State::Data {
            left: left - n as u64,
            chunked,
        };
    }

    async fn idle<T>(
        &self,
        op: impl std::future::Future<Output = io::Result<T>>,
    ) -> Result<T, BodyError> {
        match timeout(self.idle, op).await {
            Err(_) => Err(BodyError::Idle),
            Ok(r) => Ok(r?),
        }
    }

    /// Reads a line of at most `max` bytes ending in CRLF, without it.
    async fn line<R: AsyncBufRead + Unpin>(
        &self,
        r: &mut R,
        max: u64,
        what: &'static str,
    ) -> Result<Vec<u8>, BodyError> {
        let mut line = Vec::new();
        let n = self
            .idle((&mut *r).take(max).read_until(b'\n', &mut line))
            .await?;
        if n == 0 {
            return Err(BodyError::Vanished(io::ErrorKind::UnexpectedEof.into()));
        }
        match line.strip_suffix(b"\r\n") {
            Some(l) => Ok(l.to_vec()),
            None if line.len() as u64 == max => Err(BodyError::Malformed(what)),
            None if line.ends_with(b"\n") => Err(BodyError::Malformed("a bare LF in the framing")),
            None => Err(BodyError::Vanished(io::ErrorKind::UnexpectedEof.into())),
        }
    }

    async fn chunk_size<R: AsyncBufRead + Unpin>(&self, r: &mut R) -> Result<u64, BodyError> {
        let line = self
            .line(r, MAX_CHUNK_LINE, "a chunk-size line too long")
            .await?;
        // Extensions (`;name=value`) are allowed and ignored.
        let size = line.split(|&b| b == b';').next().unwrap().trim_ascii_end();
        if size.is_empty() || size.len() > 15 || !size.iter().all(u8::is_ascii_hexdigit) {
            return Err(BodyError::Malformed("a bad chunk size"));
        }
        Ok(u64::from_str_radix(std::str::from_utf8(size).unwrap(), 16).unwrap())
    }

    /// The trailer section after the last chunk, read and ignored, up to its empty line.
    async fn trailers<R: AsyncBufRead + Unpin>(&self, r: &mut R) -> Result<(), BodyError> {
        let mut total = 0;
        loop {
            let line = self
                .line(r, MAX_TRAILERS - total, "trailers too long")
                .await?;
            if line.is_empty() {
                return Ok(());
            }
            if !line.contains(&b':') {
                return Err(BodyError::Malformed("a trailer without a colon"));
            }
            total += line.len() as u64 + 2;
        }
    }
}
