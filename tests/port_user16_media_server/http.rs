//! The hand-rolled HTTP/1.1 pieces: a request head parsed from bytes, the `Range` header's
//! single-range forms, validators (ETag, an IMF-fixdate), and a response head written out.

/// The longest request head taken; a longer one is answered 431 and the connection closed.
pub const MAX_HEAD: usize = 8 * 1024;

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub target: String,
    /// `true` for HTTP/1.1, `false` for HTTP/1.0.
    pub http11: bool,
    /// Header names lower-cased, values trimmed, in order.
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// The first header called `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the connection stays open after the answer.
    pub fn keep_alive(&self) -> bool {
        let conn = self.header("connection").unwrap_or("").to_ascii_lowercase();
        if self.http11 {
            !conn.split(',').any(|t| t.trim() == "close")
        } else {
            conn.split(',').any(|t| t.trim() == "keep-alive")
        }
    }
}

/// What `parse_head` found at the front of the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole head, and how many bytes it took (the blank line included).
    Done(Request, usize),
    /// No blank line yet.
    Partial,
    /// Not HTTP: answered 400.
    Bad(&'static str),
    /// No blank line in `MAX_HEAD` bytes: answered 431.
    TooLarge,
}

/// Parses the request head at the front of `buf`.
pub fn parse_head(buf: &[u8]) -> Parsed {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > MAX_HEAD {
            Parsed::TooLarge
        } else {
            Parsed::Partial
        };
    };
    if end + 4 > MAX_HEAD {
        return Parsed::TooLarge;
    }
    let Ok(text) = std::str::from_utf8(&buf[..end]) else {
        return Parsed::Bad("head not UTF-8");
    };
    let mut lines = text.split("\r\n");
    let line = lines.next().unwrap_or("");
    let parts: Vec<&str> = line.split(' ').collect();
    let [method, target, version] = parts[..] else {
        return Parsed::Bad("request line");
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Parsed::Bad("method");
    }
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Parsed::Bad("version"),
    };
    let mut headers = Vec::new();
    for l in lines {
        let Some((name, value)) = l.split_once(':') else {
            return Parsed::Bad("header line");
        };
        if name.is_empty() || name.bytes().any(|b| b.is_ascii_whitespace()) {
            return Parsed::Bad("header name");
        }
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    let req = Request {
        method: method.into(),
        target: target.into(),
        http11,
        headers,
    };
    if req.header("content-length").is_some_and(|v| v != "0")
        || req.header("transfer-encoding").is_some()
    {
        return Parsed::Bad("a body");
    }
    Parsed::Done(req, end + 4)
}

/// What a `Range` header asks of a file of `len` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeAsk {
    /// No usable `Range` (absent, not `bytes=`, malformed, or several ranges): the whole
    /// file, 200.
    Whole,
    /// One satisfiable range, inclusive `(first, last)`: 206.
    Part(u64, u64),
    /// One range wholly past the end (or a zero suffix): 416.
    Unsatisfiable,
}

/// Interprets `Range: bytes=a-b`, `a-` and `-n` against `len`. Several ranges get the
/// whole file (RFC 9110 lets a server ignore `Range`; this one sends no multipart).
pub fn range(header: Option<&str>, len: u64) -> RangeAsk {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeAsk::Whole;
    };
    if spec.contains(',') {
        return RangeAsk::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeAsk::Whole;
    };
    let num = |s: &str| {
        if !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()) {
            s.parse::<u64>().ok()
        } else {
            None
        }
    };
    match (a.is_empty(), num(a), num(b)) {
        (true, _, Some(n)) => {
            if n == 0 || len == 0 {
                RangeAsk::Unsatisfiable
            } else {
                RangeAsk::Part(len.saturating_sub(n), len - 1)
            }
        }
        (false, Some(first), None) if b.is_empty() => {
            if first >= len {
                RangeAsk::Unsatisfiable
            } else {
                RangeAsk::Part(first, len - 1)
            }
        }
        (false, Some(first), Some(last)) if first <= last => {
            if first >= len {
                RangeAsk::Unsatisfiable
            } else {
                RangeAsk::Part(first, last.min(len - 1))
            }
        }
        _ => RangeAsk::Whole,
    }
}

/// A strong ETag from the file's mtime (ns) and length.
pub fn etag(mtime_ns: i128, len: u64) -> String {
    format!("\"{mtime_ns:x}-{len:x}\"")
}

/// Whether an `If-None-Match` value matches `etag` (weak comparison, `*` matches all).
pub fn none_match(header: &str, etag: &str) -> bool {
    header.split(',').map(str::trim).any(|t| {
        t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag.strip_prefix("W/").unwrap_or(etag)
    })
}

/// Whether `If-Range` lets the range through: a strong ETag equal to `etag`, or a date
/// exactly `last_modified` (RFC 9110 13.1.5: an exact match, never "not older than").
pub fn if_range_holds(header: &str, etag: &str, last_modified: &str) -> bool {
    let h = header.trim();
    if h.starts_with('"') || h.starts_with("W/") {
        !h.starts_with("W/") && h == etag
    } else {
        h == last_modified
    }
}

/// Unix seconds as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn http_date(secs: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// A response head: status line, the given headers, `Content-Length` (none for a 304),
/// and the blank line.
pub fn response_head(
    status: u16,
    reason: &str,
    headers: &[(&str, String)],
    content_length: Option<u64>,
    keep_alive: bool,
) -> Vec<u8> {
    let mut s = format!("HTTP/1.1 {status} {reason}\r\nServer: media16\r\n");
    for (n, v) in headers {
        s.push_str(&format!("{n}: {v}\r\n"));
    }
    if let Some(n) = content_length {
        s.push_str(&format!("Content-Length: {n}\r\n"));
    }
    if !keep_alive {
        s.push_str("Connection: close\r\n");
    }
    s.push_str("\r\n");
    s.into_bytes()
}
