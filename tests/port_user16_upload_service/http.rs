//! The hand-rolled HTTP/1.1 request head: reading it with a bound on its size, parsing
//! the request line and header fields strictly (anything doubtful is a 400, never a
//! guess), the body's framing (`Content-Length` or chunked, never both), and writing a
//! response head.

use overlap::io::{self, AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The most header fields a request may carry.
const MAX_FIELDS: usize = 64;

/// Why a request head was refused: the status to answer with, and why (for the logs and
/// the tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bad {
    pub status: u16,
    pub why: &'static str,
}

fn bad(why: &'static str) -> Bad {
    Bad { status: 400, why }
}

/// How a head's reading ended, short of a whole head.
#[derive(Debug)]
pub enum HeadEnd {
    /// The connection ended before any byte of a request: a clean close.
    Closed,
    /// It ended (or failed) part way through a head.
    Cut,
    /// The head is longer than the server reads: 431.
    TooLarge,
}

/// Reads one request head, up to and including its empty line, into `head` (which the
/// caller keeps, so that after a timeout it can tell an idle client from a slow one). Empty
/// lines before a request line are skipped, as RFC 9112 2.2 allows. Never reads past the
/// head: the body (and any pipelined request) stays in `r`.
pub async fn read_head<R: AsyncBufRead + Unpin>(
    r: &mut R,
    head: &mut Vec<u8>,
    max: usize,
) -> Result<(), HeadEnd> {
    loop {
        let start = head.len();
        let room = (max - start) as u64;
        let n = match (&mut *r).take(room).read_until(b'\n', head).await {
            Ok(n) => n,
            Err(_) => return Err(HeadEnd::Cut),
        };
        if n == 0 {
            return Err(if head.is_empty() && room > 0 {
                HeadEnd::Closed
            } else if room == 0 {
                HeadEnd::TooLarge
            } else {
                HeadEnd::Cut
            });
        }
        if !head.ends_with(b"\n") {
            // Either the take's limit or the end of the stream cut the line.
            return Err(if head.len() == max {
                HeadEnd::TooLarge
            } else {
                HeadEnd::Cut
            });
        }
        let line = &head[start..];
        if line == b"\r\n" || line == b"\n" {
            if start == 0 {
                head.clear();
                continue;
            }
            return Ok(());
        }
    }
}

/// A parsed request head.
#[derive(Debug)]
pub struct Head {
    pub method: String,
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    /// Field names lowercased; values with surrounding whitespace trimmed.
    pub fields: Vec<(String, Vec<u8>)>,
}

/// How the request's body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(u64),
    Chunked,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Splits `head` into lines, each without its line ending; a CR anywhere else is an error.
fn lines(head: &[u8]) -> Result<Vec<&[u8]>, Bad> {
    let mut out = Vec::new();
    for raw in head.split_inclusive(|&b| b == b'\n') {
        let line = raw.strip_suffix(b"\n").unwrap_or(raw);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.contains(&b'\r') {
            return Err(bad("a bare CR"));
        }
        out.push(line);
    }
    // The last one is the empty line that ends the head.
    out.pop();
    Ok(out)
}

/// Parses a head read by [`read_head`].
pub fn parse_head(head: &[u8]) -> Result<Head, Bad> {
    let lines = lines(head)?;
    let (request_line, field_lines) = lines.split_first().ok_or(bad("no request line"))?;
    let parts: Vec<&[u8]> = request_line.split(|&b| b == b' ').collect();
    let [method, target, version] = parts[..] else {
        return Err(bad("the request line is not three words"));
    };
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(bad("a bad method"));
    }
    if target.is_empty() || !target.iter().all(|&b| b.is_ascii_graphic()) {
        return Err(bad("a bad request target"));
    }
    let minor = match version {
        b"HTTP/1.1" => 1,
        b"HTTP/1.0" => 0,
        v if v.starts_with(b"HTTP/") && v.len() == 8 && v[5].is_ascii_digit() => {
            return Err(Bad {
                status: 505,
                why: "an HTTP version other than 1.x",
            })
        }
        _ => return Err(bad("a bad HTTP version")),
    };
    if field_lines.len() > MAX_FIELDS {
        return Err(Bad {
            status: 431,
            why: "too many header fields",
        });
    }
    let mut fields = Vec::with_capacity(field_lines.len());
    for line in field_lines {
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            return Err(bad("an obsolete line folding"));
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(bad("a field without a colon"))?;
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(bad("a bad field name"));
        }
        if value
            .iter()
            .any(|&b| b == 0 || (b < 0x20 && b != b'\t') || b == 0x7f)
        {
            return Err(bad("a control character in a field value"));
        }
        let value = value.trim_ascii().to_vec();
        fields.push((String::from_utf8_lossy(name).to_ascii_lowercase(), value));
    }
    Ok(Head {
        method: String::from_utf8_lossy(method).into_owned(),
        target: String::from_utf8_lossy(target).into_owned(),
        minor,
        fields,
    })
}

