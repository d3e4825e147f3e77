//! The CGI side of a request (RFC 3875), without any I/O: the script's environment built
//! from the request, and the script's response head (`Status:`, `Content-Type:`,
//! `Location:`, `Content-Length:` and the fields passed on) parsed from its stdout.

use std::net::SocketAddr;

/// The longest CGI response head taken from a script.
pub const MAX_CGI_HEAD: usize = 8 * 1024;

/// What the CGI environment is made from: the request, less its body.
#[derive(Debug, Clone)]
pub struct CgiRequest {
    pub method: String,
    /// `/cgi-bin/NAME`.
    pub script_name: String,
    /// What follows the script's name in the path, undecoded (`""` if nothing does).
    pub path_info: String,
    pub query: String,
    pub content_length: u64,
    /// The request's fields, as sent (names in any case).
    pub headers: Vec<(String, Vec<u8>)>,
    pub remote: SocketAddr,
    pub local: SocketAddr,
}

/// The script's environment: the CGI variables, `HTTP_*` for the request's fields, and a
/// `PATH` (the server's own environment is not passed on).
pub fn environment(req: &CgiRequest) -> Vec<(String, Vec<u8>)> {
    let mut env: Vec<(String, Vec<u8>)> = vec![
        ("GATEWAY_INTERFACE".into(), b"CGI/1.1".to_vec()),
        ("SERVER_PROTOCOL".into(), b"HTTP/1.1".to_vec()),
        ("SERVER_SOFTWARE".into(), b"port_user17_cgi_server".to_vec()),
        ("REQUEST_METHOD".into(), req.method.clone().into_bytes()),
        ("SCRIPT_NAME".into(), req.script_name.clone().into_bytes()),
        ("PATH_INFO".into(), req.path_info.clone().into_bytes()),
        ("QUERY_STRING".into(), req.query.clone().into_bytes()),
        (
            "REMOTE_ADDR".into(),
            req.remote.ip().to_string().into_bytes(),
        ),
        (
            "REMOTE_PORT".into(),
            req.remote.port().to_string().into_bytes(),
        ),
        (
            "SERVER_PORT".into(),
            req.local.port().to_string().into_bytes(),
        ),
        ("PATH".into(), b"/usr/local/bin:/usr/bin:/bin".to_vec()),
    ];
    if req.content_length > 0 || req.method == "POST" || req.method == "PUT" {
        env.push((
            "CONTENT_LENGTH".into(),
            req.content_length.to_string().into_bytes(),
        ));
    }
    for (name, value) in &req.headers {
        let lower = name.to_ascii_lowercase();
        let var = match lower.as_str() {
            "content-type" => "CONTENT_TYPE".to_owned(),
            // Already CONTENT_LENGTH; credentials stay with the server; and `Proxy:` must
            // not become HTTP_PROXY, which HTTP clients in the script would obey (httpoxy).
            "content-length" | "authorization" | "proxy" => continue,
            _ => {
                let mapped: String = lower
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() {
                            c.to_ascii_uppercase()
                        } else {
                            '_'
                        }
                    })
                    .collect();
                format!("HTTP_{mapped}")
            }
        };
        // A field sent twice: joined with ", ", as HTTP allows.
        match env.iter_mut().find(|(n, _)| *n == var) {
            Some((_, v)) => {
                v.extend_from_slice(b", ");
                v.extend_from_slice(value);
            }
            None => env.push((var, value.clone())),
        }
    }
    env
}

/// What a script's head asks of the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadKind {
    /// A document: the status, the fields to send, and the body after the head.
    Document,
    /// `Location: /path?query` with no document: the server serves that path instead, as
    /// a GET (RFC 3875 6.2.2).
    LocalRedirect(String),
}

/// A parsed CGI response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgiHead {
    pub status: u16,
    pub reason: String,
    /// The fields to pass on, in order (`Status:` taken out; `Content-Length:` kept).
    pub fields: Vec<(String, String)>,
    pub content_length: Option<u64>,
    pub kind: HeadKind,
}

/// Why a script's head was refused (each is a 502 to the client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadError {
    /// A line that is no `Name: value` field.
    Malformed(String),
    /// A `Status:` that is not `NNN reason` with NNN in 100..=599.
    BadStatus(String),
    BadContentLength(String),
    /// Neither `Content-Type:` nor `Location:`.
    NoContentType,
    /// No blank line within [`MAX_CGI_HEAD`] bytes.
    TooLong,
}

/// Where the head in `buf` ends (the index after its blank line), if it is all there.
/// Lines may end in LF or CRLF, as scripts write either.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    let mut line_start = 0;
    for (i, &b) in buf.iter().enumerate() {
        if b == b'\n' {
            let line = &buf[line_start..i];
            if line.is_empty() || line == b"\r" {
                return Some(i + 1);
            }
            line_start = i + 1;
        }
    }
    None
}

/// Parses the head `head` (up to and including its blank line).
pub fn parse_head(head: &[u8]) -> Result<CgiHead, HeadError> {
    let text = String::from_utf8_lossy(head);
    let mut status = None;
    let mut fields = Vec::new();
    let mut content_length = None;
    let mut location = None;
    let mut content_type = false;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(HeadError::Malformed(line.to_owned()));
        };
        let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if name.is_empty() || !name.chars().all(token) {
            return Err(HeadError::Malformed(line.to_owned()));
        }
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "status" => status = Some(parse_status(value)?),
            "content-length" => {
                let n = value
                    .parse::<u64>()
                    .map_err(|_| HeadError::BadContentLength(value.to_owned()))?;
                content_length = Some(n);
                fields.push((name.to_owned(), value.to_owned()));
            }
            "location" => {
                location = Some(value.to_owned());
                fields.push((name.to_owned(), value.to_owned()));
            }
            "content-type" => {
                content_type = true;
                fields.push((name.to_owned(), value.to_owned()));
            }
            // The server frames the response itself.
            "transfer-encoding" | "connection" => {}
            _ => fields.push((name.to_owned(), value.to_owned())),
        }
    }
    if let Some(loc) = location.as_deref() {
        if loc.starts_with('/') && status.is_none() && !content_type {
            return Ok(CgiHead {
                status: 0,
                reason: String::new(),
                fields: Vec::new(),
                content_length: None,
                kind: HeadKind::LocalRedirect(loc.to_owned()),
            });
        }
    } else if !content_type {
        return Err(HeadError::NoContentType);
    }
    let (status, reason) = match (status, location.is_some()) {
        (Some(s), _) => s,
        (None, true) => (302, "Found".to_owned()),
        (None, false) => (200, "OK".to_owned()),
    };
    Ok(CgiHead {
        status,
        reason,
        fields,
        content_length,
        kind: HeadKind::Document,
    })
}

fn parse_status(value: &str) -> Result<(u16, String), HeadError> {
    let bad = || HeadError::BadStatus(value.to_owned());
    let (code, reason) = value.split_once(' ').unwrap_or((value, ""));
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let code: u16 = code.parse().map_err(|_| bad())?;
    if !(100..=599).contains(&code) || reason.contains(['\r', '\n']) {
        return Err(bad());
    }
    Ok((code, reason.trim().to_owned()))
}
