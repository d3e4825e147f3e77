//! HTTP/1.1 on the wire, for the proxy, the upstreams and the clients alike: a message head
//! read off a stream (with the bytes read past it kept), its body's framing, and a body
//! relayed from one stream to another as it arrives.

use std::io;

use overlap::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The longest head taken; past it the message is malformed.
const MAX_HEAD: usize = 16 * 1024;

/// A request or status line and its headers, in order, names as sent.
#[derive(Clone, Debug)]
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

    /// The status code of a response head.
    pub fn status(&self) -> u16 {
        self.word(1).parse().unwrap_or(0)
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

    /// The framing of the body that follows a request head (`response_to: None`) or a
    /// response head to a request with method `Some(method)`.
    pub fn framing(&self, response_to: Option<&str>) -> io::Result<Framing> {
        if let Some(method) = response_to {
            let code = self.status();
            if method == "HEAD" || (100..200).contains(&code) || code == 204 || code == 304 {
                return Ok(Framing::Empty);
            }
        }
        let chunked = self.has_token("transfer-encoding", "chunked");
        match (chunked, self.get("content-length")) {
            (true, Some(_)) => Err(bad("both Content-Length and chunked")),
            (true, None) => Ok(Framing::Chunked),
            (false, Some(len)) => len
                .trim()
                .parse()
                .map(Framing::Length)
                .map_err(|_| bad("a Content-Length that is no number")),
            (false, None) if response_to.is_some() => Ok(Framing::UntilClose),
            (false, None) => Ok(Framing::Empty),
        }
    }
}

/// How a message's body ends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Framing {
    Empty,
    Length(u64),
    Chunked,
    /// A response without length: its body ends with the connection.
    UntilClose,
}

/// An `InvalidData` error saying what was malformed.
pub fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// Reads a head from `r`, `buf` holding the bytes read before and keeping those read past
/// it. `None` at a clean end of file before any byte; `InvalidData` for a malformed head.
pub async fn read_head<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
) -> io::Result<Option<Head>> {
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return Err(bad("a head too long"));
        }
        if fill(r, buf).await? == 0 {
            return match buf.is_empty() {
                true => Ok(None),
                false => Err(bad("end of file inside a head")),
            };
        }
    };
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| bad("a head not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let line = lines.next().unwrap_or("").to_string();
    if line.split(' ').count() < 3 || !line.contains("HTTP/1.") {
        return Err(bad("a malformed start line"));
    }
    let mut headers = Vec::new();
    for l in lines {
        let (n, v) = l
            .split_once(':')
            .ok_or_else(|| bad("a header without colon"))?;
        if n.is_empty() || n.contains(' ') {
            return Err(bad("a malformed header name"));
        }
        headers.push((n.to_string(), v.trim().to_string()));
    }
    buf.drain(..end + 4);
    Ok(Some(Head { line, headers }))
}

/// One read from `r` appended to `buf`; the count (0 at end of file).
async fn fill<R: AsyncRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> io::Result<usize> {
    let mut chunk = [0u8; 16 * 1024];
    let n = r.read(&mut chunk).await?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

/// Reads a line ending in CRLF (without it) from `r` through `buf`.
async fn read_line<R: AsyncRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> io::Result<String> {
    loop {
        if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8(buf[..i].to_vec()).map_err(|_| bad("a chunk line"))?;
            buf.drain(..i + 2);
            return Ok(line);
        }
        if buf.len() > 1024 {
            return Err(bad("a chunk line too long"));
        }
        if fill(r, buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// Moves exactly `n` bytes from `r` (the front of `buf` first) to `w`.
async fn relay_exact<R, W>(r: &mut R, buf: &mut Vec<u8>, w: &mut W, n: u64) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let first = buf.len().min(n as usize);
    w.write_all(&buf[..first]).await?;
    buf.drain(..first);
    let rest = n - first as u64;
    let moved = overlap::io::copy(r.take(rest), w).await?;
    if moved < rest {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

/// Relays a body framed as `framing` from `r` (through `buf`) to `w` as it arrives, a
/// chunked one chunk by chunk (re-encoded, trailers dropped); flushes `w` at the end.
pub async fn relay_body<R, W>(
    r: &mut R,
    buf: &mut Vec<u8>,
    w: &mut W,
    framing: Framing,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    match framing {
        Framing::Empty => {}
        Framing::Length(n) => relay_exact(r, buf, w, n).await?,
        Framing::UntilClose => {
            w.write_all(buf).await?;
            buf.clear();
            overlap::io::copy(r, w).await?;
        }
        Framing::Chunked => loop {
            let line = read_line(r, buf).await?;
            let size = line.split(';').next().unwrap_or("").trim();
            let size = u64::from_str_radix(size, 16).map_err(|_| bad("a chunk size"))?;
            if size == 0 {
                while !read_line(r, buf).await?.is_empty() {} // trailers, dropped
                w.write_all(b"0\r\n\r\n").await?;
                break;
            }
            w.write_all(format!("{size:x}\r\n").as_bytes()).await?;
            relay_exact(r, buf, w, size).await?;
            if !read_line(r, buf).await?.is_empty() {
                return Err(bad("no CRLF after a chunk"));
            }
            w.write_all(b"\r\n").await?;
            w.flush().await?;
        },
    }
    w.flush().await
}

/// Reads a whole body framed as `framing` into memory.
pub async fn read_body<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    framing: Framing,
) -> io::Result<Vec<u8>> {
    let mut out = overlap::io::Cursor::new(Vec::new());
    relay_body(r, buf, &mut out, framing).await?;
    let raw = out.into_inner();
    if framing != Framing::Chunked {
        return Ok(raw);
    }
    // Decode the re-encoded chunks again.
    let mut body = Vec::new();
    let mut rest = &raw[..];
    loop {
        let i = rest.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..i]).unwrap(), 16).unwrap();
        rest = &rest[i + 2..];
        if size == 0 {
            break;
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
    Ok(body)
}

/// `data` in chunked encoding, cut into pieces of `piece` bytes.
pub fn chunked(data: &[u8], piece: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for c in data.chunks(piece) {
        out.extend_from_slice(format!("{:x};ext=1\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\nX-Trailer: dropped\r\n\r\n");
    out
}
