//! Reading a response: the status line and headers (bounded by `MAX_HEAD`), the body's
//! framing (`Content-Length`, `chunked` with trailers, or until EOF), and whether the
//! connection may go back to the pool afterwards.

use std::io::{self, ErrorKind};
use std::time::Duration;

use crate::conn::{invalid, Conn};
use crate::pool::Checkout;

/// How a body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body (`HEAD`, 204, 304).
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`, then trailers.
    Chunked,
    /// Up to EOF (no length given): the connection cannot be reused.
    UntilEof,
}

/// A response's status line and headers, as read before the body.
#[derive(Debug)]
pub struct Head {
    /// `1` for HTTP/1.1, `0` for HTTP/1.0.
    pub minor: u8,
    /// The status code.
    pub status: u16,
    /// The headers in the order sent, names lower-cased.
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the server lets the connection live on: HTTP/1.1 without `Connection:
    /// close`. HTTP/1.0 responses are never pooled, even with `Connection: keep-alive`
    /// (hyper pools those; this client keeps to the simpler rule).
    pub fn keep_alive(&self) -> bool {
        self.minor == 1
            && !self
                .header("connection")
                .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
    }

    /// How the body is delimited, for a response to `method`.
    pub fn framing(&self, method: &str) -> io::Result<Framing> {
        if method == "HEAD" || self.status == 204 || self.status == 304 {
            return Ok(Framing::Empty);
        }
        if let Some(te) = self.header("transfer-encoding") {
            return match te.trim().eq_ignore_ascii_case("chunked") {
                true => Ok(Framing::Chunked),
                false => Err(invalid(format!("unsupported transfer-encoding {te:?}"))),
            };
        }
        match self.header("content-length") {
            Some(v) => v
                .trim()
                .parse::<u64>()
                .map(Framing::Length)
                .map_err(|_| invalid(format!("bad content-length {v:?}"))),
            None => Ok(Framing::UntilEof),
        }
    }
}

/// Reads a response head. `Ok(None)` if the connection ended before its first byte (the
/// case a retry may cover); any other failure is an error.
pub async fn read_head(conn: &mut Conn) -> io::Result<Option<Head>> {
    let Some(line) = conn.read_line(0).await? else {
        return Ok(None);
    };
    let mut used = line.len() + 2;
    let bad_status = || invalid(format!("malformed status line {line:?}"));
    let mut parts = line.splitn(3, ' ');
    let minor = match parts.next() {
        Some("HTTP/1.1") => 1,
        Some("HTTP/1.0") => 0,
        _ => return Err(bad_status()),
    };
    let status = parts
        .next()
        .filter(|s| s.len() == 3)
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|s| (100..600).contains(s))
        .ok_or_else(bad_status)?;
    if (100..200).contains(&status) {
        return Err(invalid(format!("unexpected interim response {status}")));
    }
    let headers = read_fields(conn, &mut used, "response head").await?;
    Ok(Some(Head {
        minor,
        status,
        headers,
    }))
}

