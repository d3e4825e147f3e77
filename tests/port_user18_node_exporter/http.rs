//! The little HTTP/1.1 the exporter speaks, by hand as many small exporters do: request
//! heads read up to a size limit (the bytes after a head stay buffered for the next
//! request, so pipelined requests work), parsed into method, path and the few headers that
//! matter (`Connection`, `Content-Length`, `Transfer-Encoding`), and responses with a
//! `Content-Length`. `Accept-Encoding` is ignored: bodies go out uncompressed.

use std::io;

use overlap::io::{AsyncRead, AsyncReadExt};

/// A parsed request head.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    /// The target's path, without any query string.
    pub path: String,
    /// Whether the connection may carry another request after this one.
    pub keep_alive: bool,
    /// Whether a body follows (which this server never reads, so it closes afterwards).
    pub has_body: bool,
}

/// Why no request head could be read.
#[derive(Debug)]
pub enum HeadError {
    /// The peer closed (or reset) the connection, between requests or in the middle of one.
    Closed,
    /// The head grew past the limit before its blank line.
    TooLarge,
    /// The head is not HTTP/1.x; the reason goes into the 400's body.
    Bad(String),
}

/// Reads request heads off one connection, keeping whatever follows a head.
pub struct HeadReader {
    buf: Vec<u8>,
    max: usize,
}

impl HeadReader {
    /// A reader refusing heads longer than `max` bytes.
    pub fn new(max: usize) -> HeadReader {
        HeadReader {
            buf: Vec::new(),
            max,
        }
    }

    /// Whether part of a request has arrived (for a 408 rather than a silent close).
    pub fn partial(&self) -> bool {
        !self.buf.is_empty()
    }

    /// The next request head. Cancel-safe: bytes read stay in the buffer.
    pub async fn next(
        &mut self,
        conn: &mut (impl AsyncRead + Unpin),
    ) -> Result<Request, HeadError> {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = self.buf.drain(..end + 4).collect();
                return parse(&head[..end]);
            }
            if self.buf.len() >= self.max {
                return Err(HeadError::TooLarge);
            }
            let mut chunk = [0u8; 4096];
            let room = (self.max - self.buf.len()).min(chunk.len());
            match conn.read(&mut chunk[..room]).await {
                Ok(0) | Err(_) => return Err(HeadError::Closed),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

fn parse(head: &[u8]) -> Result<Request, HeadError> {
    let bad = |why: &str| HeadError::Bad(why.to_string());
    let head = std::str::from_utf8(head).map_err(|_| bad("head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or("");
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("malformed request line"));
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(bad("malformed method"));
    }
    if !target.starts_with('/') {
        return Err(bad("target must be an absolute path"));
    }
    let mut keep_alive = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Err(bad("unsupported HTTP version")),
    };
    let mut has_body = false;
    for header in lines {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| bad("header without a colon"))?;
        if name.is_empty() || name.contains(|c: char| c.is_whitespace()) {
            return Err(bad("malformed header name"));
        }
        let value = value.trim();
        if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            let n: u64 = value.parse().map_err(|_| bad("invalid Content-Length"))?;
            has_body |= n > 0;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            has_body = true;
        }
    }
    let path = target.split('?').next().unwrap_or(target).to_string();
    Ok(Request {
        method: method.to_string(),
        path,
        keep_alive,
        has_body,
    })
}

/// A response to write.
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub extra: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// A response with a body of this type.
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            content_type,
            extra: Vec::new(),
            body: body.into(),
        }
    }

    /// A plain-text error response whose body is `why` and a newline.
    pub fn error(status: u16, why: &str) -> Response {
        Response::new(status, "text/plain; charset=utf-8", format!("{why}\n"))
    }

    /// The response's bytes, with `Connection: close` if the connection ends after it.
    pub fn to_bytes(&self, close: bool) -> Vec<u8> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        for (k, v) in &self.extra {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if close {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Writes `bytes`, then half-closes and reads what the peer still sends (for up to 64 KiB),
/// so a close with unread request bytes does not reset the connection under the response.
pub async fn write_and_linger(conn: &mut overlap::net::TcpStream, bytes: &[u8]) -> io::Result<()> {
    use overlap::io::AsyncWriteExt;
    conn.write_all(bytes).await?;
    conn.shutdown(std::net::Shutdown::Write)?;
    let mut sink = [0u8; 4096];
    let mut left = 64 * 1024;
    while left > 0 {
        match conn.read(&mut sink).await? {
            0 => break,
            n => left -= n.min(left),
        }
    }
    Ok(())
}
