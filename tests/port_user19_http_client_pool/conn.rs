//! One pooled HTTP/1.1 connection: the socket, the bytes read from it and not yet parsed,
//! and the non-blocking "is it still open?" check made before it is reused. Also the URL
//! parser (only `http://host:port/path`) and the limits the parser holds responses to.

use std::io::{self, ErrorKind};
use std::time::Duration;

use overlap::io::AsyncReadExt;
use overlap::net::TcpStream;
use overlap::time::Instant;

/// The largest status line plus headers (or chunked trailers) accepted, as hyper's default
/// `max_buf_size`'s head part; beyond it a response is refused with `InvalidData`.
pub const MAX_HEAD: usize = 8 * 1024;

/// What one read from the socket asks for at most.
const READ_CHUNK: usize = 8 * 1024;

/// An `InvalidData` error with `msg`: how every malformed response is reported.
pub fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, msg.into())
}

/// A parsed `http://host:port/path` URL: the pool key (`host:port`) and the request target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// `host:port`, the key of the pool's per-host slots and the `Host` header.
    pub authority: String,
    /// The origin-form target, `/` when the URL had none.
    pub path: String,
}

impl Url {
    /// Parses `s`; anything but `http://` with an explicit or default port is `InvalidInput`.
    pub fn parse(s: &str) -> io::Result<Url> {
        let bad = |why: &str| io::Error::new(ErrorKind::InvalidInput, format!("{why}: {s:?}"));
        let rest = s
            .strip_prefix("http://")
            .ok_or_else(|| bad("only http:// URLs"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() || authority.contains(|c: char| c.is_whitespace() || c == '@') {
            return Err(bad("bad host"));
        }
        if path.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(bad("bad path"));
        }
        // `[::1]:80` has its port after the bracket; `host` alone gets port 80.
        let has_port = match authority.rfind(']') {
            Some(b) => authority[b..].contains(':'),
            None => authority.contains(':'),
        };
        let authority = if has_port {
            let port = &authority[authority.rfind(':').unwrap() + 1..];
            port.parse::<u16>().map_err(|_| bad("bad port"))?;
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        Ok(Url {
            authority,
            path: path.to_string(),
        })
    }
}

/// A connection to one host, owned by the pool while idle and by one request while busy.
#[derive(Debug)]
pub struct Conn {
    /// The number the pool gave it, in the order connections were opened (from 1).
    pub id: u64,
    stream: TcpStream,
    /// Bytes read and not yet consumed by the parser.
    buf: Vec<u8>,
    /// When it was last given back to the pool.
    pub idle_since: Instant,
    /// Bytes read since the current request was sent.
    received: usize,
}

impl Conn {
    /// Wraps a freshly connected stream.
    pub fn new(id: u64, stream: TcpStream) -> Conn {
        stream.set_nodelay(true).ok();
        Conn {
            id,
            stream,
            buf: Vec::new(),
            idle_since: Instant::now(),
            received: 0,
        }
    }

    /// The socket, for writing a new request: the count of bytes received starts again.
    pub fn stream(&mut self) -> &mut TcpStream {
        self.received = 0;
        &mut self.stream
    }

    /// How many bytes came since the request was sent: 0 means the server never answered.
    pub fn received(&self) -> usize {
        self.received
    }

    /// Whether bytes the parser has not consumed are left over (the server sent more than
    /// the response it was asked for: the connection cannot be trusted again).
    pub fn has_leftover(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Checks, without waiting, that an idle connection is still usable: a read that would
    /// block means the server has said nothing, as it should; EOF (the server closed it
    /// while idle), bytes nobody asked for (an unsolicited `408`) or an error (a reset) all
    /// mean it is stale. The classic keep-alive bug is reusing it anyway.
    pub fn is_stale(&self) -> Option<&'static str> {
        let mut probe = [0u8; 1];
        match self.stream.try_read(&mut probe) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => None,
            Ok(0) => Some("closed by the server while idle"),
            Ok(_) => Some("unexpected bytes while idle"),
            Err(_) => Some("errored while idle"),
        }
    }

    /// Reads more from the socket onto the buffer; `Ok(0)` at EOF.
    pub async fn fill(&mut self) -> io::Result<usize> {
        let start = self.buf.len();
        self.buf.resize(start + READ_CHUNK, 0);
        let res = self.stream.read(&mut self.buf[start..]).await;
        let n = *res.as_ref().unwrap_or(&0);
        self.buf.truncate(start + n);
        self.received += n;
        res
    }

    /// Reads one CRLF-terminated line (given without the CRLF), refusing one that, with
    /// `used` bytes of the same head already read, would pass [`MAX_HEAD`]. `Ok(None)` if
    /// the connection ends before any byte of the line.
    pub async fn read_line(&mut self, used: usize) -> io::Result<Option<String>> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                if used + i + 2 > MAX_HEAD {
                    return Err(invalid(format!("response head over {MAX_HEAD} bytes")));
                }
                let line: Vec<u8> = self.buf.drain(..i + 2).take(i).collect();
                return String::from_utf8(line)
                    .map(Some)
                    .map_err(|_| invalid("response head is not UTF-8"));
            }
            if used + self.buf.len() > MAX_HEAD {
                return Err(invalid(format!("response head over {MAX_HEAD} bytes")));
            }
            if self.fill().await? == 0 {
                return match self.buf.is_empty() {
                    true => Ok(None),
                    false => Err(io::Error::new(
                        ErrorKind::UnexpectedEof,
                        "connection closed inside the response head",
                    )),
                };
            }
        }
    }

    /// Takes up to `max` buffered bytes, reading first if none are buffered; empty at EOF.
    pub async fn read_some(&mut self, max: usize) -> io::Result<Vec<u8>> {
        if self.buf.is_empty() && self.fill().await? == 0 {
            return Ok(Vec::new());
        }
        let n = max.min(self.buf.len());
        Ok(self.buf.drain(..n).collect())
    }

    /// Consumes exactly `want` bytes, which must be there (a chunk's CRLF).
    pub async fn expect(&mut self, want: &[u8], what: &str) -> io::Result<()> {
        while self.buf.len() < want.len() {
            if self.fill().await? == 0 {
                return Err(io::Error::new(
                    ErrorKind::UnexpectedEof,
                    format!("EOF before {what}"),
                ));
            }
        }
        if &self.buf[..want.len()] != want {
            return Err(invalid(format!("expected {what}")));
        }
        self.buf.drain(..want.len());
        Ok(())
    }

    /// Whether it has been idle for `limit` or longer at `now`.
    pub fn idle_expired(&self, now: Instant, limit: Duration) -> bool {
        now.duration_since(self.idle_since) >= limit
    }
}