impl Head {
    /// Every value of the field `name` (lowercase), in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.fields
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// The field `name`'s value, if it appears once; `Err` if it appears more than once.
    pub fn one<'a>(&'a self, name: &'a str) -> Result<Option<&'a [u8]>, Bad> {
        let mut all = self.all(name);
        let first = all.next();
        match all.next() {
            None => Ok(first),
            Some(_) => Err(bad("a field that must appear once appears twice")),
        }
    }

    /// The comma-separated tokens of every `name` field, lowercased.
    pub fn tokens(&self, name: &str) -> Vec<String> {
        self.all(name)
            .flat_map(|v| v.split(|&b| b == b','))
            .map(|t| String::from_utf8_lossy(t.trim_ascii()).to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .collect()
    }

    /// Whether the connection stays open after this request's answer.
    pub fn keep_alive(&self) -> bool {
        let connection = self.tokens("connection");
        match self.minor {
            1 => !connection.iter().any(|t| t == "close"),
            _ => connection.iter().any(|t| t == "keep-alive"),
        }
    }

    /// The body's framing. Both headers at once, several lengths that differ, a length that
    /// is not a number, or a coding other than chunked alone are refused (RFC 9112 6.1,
    /// 6.3): a server that guessed could be made to read a smuggled request as a body.
    pub fn framing(&self) -> Result<Framing, Bad> {
        let codings = self.tokens("transfer-encoding");
        let lengths: Vec<&[u8]> = self
            .all("content-length")
            .flat_map(|v| v.split(|&b| b == b','))
            .map(|v| v.trim_ascii())
            .collect();
        if !codings.is_empty() && !lengths.is_empty() {
            return Err(bad("both Content-Length and Transfer-Encoding"));
        }
        if !codings.is_empty() {
            if self.minor == 0 {
                return Err(bad("Transfer-Encoding in HTTP/1.0"));
            }
            return match &codings[..] {
                [only] if only == "chunked" => Ok(Framing::Chunked),
                _ => Err(Bad {
                    status: 501,
                    why: "a transfer coding other than chunked",
                }),
            };
        }
        let mut length = None;
        for l in lengths {
            if l.is_empty() || l.len() > 19 || !l.iter().all(u8::is_ascii_digit) {
                return Err(bad("a Content-Length that is not a number"));
            }
            let n: u64 = std::str::from_utf8(l).unwrap().parse().unwrap();
            if length.is_some_and(|m| m != n) {
                return Err(bad("Content-Lengths that differ"));
            }
            length = Some(n);
        }
        Ok(match length {
            None | Some(0) => Framing::None,
            Some(n) => Framing::Length(n),
        })
    }
}

/// The reason phrase of each status the server sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        505 => "HTTP Version Not Supported",
        507 => "Insufficient Storage",
        _ => "Unknown",
    }
}

/// A response head: the status line, `fields`, a `Content-Length` of `length` (none for
/// 1xx and 204), and `Connection: close` when `close`.
pub fn response_head(status: u16, fields: &[(&str, String)], length: u64, close: bool) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in fields {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if status >= 200 && status != 204 {
        out.push_str(&format!("Content-Length: {length}\r\n"));
    }
    if close {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// Writes a response with no body (or a short one, `body`).
pub async fn respond<W: AsyncWrite + Unpin>(
    w: &mut W,
    status: u16,
    fields: &[(&str, String)],
    body: &[u8],
    close: bool,
) -> io::Result<()> {
    let mut out = response_head(status, fields, body.len() as u64, close);
    out.extend_from_slice(body);
    w.write_all(&out).await
}
