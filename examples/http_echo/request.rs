//! Request heads: parsing (with `httparse`), framing (RFC 9112 §6) and the errors a client gets
//! for bad input.

use std::mem::MaybeUninit;

/// Header slots kept on the stack while parsing; more (a bigger `Limits::max_headers`) go on
/// the heap.
const STACK_HEADERS: usize = 64;

/// How the server limits what one request may cost it.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Request line plus headers, in bytes (431 beyond); empty lines before the request
    /// line do not count.
    pub max_head: usize,
    /// Headers per request (431 beyond).
    pub max_headers: usize,
    /// Request body, in bytes, however it is framed (413 beyond).
    pub max_body: u64,
    /// How long a started request head may take to arrive (408 after).
    pub head_timeout: std::time::Duration,
    /// How long a body may stall between two reads (408 after).
    pub body_timeout: std::time::Duration,
    /// How long a kept-alive connection may sit idle between requests (closed quietly after).
    pub idle_timeout: std::time::Duration,
    /// How long writing an answer may stall, the client not reading (closed after).
    pub write_timeout: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        use std::time::Duration;
        Limits {
            max_head: 16 * 1024,
            max_headers: 64,
            max_body: 8 * 1024 * 1024,
            head_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(10),
        }
    }
}

/// A request the server refuses: answered with `status` and the connection closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpError {
    pub status: u16,
    pub reason: &'static str,
    /// One line for the response body, saying what was wrong.
    pub detail: &'static str,
}

impl HttpError {
    pub const fn new(status: u16, reason: &'static str, detail: &'static str) -> HttpError {
        HttpError {
            status,
            reason,
            detail,
        }
    }
}

pub const BAD_REQUEST: &str = "Bad Request";

fn bad(detail: &'static str) -> HttpError {
    HttpError::new(400, BAD_REQUEST, detail)
}

/// What a head past `max_head` gets: 414 if its request line alone (after the empty lines
/// the parser skips, without its line end) is longer (RFC 9112 §3 asks for 414 then),
/// otherwise 431.
fn head_over_limit(buf: &[u8], max_head: usize) -> HttpError {
    let line = past_empty_lines(buf);
    let line = &line[..line.iter().position(|&b| b == b'\n').unwrap_or(line.len())];
    // Without its line end, CRLF or bare LF alike (a last CR may be the start of a CRLF):
    // the same line gets the same status however it ends.
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() > max_head {
        HttpError::new(414, "URI Too Long", "request line too long")
    } else {
        head_too_large()
    }
}

/// `buf` from its request line on: past the empty lines (CR and LF) the parser skips
/// before it (RFC 9112 §2.2).
fn past_empty_lines(buf: &[u8]) -> &[u8] {
    let n = buf
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    &buf[n..]
}

/// How many bytes of whole empty lines (CRLF, or a bare LF) start `buf`: those a server
/// ignores before a request line (RFC 9112 §2.2). A last CR, maybe the start of one more,
/// is not counted.
pub fn empty_lines_ended(buf: &[u8]) -> usize {
    let mut n = 0;
    loop {
        match &buf[n..] {
            [b'\r', b'\n', ..] => n += 2,
            [b'\n', ..] => n += 1,
            _ => return n,
        }
    }
}

pub fn head_too_large() -> HttpError {
    HttpError::new(
        431,
        "Request Header Fields Too Large",
        "request head too large",
    )
}

pub fn body_too_large() -> HttpError {
    HttpError::new(413, "Content Too Large", "request body too large")
}

/// What a request line whose version httparse does not read gets: 505 if it is a version
/// (`HTTP/` DIGIT `.` DIGIT, RFC 9112 §2.3), only not 1.0 or 1.1; otherwise the line is
/// invalid (a lowercase `http`, a PROXY protocol line, ...), a 400 (RFC 9112 §3).
fn version_error(buf: &[u8]) -> HttpError {
    let line = past_empty_lines(buf);
    let line = &line[..line.iter().position(|&b| b == b'\n').unwrap_or(line.len())];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // What httparse read as the version: all after the method and the target.
    match line.splitn(3, |&b| b == b' ').nth(2) {
        Some([b'H', b'T', b'T', b'P', b'/', major, b'.', minor])
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            HttpError::new(
                505,
                "HTTP Version Not Supported",
                "only HTTP/1.0 and HTTP/1.1 are served",
            )
        }
        _ => bad("malformed HTTP version in the request line"),
    }
}

