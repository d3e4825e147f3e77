//! HTTP/1.1 on the wire, hand-rolled as the user did (no hyper, no httparse): a buffered
//! connection that reads message heads under a size limit, the body framing a head
//! announces, and bodies relayed from one connection to another piece by piece
//! (Content-Length or chunked, re-chunked on the way), never held whole.

use std::io;

use overlap::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How much of a body is read (and so held) at once while relaying it.
pub const RELAY_CHUNK: usize = 16 * 1024;
/// The longest chunk-size line (with extensions) or trailer line taken.
const MAX_CHUNK_LINE: usize = 1024;

/// The headers a proxy must not pass on (RFC 9110 7.6.1), with those a `Connection`
/// header names; `Transfer-Encoding` is redone per hop.
pub const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Why a head could not be read.
#[derive(Debug)]
pub enum HeadError {
    /// End of file inside a head (not before its first byte: that is `Ok(None)`).
    Truncated,
    /// More than the limit without the blank line: 431 for a request.
    TooLarge,
    /// Not HTTP/1.x: 400 for a request, 502 for a response.
    Malformed(&'static str),
    Io(io::Error),
}

/// A request or status line and its headers, in order, names as sent.
#[derive(Clone, Debug, PartialEq)]
pub struct Head {
    pub line: String,
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first value of header `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether header `name` lists `token` (comma-separated, case-insensitive).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// The line's `n`th space-separated word (method, target, version; or version, code).
    pub fn word(&self, n: usize) -> &str {
        self.line.split(' ').nth(n).unwrap_or("")
    }

    pub fn method(&self) -> &str {
        self.word(0)
    }

    pub fn target(&self) -> &str {
        self.word(1)
    }

    pub fn status(&self) -> u16 {
        self.word(1).parse().unwrap_or(0)
    }

    /// Whether the connection may carry another message after this one.
    pub fn keeps_alive(&self, version_word: usize) -> bool {
        if self.word(version_word) == "HTTP/1.0" {
            self.has_token("connection", "keep-alive")
        } else {
            !self.has_token("connection", "close")
        }
    }

    pub fn remove(&mut self, name: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.remove(name);
        self.headers.push((name.to_string(), value.into()));
    }

    /// Drops the hop-by-hop headers and those `Connection` names.
    pub fn strip_hop_by_hop(&mut self) {
        let named: Vec<String> = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
            .flat_map(|(_, v)| v.split(','))
            .map(|t| t.trim().to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .collect();
        self.headers.retain(|(n, _)| {
            let n = n.to_ascii_lowercase();
            !HOP_BY_HOP.contains(&n.as_str()) && !named.contains(&n)
        });
    }

    /// The head as sent: line, headers, blank line.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = format!("{}\r\n", self.line);
        for (n, v) in &self.headers {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
        out.push_str("\r\n");
        out.into_bytes()
    }

    /// The framing of a request's body.
    pub fn request_framing(&self) -> Result<Framing, &'static str> {
        self.framing(false)
    }

    /// The framing of the body after this response head, to a request of `method`.
    pub fn response_framing(&self, method: &str) -> Result<Framing, &'static str> {
        let code = self.status();
        if method == "HEAD" || (100..200).contains(&code) || code == 204 || code == 304 {
            return Ok(Framing::Empty);
        }
        self.framing(true)
    }

    fn framing(&self, response: bool) -> Result<Framing, &'static str> {
        let te: Vec<&str> = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"))
            .map(|(_, v)| v.trim())
            .collect();
        let lengths: Vec<&str> = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.trim())
            .collect();
        match (te.as_slice(), lengths.as_slice()) {
            ([], []) if response => Ok(Framing::UntilClose),
            ([], []) => Ok(Framing::Empty),
            ([te], []) if te.eq_ignore_ascii_case("chunked") => Ok(Framing::Chunked),
            ([_, ..], []) => Err("a transfer coding other than chunked"),
            ([_, ..], [_, ..]) => Err("both Content-Length and Transfer-Encoding"),
            ([], [first, rest @ ..]) => {
                if rest.iter().any(|l| l != first) {
                    return Err("Content-Length given twice, differently");
                }
                if first.is_empty() || !first.bytes().all(|b| b.is_ascii_digit()) {
                    return Err("a Content-Length that is no number");
                }
                first
                    .parse()
                    .map(Framing::Length)
                    .map_err(|_| "a Content-Length too large")
            }
        }
    }
}

/// How a body is delimited.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Framing {
    Empty,
    Length(u64),
    Chunked,
    /// A response without a length: it ends with the connection.
    UntilClose,
}

/// Checks a request head: `METHOD SP /target SP HTTP/1.x`, header names tokens.
pub fn check_request(head: &Head) -> Result<(), &'static str> {
    let words: Vec<&str> = head.line.split(' ').collect();
    let [method, target, version] = words.as_slice() else {
        return Err("a request line not of three words");
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err("a bad method");
    }
    if !target.starts_with('/') || target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err("a bad request target");
    }
    if *version != "HTTP/1.1" && *version != "HTTP/1.0" {
        return Err("not HTTP/1.x");
    }
    Ok(())
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Parses the head in `raw` (without its blank line).
fn parse_head(raw: &[u8]) -> Result<Head, HeadError> {
    let text = std::str::from_utf8(raw).map_err(|_| HeadError::Malformed("a head not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let line = lines.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    for l in lines {
        let Some((name, value)) = l.split_once(':') else {
            return Err(HeadError::Malformed("a header line without a colon"));
        };
        if !is_token(name) {
            return Err(HeadError::Malformed("a bad header name"));
        }
        if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(HeadError::Malformed("a bad header value"));
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
    Ok(Head { line, headers })
}

/// A connection and the bytes read from it past the last message taken.
pub struct Conn<S> {
    pub io: S,
    buf: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    pub fn new(io: S) -> Conn<S> {
        Conn {
            io,
            buf: Vec::new(),
        }
    }

    /// Bytes read ahead, not yet taken.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Reads into the read-ahead; `Ok(0)` at end of file. Cancel-safe: a read either
    /// completed and its bytes are kept, or took none.
    async fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 8 * 1024];
        let n = self.io.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// The next head, at most `limit` bytes with its blank line; `Ok(None)` at end of file
    /// before its first byte. Cancel-safe (between reads nothing is lost).
    pub async fn read_head(&mut self, limit: usize) -> Result<Option<Head>, HeadError> {
        let mut searched: usize = 0;
        loop {
            // Lenient as RFC 9112 allows: a request line may follow stray CRLFs.
            while self.buf.starts_with(b"\r\n") {
                self.buf.drain(..2);
                searched = 0;
            }
            if let Some(p) = find(&self.buf[searched.saturating_sub(3)..], b"\r\n\r\n") {
                let end = searched.saturating_sub(3) + p;
                if end + 4 > limit {
                    return Err(HeadError::TooLarge);
                }
                let head = parse_head(&self.buf[..end]);
                self.buf.drain(..end + 4);
                return head.map(Some);
            }
            if self.buf.len() >= limit {
                return Err(HeadError::TooLarge);
            }
            searched = self.buf.len();
            match self.fill().await {
                Ok(0) if self.buf.is_empty() => return Ok(None),
                Ok(0) => return Err(HeadError::Truncated),
                Ok(_) => {}
                Err(e) => return Err(HeadError::Io(e)),
            }
        }
    }

    /// Up to `max` bytes of body: the read-ahead first, else one read; empty at EOF.
    async fn take(&mut self, max: usize) -> io::Result<Vec<u8>> {
        if self.buf.is_empty() && self.fill().await? == 0 {
            return Ok(Vec::new());
        }
        let n = max.min(self.buf.len());
        Ok(self.buf.drain(..n).collect())
    }

    /// One CRLF-terminated line (without it), at most [`MAX_CHUNK_LINE`] bytes.
    async fn line(&mut self) -> Result<String, RelayError> {
        loop {
            if let Some(p) = find(&self.buf, b"\r\n") {
                let line = String::from_utf8(self.buf[..p].to_vec())
                    .map_err(|_| RelayError::Malformed("a chunk line not UTF-8"))?;
                self.buf.drain(..p + 2);
                return Ok(line);
            }
            if self.buf.len() > MAX_CHUNK_LINE {
                return Err(RelayError::Malformed("a chunk line too long"));
            }
            match self.fill().await {
                Ok(0) => return Err(RelayError::SourceEof),
                Ok(_) => {}
                Err(e) => return Err(RelayError::Source(e)),
            }
        }
    }

    pub async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.io.write_all(bytes).await
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Why a body relay stopped short.
#[derive(Debug)]
pub enum RelayError {
    /// The source ended before the body did.
    SourceEof,
    Source(io::Error),
    /// The body's framing was broken (a bad chunk size, say).
    Malformed(&'static str),
    /// The destination refused a write.
    Sink(io::Error),
}

impl std::fmt::Display for RelayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RelayError::SourceEof => f.write_str("the body's source closed early"),
            RelayError::Source(e) => write!(f, "reading the body: {e}"),
            RelayError::Malformed(why) => f.write_str(why),
            RelayError::Sink(e) => write!(f, "writing the body: {e}"),
        }
    }
}

impl std::fmt::Display for HeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeadError::Truncated => f.write_str("a head cut short"),
            HeadError::TooLarge => f.write_str("a head too large"),
            HeadError::Malformed(why) => f.write_str(why),
            HeadError::Io(e) => write!(f, "reading a head: {e}"),
        }
    }
}

/// Parses a chunk-size line: hex digits, then optional `;extensions`.
pub fn chunk_size(line: &str) -> Result<u64, RelayError> {
    let digits = line
        .split(';')
        .next()
        .unwrap_or("")
        .trim_end_matches([' ', '\t']);
    if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(RelayError::Malformed("a bad chunk size"));
    }
    Ok(u64::from_str_radix(digits, 16).expect("checked hex"))
}

/// Relays a body framed `from` out of `src` into `dst`, framed `to` (`Chunked` or as it
/// came), [`RELAY_CHUNK`] bytes at most at a time; `progress` sees every piece's length.
/// Returns the body's length.
pub async fn relay_body<S, W>(
    src: &mut Conn<S>,
    dst: &mut W,
    from: Framing,
    to: Framing,
    mut progress: impl FnMut(usize),
) -> Result<u64, RelayError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    W: AsyncWrite + Unpin,
{
    let rechunk = to == Framing::Chunked;
    let mut total = 0u64;
    match from {
        Framing::Empty => {}
        Framing::Length(len) => {
            while total < len {
                let want = (len - total).min(RELAY_CHUNK as u64) as usize;
                let piece = src.take(want).await.map_err(RelayError::Source)?;
                if piece.is_empty() {
                    return Err(RelayError::SourceEof);
                }
                put(dst, &piece, rechunk).await?;
                total += piece.len() as u64;
                progress(piece.len());
            }
        }
        Framing::UntilClose => loop {
            let piece = src.take(RELAY_CHUNK).await.map_err(RelayError::Source)?;
            if piece.is_empty() {
                break;
            }
            put(dst, &piece, rechunk).await?;
            total += piece.len() as u64;
            progress(piece.len());
        },
        Framing::Chunked => loop {
            let size = chunk_size(&src.line().await?)?;
            if size == 0 {
                // Trailers are dropped: none of this gateway's routes use them.
                while !src.line().await?.is_empty() {}
                break;
            }
            let mut left = size;
            while left > 0 {
                let piece = src
                    .take(left.min(RELAY_CHUNK as u64) as usize)
                    .await
                    .map_err(RelayError::Source)?;
                if piece.is_empty() {
                    return Err(RelayError::SourceEof);
                }
                put(dst, &piece, rechunk).await?;
                left -= piece.len() as u64;
                total += piece.len() as u64;
                progress(piece.len());
            }
            if !src.line().await?.is_empty() {
                return Err(RelayError::Malformed("a chunk longer than its size"));
            }
        },
    }
    if rechunk {
        dst.write_all(b"0\r\n\r\n")
            .await
            .map_err(RelayError::Sink)?;
    }
    dst.flush().await.map_err(RelayError::Sink)?;
    Ok(total)
}

/// Writes one piece of a body, as a chunk of its own if `rechunk`.
async fn put<W: AsyncWrite + Unpin>(
    dst: &mut W,
    piece: &[u8],
    rechunk: bool,
) -> Result<(), RelayError> {
    if rechunk {
        let size = format!("{:x}\r\n", piece.len());
        dst.write_all(size.as_bytes())
            .await
            .map_err(RelayError::Sink)?;
        dst.write_all(piece).await.map_err(RelayError::Sink)?;
        dst.write_all(b"\r\n").await.map_err(RelayError::Sink)
    } else {
        dst.write_all(piece).await.map_err(RelayError::Sink)
    }
}

/// A whole response of the gateway's own: `status`, a text body, `extra` headers.
pub fn simple_response(status: u16, body: &str, extra: &[(&str, String)], close: bool) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    };
    let mut head = Head {
        line: format!("HTTP/1.1 {status} {reason}"),
        headers: vec![
            ("Content-Type".into(), "text/plain".into()),
            ("Content-Length".into(), body.len().to_string()),
        ],
    };
    for (n, v) in extra {
        head.headers.push((n.to_string(), v.clone()));
    }
    if close {
        head.headers.push(("Connection".into(), "close".into()));
    }
    let mut out = head.encode();
    out.extend_from_slice(body.as_bytes());
    out
}
