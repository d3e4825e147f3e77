//! HTTP/1.1 on the wire as the proxy needs it: heads read under a size limit and parsed
//! with httparse (no hyper), the Cache-Control directives, HTTP dates (IMF-fixdate only),
//! single byte ranges, and heads written back out.

use std::io;

use overlap::io::{AsyncRead, AsyncReadExt};

/// The longest request head taken (431 past it); responses from the origin get twice it.
pub const MAX_HEAD: usize = 8 * 1024;
/// The most headers a head may have.
const MAX_HEADERS: usize = 64;

/// Headers that concern one hop only, never stored nor passed on (RFC 9110 7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

/// Whether `name` is a hop-by-hop header (`Content-Length` counted, since the proxy writes
/// its own).
pub fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// Why a head could not be read.
#[derive(Debug)]
pub enum HeadError {
    /// The peer closed before the first byte of a head: a keep-alive connection's end.
    Closed,
    /// The peer closed inside a head.
    Truncated,
    /// No blank line within the limit.
    TooLarge,
    Io(io::Error),
}

/// Reads one head (through its blank line) from `r`, with `buf` holding bytes read before;
/// returns the head and leaves any bytes after it in `buf` (a pipelined request).
pub async fn read_head<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> Result<Vec<u8>, HeadError> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            if end + 4 > max {
                return Err(HeadError::TooLarge);
            }
            let rest = buf.split_off(end + 4);
            return Ok(std::mem::replace(buf, rest));
        }
        if buf.len() > max {
            return Err(HeadError::TooLarge);
        }
        match r.read(&mut chunk).await {
            Ok(0) if buf.is_empty() => return Err(HeadError::Closed),
            Ok(0) => return Err(HeadError::Truncated),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(HeadError::Io(e)),
        }
    }
}

/// A request's method, target and headers.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
}

/// A response's status and headers.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
}

/// The first value of header `name` (case-insensitive).
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Replaces (or adds) header `name`.
pub fn set_header(headers: &mut Vec<(String, String)>, name: &str, value: &str) {
    headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    headers.push((name.to_string(), value.to_string()));
}

fn owned_headers(raw: &[httparse::Header<'_>]) -> Result<Vec<(String, String)>, &'static str> {
    raw.iter()
        .map(|h| match std::str::from_utf8(h.value) {
            Ok(v) => Ok((h.name.to_string(), v.to_string())),
            Err(_) => Err("a header value that is not UTF-8"),
        })
        .collect()
}

/// Parses a request head: HTTP/1.1 only, with a `Host`, and no body (GET and HEAD carry
/// none here; a `Content-Length` other than 0 or any `Transfer-Encoding` is refused).
pub fn parse_request(head: &[u8]) -> Result<Request, &'static str> {
    let mut raw = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut raw);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err("an incomplete head"),
        Err(_) => return Err("not an HTTP/1.x request head"),
    }
    if req.version != Some(1) {
        return Err("not HTTP/1.1");
    }
    let headers = owned_headers(req.headers)?;
    if header(&headers, "host").is_none() {
        return Err("no Host header");
    }
    if header(&headers, "transfer-encoding").is_some()
        || header(&headers, "content-length").is_some_and(|v| v.trim() != "0")
    {
        return Err("a request body");
    }
    let target = req.path.unwrap_or_default().to_string();
    if !target.starts_with('/') {
        return Err("a target that is not a path");
    }
    Ok(Request {
        method: req.method.unwrap_or_default().to_string(),
        target,
        headers,
    })
}

/// Parses a response head.
pub fn parse_response(head: &[u8]) -> Result<Response, &'static str> {
    let mut raw = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut raw);
    match resp.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err("not an HTTP/1.x response head"),
    }
    Ok(Response {
        status: resp.code.unwrap_or_default(),
        reason: resp.reason.unwrap_or_default().to_string(),
        headers: owned_headers(resp.headers)?,
    })
}