/// How the body that follows a head is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Exactly this many bytes (0: no body).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A parsed request head.
#[derive(Debug)]
pub struct Head {
    pub method: String,
    /// HTTP/1.x minor version: 0 or 1.
    pub minor: u8,
    pub framing: Framing,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
    /// The client waits for `100 Continue` before sending the body.
    pub expect_continue: bool,
    pub content_type: Option<Vec<u8>>,
    /// The head as received, re-serialised (what a body-less request is answered with), its
    /// field values byte for byte (obs-text too, which is no UTF-8); empty for a request with
    /// a body.
    pub text: Vec<u8>,
}

/// Parses a request head at the start of `buf`. `Ok(None)`: incomplete, read more.
/// Otherwise the head and the number of bytes it took.
pub fn parse(buf: &[u8], limits: &Limits) -> Result<Option<(Head, usize)>, HttpError> {
    // Header slots on the stack, left uninitialised: this runs after every read of a
    // connection, so a heap buffer zeroed each time would cost more than the parse.
    let mut stack = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_HEADERS];
    let mut heap = Vec::new();
    let slots = if limits.max_headers <= STACK_HEADERS {
        &mut stack[..limits.max_headers]
    } else {
        heap.resize_with(limits.max_headers, MaybeUninit::uninit);
        &mut heap[..]
    };
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, slots) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > limits.max_head => {
            return Err(head_over_limit(buf, limits.max_head))
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(head_too_large()),
        Err(httparse::Error::Version) => return Err(version_error(buf)),
        Err(_) => return Err(bad("malformed request head")),
    };
    if len > limits.max_head {
        return Err(head_over_limit(buf, limits.max_head));
    }
    let (Some(method), Some(path), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(bad("malformed request line"));
    };
    // A 2xx to CONNECT turns the connection into a tunnel and may carry no Content-Length
    // (RFC 9110 §9.3.6): an echo would be read as tunnelled bytes.
    if method == "CONNECT" {
        return Err(HttpError::new(
            501,
            "Not Implemented",
            "CONNECT is not supported",
        ));
    }
    // No form of request-target has a fragment, and the asterisk-form is for OPTIONS only
    // (RFC 9112 §3.2): the line is invalid, a 400, not one to correct and serve (§3).
    if path == "*" && method != "OPTIONS" {
        return Err(bad("the request target * is for OPTIONS only"));
    }
    if path.contains('#') {
        return Err(bad("a fragment (#) in the request target"));
    }
    let mut length: Option<u64> = None;
    // Every transfer coding of every Transfer-Encoding field, in order (None: no field).
    let mut codings: Option<Vec<String>> = None;
    let mut host = 0;
    // HTTP/1.0 closes unless asked to keep alive; `close` wins over `keep-alive` whatever
    // their order.
    let (mut asked_close, mut asked_keep_alive) = (false, false);
    let mut expect_continue = false;
    let mut content_type = None;
    for h in req.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let n = parse_length(h.value)?;
            // Repeated Content-Length headers must agree (RFC 9112 §6.3).
            if length.is_some_and(|l| l != n) {
                return Err(bad("conflicting Content-Length headers"));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            codings.get_or_insert_with(Vec::new).extend(tokens(h.value));
        } else if name.eq_ignore_ascii_case("host") {
            if !valid_host(h.value) {
                return Err(bad("invalid Host header"));
            }
            host += 1;
        } else if name.eq_ignore_ascii_case("connection") {
            for t in tokens(h.value) {
                if t == "close" {
                    asked_close = true;
                } else if t == "keep-alive" {
                    asked_keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("expect") {
            if !h.value.eq_ignore_ascii_case(b"100-continue") {
                return Err(HttpError::new(
                    417,
                    "Expectation Failed",
                    "only Expect: 100-continue is understood",
                ));
            }
            expect_continue = minor == 1;
        } else if name.eq_ignore_ascii_case("content-type") {
            content_type = Some(h.value.to_vec());
        }
    }
    let close = asked_close || (minor == 0 && !asked_keep_alive);
    // RFC 9112 §3.2: exactly one Host in an HTTP/1.1 request, and never two in any.
    if host > 1 || (minor == 1 && host == 0) {
        return Err(bad("a missing or repeated Host header"));
    }
    // RFC 9112 §6.3: a request whose final coding is not `chunked` cannot be framed (400,
    // as is `chunked` applied twice, §6.1); a coding before it that we do not know is a 501.
    let chunked = match codings.as_deref() {
        None => false,
        Some([.., last]) if last == "chunked" => {
            if codings.iter().flatten().filter(|c| *c == "chunked").count() > 1 {
                return Err(bad("chunked applied more than once"));
            }
            if codings.as_ref().is_some_and(|c| c.len() > 1) {
                return Err(HttpError::new(
                    501,
                    "Not Implemented",
                    "only Transfer-Encoding: chunked is supported",
                ));
            }
            true
        }
        Some(_) => return Err(bad("Transfer-Encoding whose final coding is not chunked")),
    };
    let framing = match (chunked, length) {
        // Both at once is how requests are smuggled past proxies: refuse (RFC 9112 §6.1).
        (true, Some(_)) => return Err(bad("both Transfer-Encoding and Content-Length")),
        (true, None) if minor == 0 => return Err(bad("Transfer-Encoding in an HTTP/1.0 request")),
        (true, None) => Framing::Chunked,
        (false, n) => Framing::Length(n.unwrap_or(0)),
    };
    if let Framing::Length(n) = framing {
        if n > limits.max_body {
            return Err(body_too_large());
        }
    }
    // Only a body-less request is answered with its own head.
    let text = if framing == Framing::Length(0) {
        let mut text = format!("{method} {path} HTTP/1.{minor}\r\n").into_bytes();
        for h in req.headers.iter() {
            for part in [h.name.as_bytes(), b": ", h.value, b"\r\n"] {
                text.extend_from_slice(part);
            }
        }
        text
    } else {
        Vec::new()
    };
    Ok(Some((
        Head {
            method: method.to_string(),
            minor,
            framing,
            keep_alive: !close,
            expect_continue,
            content_type,
            text,
        },
        len,
    )))
}

/// A Content-Length value: digits only, no sign or spaces, no overflow.
fn parse_length(v: &[u8]) -> Result<u64, HttpError> {
    let invalid = || bad("invalid Content-Length");
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return Err(invalid());
    }
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(invalid)
}

