//! A model of what the HTTP echo example answers to *valid* requests (the contract at the top
//! of `examples/http_echo/main.rs`): for each request, the status, `Content-Length`,
//! `Connection` and `Content-Type` values and body bytes of its answer, and whether the
//! connection ends after it. `pipeline_requests.rs` generates the requests,
//! `pipeline_answers.rs` holds what comes back to this model.
//!
//! The model derives each answer from the request as the generator describes it (method,
//! target, version, field lines as sent, the decoded body), not from the bytes on the wire:
//! the generator writes those bytes, with framing spelled in many valid ways.

/// One generated request: what it says, and the bytes that say it.
pub struct Req {
    pub method: &'static str,
    pub target: String,
    pub minor: u8,
    /// Field lines as sent: the name, and the value with the whitespace around it.
    pub fields: Vec<(String, Vec<u8>)>,
    /// The body as decoded: empty when there is none.
    pub body: Vec<u8>,
    /// Framed by `Transfer-Encoding: chunked` (else by `Content-Length`, or not at all).
    pub chunked: bool,
    /// The request as sent: head, then the body in its framing.
    pub wire: Vec<u8>,
    /// Offsets in `wire` inside a chunk-size line (after its first byte): cut there.
    pub chunk_line_cuts: Vec<usize>,
}

/// What one request is due.
pub enum Due {
    Echo {
        /// Answering a `HEAD`: no body follows the head.
        head_only: bool,
        length: usize,
        body: Vec<u8>,
        content_type: Vec<u8>,
        /// The `Connection` value: `close` ends the connection after this answer.
        connection: Option<&'static str>,
        /// A `100 Continue` may come first.
        may_continue: bool,
    },
    /// A refusal with this status, `Connection: close`, a one-line reason, then the end.
    Refused { status: u16, head_only: bool },
}

impl std::fmt::Debug for Due {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Due::Echo {
                head_only,
                length,
                body,
                content_type,
                connection,
                may_continue,
            } => write!(
                f,
                "200 (HEAD: {head_only}, Content-Length: {length}, Connection: {connection:?}, \
                 Content-Type: {}, 100 Continue may come: {may_continue}), body {}",
                shown(content_type),
                shown(body)
            ),
            Due::Refused { status, head_only } => write!(f, "{status} (HEAD: {head_only})"),
        }
    }
}

impl Due {
    /// Whether the connection ends after this answer.
    pub fn closes(&self) -> bool {
        match self {
            Due::Echo { connection, .. } => *connection == Some("close"),
            Due::Refused { .. } => true,
        }
    }
}

fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

impl Req {
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.fields
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| trim_ows(v))
    }

    /// The comma-separated tokens of every `name` field, lowercased.
    fn tokens(&self, name: &str) -> Vec<Vec<u8>> {
        self.values(name)
            .flat_map(|v| v.split(|&b| b == b','))
            .map(|t| trim_ows(t).to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .collect()
    }

    /// What the example must answer.
    pub fn due(&self) -> Due {
        let connection = self.tokens("connection");
        let close = connection.iter().any(|t| t == b"close")
            || (self.minor == 0 && !connection.iter().any(|t| t == b"keep-alive"));
        // No body, or an empty one by length: the head comes back as text.
        let of_head = !self.chunked && self.body.is_empty();
        let (echo, content_type) = if of_head {
            let mut text =
                format!("{} {} HTTP/1.{}\r\n", self.method, self.target, self.minor).into_bytes();
            for (name, value) in &self.fields {
                text.extend_from_slice(
                    &[name.as_bytes(), b": ", trim_ows(value), b"\r\n"].concat(),
                );
            }
            let ty = match std::str::from_utf8(&text) {
                Ok(_) => b"text/plain; charset=utf-8".to_vec(),
                Err(_) => b"text/plain".to_vec(),
            };
            (text, ty)
        } else {
            let ty = self.values("content-type").last();
            let ty = ty.unwrap_or(b"application/octet-stream").to_vec();
            (self.body.clone(), ty)
        };
        let head_only = self.method == "HEAD";
        Due::Echo {
            head_only,
            // A HEAD's length is a GET's: its echoed request line would say GET.
            length: if head_only && of_head {
                echo.len() - 1
            } else {
                echo.len()
            },
            body: if head_only { Vec::new() } else { echo },
            content_type,
            connection: match (close, self.minor) {
                (true, _) => Some("close"),
                (false, 0) => Some("keep-alive"),
                (false, _) => None,
            },
            may_continue: self.minor == 1 && !of_head && self.values("expect").next().is_some(),
        }
    }
}

/// A body-less request's due, written out by hand: `head` (its request line and field
/// lines, without the empty line) comes back; with `Connection: connection` if given.
pub fn head_due(method: &str, head: &[u8], connection: Option<&'static str>) -> Due {
    let head_only = method == "HEAD";
    let utf8 = std::str::from_utf8(head).is_ok();
    Due::Echo {
        head_only,
        length: if head_only {
            head.len() - 1
        } else {
            head.len()
        },
        body: if head_only { Vec::new() } else { head.to_vec() },
        content_type: if utf8 {
            b"text/plain; charset=utf-8".to_vec()
        } else {
            b"text/plain".to_vec()
        },
        connection,
        may_continue: false,
    }
}

/// A request's due whose `body` comes back labelled `content_type`, written out by hand.
pub fn body_due(body: &[u8], content_type: &str, connection: Option<&'static str>) -> Due {
    Due::Echo {
        head_only: false,
        length: body.len(),
        body: body.to_vec(),
        content_type: content_type.as_bytes().to_vec(),
        connection,
        may_continue: false,
    }
}

/// What each request of a pipeline is due, up to the first whose answer closes.
pub fn dues(reqs: &[Req]) -> Vec<Due> {
    let mut out = Vec::new();
    for r in reqs {
        let due = r.due();
        let closes = due.closes();
        out.push(due);
        if closes {
            break;
        }
    }
    out
}

/// `text` for a failure message, bytes that are not UTF-8 escaped.
pub fn shown(text: &[u8]) -> String {
    text.escape_ascii().to_string()
}