/// A head's `Content-Length`: `Ok(None)` without one, `Err` for a bad or repeated one.
pub fn content_length(headers: &[(String, String)]) -> Result<Option<u64>, &'static str> {
    let mut values = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"));
    let Some((_, v)) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err("two Content-Length headers");
    }
    v.trim()
        .parse()
        .map(Some)
        .map_err(|_| "a bad Content-Length")
}

/// The Cache-Control directives the proxy obeys.
#[derive(Debug, Default, PartialEq)]
pub struct CacheControl {
    pub no_store: bool,
    pub private: bool,
    pub no_cache: bool,
    pub max_age: Option<u64>,
}

/// The Cache-Control of `headers` (every such header, comma-separated directives).
pub fn cache_control(headers: &[(String, String)]) -> CacheControl {
    let mut cc = CacheControl::default();
    let values = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("cache-control"));
    for directive in values.flat_map(|(_, v)| v.split(',')) {
        let directive = directive.trim().to_ascii_lowercase();
        match directive.split_once('=') {
            Some(("max-age", n)) => cc.max_age = n.trim_matches('"').parse().ok(),
            Some(_) => {}
            None if directive == "no-store" => cc.no_store = true,
            None if directive == "private" => cc.private = true,
            None if directive == "no-cache" => cc.no_cache = true,
            None => {}
        }
    }
    cc
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) as seconds since the epoch; `None` for
/// anything else (which, for `Expires`, means already expired: RFC 9111 5.3).
pub fn parse_http_date(s: &str) -> Option<u64> {
    let (_weekday, rest) = s.trim().split_once(", ")?;
    let parts: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, time, "GMT"] = parts[..] else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == month)? as i64 + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<u64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, sec] = hms[..] else { return None };
    if !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 || year < 1970 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days as u64 * 86_400 + h * 3600 + m * 60 + sec)
}

/// What a `Range` header asks of a body of `len` bytes.
#[derive(Debug, PartialEq)]
pub enum Range {
    /// Bytes `first..=last`.
    Satisfiable(u64, u64),
    /// A well-formed range outside the body: 416.
    Unsatisfiable,
}

/// A single `bytes=` range of a body of `len` bytes; `None` for a header the proxy ignores
/// (malformed, another unit, several ranges: RFC 9110 14.2 lets it send the whole body).
pub fn parse_range(value: &str, len: u64) -> Option<Range> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    let range = match (first.is_empty(), last.is_empty()) {
        (true, true) => return None,
        (true, false) => {
            let n: u64 = last.parse().ok()?;
            if n == 0 || len == 0 {
                Range::Unsatisfiable
            } else {
                Range::Satisfiable(len.saturating_sub(n), len - 1)
            }
        }
        (false, _) => {
            let a: u64 = first.parse().ok()?;
            let b: u64 = if last.is_empty() {
                u64::MAX
            } else {
                last.parse().ok()?
            };
            if b < a {
                return None;
            }
            if a >= len {
                Range::Unsatisfiable
            } else {
                Range::Satisfiable(a, b.min(len - 1))
            }
        }
    };
    Some(range)
}

/// A status line and headers, with the blank line.
pub fn write_head(status: u16, reason: &str, headers: &[(String, String)]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {reason}\r\n");
    for (n, v) in headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// A short response the proxy makes itself (400, 416, 502, ...), with `extra` headers.
pub fn simple(status: u16, reason: &str, extra: &[(&str, String)], close: bool) -> Vec<u8> {
    let body = format!("{status} {reason}\n");
    let mut headers: Vec<(String, String)> = extra
        .iter()
        .map(|(n, v)| (n.to_string(), v.clone()))
        .collect();
    headers.push(("Content-Length".into(), body.len().to_string()));
    if close {
        headers.push(("Connection".into(), "close".into()));
    }
    let mut out = write_head(status, reason, &headers);
    out.extend_from_slice(body.as_bytes());
    out
}