/// Whether a Host value is `uri-host [ ":" port ]` (RFC 9110 §7.2, RFC 3986 §3.2.2): a
/// bracketed IP literal or a reg-name (which IPv4 addresses are too), maybe empty (RFC 9112
/// §3.2 asks for a 400 otherwise).
fn valid_host(v: &[u8]) -> bool {
    let reg_name = |b: &u8| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=".contains(b);
    let (host, port) = match v.iter().rposition(|&b| b == b':') {
        Some(i) if !v[i..].contains(&b']') => (&v[..i], &v[i + 1..]),
        _ => (v, &[][..]),
    };
    let host_ok = match host {
        [b'[', literal @ .., b']'] => {
            !literal.is_empty() && literal.iter().all(|b| reg_name(b) || *b == b':')
        }
        _ => host.iter().all(reg_name),
    };
    // A `%` starts a percent-encoded octet.
    let escapes_ok = host
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == b'%')
        .all(|(i, _)| {
            host.get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
        });
    host_ok && escapes_ok && port.iter().all(u8::is_ascii_digit)
}

/// The comma-separated tokens of a header value, lowercased, with only spaces and tabs
/// trimmed (RFC 9110's OWS: `str::trim` would also strip Unicode spaces, turning
/// `<NBSP>chunked` into `chunked`).
fn tokens(v: &[u8]) -> impl Iterator<Item = String> + '_ {
    v.split(|&b| b == b',')
        .map(|t| {
            let ows = |b: &u8| *b == b' ' || *b == b'\t';
            let start = t.iter().position(|b| !ows(b)).unwrap_or(t.len());
            let end = t.iter().rposition(|b| !ows(b)).map_or(start, |i| i + 1);
            String::from_utf8_lossy(&t[start..end]).to_ascii_lowercase()
        })
        .filter(|t| !t.is_empty())
}
