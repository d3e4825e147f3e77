//! The HTTP/1.1 side: reading a request's head (with httparse), the server's own short
//! responses (400, 403, 404, 502, 504, ...), and the response head made from a script's.
//! One request per connection: every response says `Connection: close`.

use std::io;

use overlap::io::AsyncReadExt;
use overlap::net::tcp::OwnedReadHalf;

use super::cgi::CgiHead;

/// The longest request head taken.
pub const MAX_REQUEST_HEAD: usize = 16 * 1024;

/// A request's head, and the body bytes read with it.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub content_length: u64,
    /// Bytes after the head that came in the same reads: the body's start.
    pub leftover: Vec<u8>,
}

/// Why no request could be read: each but `Closed` has its response.
#[derive(Debug, PartialEq, Eq)]
pub enum BadRequest {
    /// The client closed before sending a whole head (nothing to answer).
    Closed,
    /// 400: not HTTP, or a field httparse refused, or a bad `Content-Length`.
    Malformed(String),
    /// 411: a chunked request body (a CGI script needs `CONTENT_LENGTH`).
    LengthRequired,
    /// 431: a head over [`MAX_REQUEST_HEAD`].
    HeadTooLarge,
}

impl BadRequest {
    /// The response for it, if any.
    pub fn response(&self) -> Option<Vec<u8>> {
        match self {
            BadRequest::Closed => None,
            BadRequest::Malformed(_) => Some(simple(400, "Bad Request")),
            BadRequest::LengthRequired => Some(simple(411, "Length Required")),
            BadRequest::HeadTooLarge => Some(simple(431, "Request Header Fields Too Large")),
        }
    }
}

/// Reads one request head from `rh`.
pub async fn read_request(rh: &mut OwnedReadHalf) -> Result<Request, BadRequest> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = match rh.read(&mut chunk).await {
            Ok(0) | Err(_) => return Err(BadRequest::Closed),
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut fields = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut fields);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(len)) if len > MAX_REQUEST_HEAD => {
                return Err(BadRequest::HeadTooLarge)
            }
            Ok(httparse::Status::Complete(len)) => return request_of(&req, &buf[len..]),
            Ok(httparse::Status::Partial) if buf.len() > MAX_REQUEST_HEAD => {
                return Err(BadRequest::HeadTooLarge)
            }
            Ok(httparse::Status::Partial) => {}
            Err(httparse::Error::TooManyHeaders) => return Err(BadRequest::HeadTooLarge),
            Err(e) => return Err(BadRequest::Malformed(e.to_string())),
        }
    }
}

fn request_of(req: &httparse::Request<'_, '_>, leftover: &[u8]) -> Result<Request, BadRequest> {
    let mut content_length = None;
    let mut headers = Vec::new();
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(BadRequest::LengthRequired);
        }
        if h.name.eq_ignore_ascii_case("content-length") {
            let text = std::str::from_utf8(h.value).unwrap_or("");
            let n: u64 = text
                .trim()
                .parse()
                .map_err(|_| BadRequest::Malformed(format!("Content-Length {text:?}")))?;
            if content_length.is_some_and(|m| m != n) {
                return Err(BadRequest::Malformed("two Content-Lengths".into()));
            }
            content_length = Some(n);
        }
        headers.push((h.name.to_owned(), h.value.to_vec()));
    }
    let content_length = content_length.unwrap_or(0);
    // A client sending more than its Content-Length has pipelined another request, which
    // this server does not take (Connection: close): the extra bytes are not the body.
    let body_start = leftover.len().min(content_length as usize);
    Ok(Request {
        method: req.method.unwrap_or("").to_owned(),
        target: req.path.unwrap_or("").to_owned(),
        headers,
        content_length,
        leftover: leftover[..body_start].to_vec(),
    })
}

/// A short response of the server's own: `status reason`, its body the same words.
pub fn simple(status: u16, reason: &str) -> Vec<u8> {
    let body = format!("{status} {reason}\n");
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The response head for a script's document: its status and fields, chunked unless it
/// gave a `Content-Length`.
pub fn response_head(head: &CgiHead) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {} {}\r\n", head.status, head.reason);
    for (name, value) in &head.fields {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if head.content_length.is_none() {
        out.push_str("Transfer-Encoding: chunked\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
}

/// One chunk of a chunked body (never empty: the empty one ends the body).
pub fn chunk(data: &[u8]) -> Vec<u8> {
    debug_assert!(!data.is_empty());
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

/// The end of a chunked body.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Whether an error writing to the client means it is gone.
pub fn client_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::UnexpectedEof
    )
}