/// Reads `name: value` lines up to an empty one (headers, or chunked trailers), adding to
/// `used` and staying under `MAX_HEAD`.
async fn read_fields(
    conn: &mut Conn,
    used: &mut usize,
    what: &str,
) -> io::Result<Vec<(String, String)>> {
    let mut fields = Vec::new();
    loop {
        let line = conn.read_line(*used).await?.ok_or_else(|| {
            io::Error::new(
                ErrorKind::UnexpectedEof,
                format!("connection closed inside the {what}"),
            )
        })?;
        *used += line.len() + 2;
        if line.is_empty() {
            return Ok(fields);
        }
        let (name, value) = line
            .split_once(':')
            .filter(|(n, _)| !n.is_empty() && !n.contains(|c: char| c.is_whitespace()))
            .ok_or_else(|| invalid(format!("malformed header line {line:?} in the {what}")))?;
        fields.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
}

/// A response whose head has been read; the body is read by [`Response::bytes`], which
/// then gives the connection back to the pool if it may be reused.
///
/// Dropping it before the body is read to its end closes the connection instead: a
/// half-read connection is never pooled, and none is drained either (draining a body of
/// unknown size could block the next caller behind a slow server; hyper drains a little,
/// this client keeps to "not read, not reused").
pub struct Response {
    head: Head,
    framing: Framing,
    checkout: Checkout,
    read_timeout: Duration,
    max_body: usize,
    trailers: Vec<(String, String)>,
}

impl Response {
    /// Wraps a head read from `checkout`'s connection, for a request of `method`.
    pub fn new(
        head: Head,
        method: &str,
        mut checkout: Checkout,
        read_timeout: Duration,
        max_body: usize,
    ) -> io::Result<Response> {
        let framing = match head.framing(method) {
            Ok(framing) => framing,
            Err(e) => {
                checkout.discard();
                return Err(e);
            }
        };
        Ok(Response {
            head,
            framing,
            checkout,
            read_timeout,
            max_body,
            trailers: Vec::new(),
        })
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.head.status
    }

    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.header(name)
    }

    /// The number of the connection it came on (1 for the pool's first).
    pub fn conn_id(&self) -> u64 {
        self.checkout.conn_id()
    }

    /// Reads the whole body (at most the client's `max_body`, each read within the
    /// client's request timeout) and the trailers, then gives the connection back to the
    /// pool if the response allows it. Any error closes the connection.
    pub async fn bytes(mut self) -> io::Result<(Vec<u8>, Vec<(String, String)>)> {
        let limit = self.read_timeout;
        match overlap::time::timeout(limit, self.read_body()).await {
            Ok(Ok(body)) => {
                let reusable = self.head.keep_alive() && self.framing != Framing::UntilEof;
                self.checkout.finish(reusable);
                Ok((body, std::mem::take(&mut self.trailers)))
            }
            Ok(Err(e)) => {
                self.checkout.discard();
                Err(e)
            }
            Err(_) => {
                self.checkout.discard();
                Err(io::Error::new(
                    ErrorKind::TimedOut,
                    format!("response body not read within {limit:?}"),
                ))
            }
        }
    }

    /// As [`bytes`](Self::bytes), the body as UTF-8 text, without the trailers.
    pub async fn text(self) -> io::Result<String> {
        let (body, _) = self.bytes().await?;
        String::from_utf8(body).map_err(|_| invalid("body is not UTF-8"))
    }

    async fn read_body(&mut self) -> io::Result<Vec<u8>> {
        let conn = self.checkout.conn();
        let mut body = Vec::new();
        let max = self.max_body;
        let too_big = || invalid(format!("response body over {max} bytes"));
        match self.framing {
            Framing::Empty => {}
            Framing::Length(n) => {
                if n > max as u64 {
                    return Err(too_big());
                }
                read_exactly(conn, n as usize, &mut body).await?;
            }
            Framing::UntilEof => loop {
                let got = conn.read_some(64 * 1024).await?;
                if got.is_empty() {
                    break;
                }
                body.extend_from_slice(&got);
                if body.len() > max {
                    return Err(too_big());
                }
            },
            Framing::Chunked => loop {
                let line = conn.read_line(0).await?.ok_or_else(|| {
                    io::Error::new(ErrorKind::UnexpectedEof, "connection closed before a chunk")
                })?;
                let hex = line.split(';').next().unwrap_or("").trim();
                let size = (!hex.is_empty() && hex.len() <= 16)
                    .then(|| u64::from_str_radix(hex, 16).ok())
                    .flatten()
                    .ok_or_else(|| invalid(format!("bad chunk size line {line:?}")))?;
                if size == 0 {
                    let mut used = 0;
                    self.trailers = read_fields(conn, &mut used, "trailers").await?;
                    break;
                }
                if body.len() as u64 + size > max as u64 {
                    return Err(too_big());
                }
                read_exactly(conn, size as usize, &mut body).await?;
                conn.expect(b"\r\n", "CRLF after a chunk").await?;
            },
        }
        Ok(body)
    }
}

/// Appends exactly `n` body bytes from `conn` to `body`.
async fn read_exactly(conn: &mut Conn, n: usize, body: &mut Vec<u8>) -> io::Result<()> {
    let end = body.len() + n;
    while body.len() < end {
        let got = conn.read_some(end - body.len()).await?;
        if got.is_empty() {
            return Err(io::Error::new(
                ErrorKind::UnexpectedEof,
                format!(
                    "connection closed {} bytes short of the body",
                    end - body.len()
                ),
            ));
        }
        body.extend_from_slice(&got);
    }
    Ok(())
}
