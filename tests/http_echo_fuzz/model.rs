//! A model of RFC 9112 for the HTTP echo example's fuzz test: what each request of a stream
//! is due (an exact echo, a refusal, or either where the RFC leaves the server room), with
//! the example's own limits and documented choices where the RFC lets it choose.

/// The example's default limits (request.rs), which the model applies as it does.
pub const MAX_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;
const MAX_BODY: u64 = 8 << 20;
const MAX_CHUNK_LINE: usize = 4096;
const MAX_CHUNK_EXTENSIONS: usize = 16 * 1024;

/// What one request is due, by the model.
pub enum Due {
    /// A 200 with `echo` as its body (a HEAD gets none, and the length a GET would get);
    /// when `lenient`, the RFC also lets the server refuse it.
    Echo {
        echo: Vec<u8>,
        method_head: bool,
        /// The echo is the request's head (no body was sent).
        of_head: bool,
        /// The answer says `Connection: close`, and is the last.
        close: bool,
        /// HTTP/1.x: a kept-alive 1.0 connection is answered `Connection: keep-alive`.
        minor: u8,
        /// A 100 Continue may come first.
        expect: bool,
        /// The answer's, for an echoed body (`None`: not checked, the request had several).
        content_type: Option<Vec<u8>>,
        lenient: bool,
        /// The bytes the request took; the next starts after them.
        used: usize,
    },
    /// A 4xx or 5xx, then the close.
    Refuse,
    /// The RFC leaves room, and the model does not say how it is read: any answer, or none.
    Either,
    /// Cut short by the client's close: no answer, or a 4xx, then the close.
    Incomplete,
}

impl std::fmt::Debug for Due {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Due::Echo {
                echo,
                close,
                lenient,
                ..
            } => {
                let echo = String::from_utf8_lossy(echo);
                write!(f, "Echo({echo:?}, close: {close}, lenient: {lenient})")
            }
            Due::Refuse => f.write_str("Refuse"),
            Due::Either => f.write_str("Either"),
            Due::Incomplete => f.write_str("Incomplete"),
        }
    }
}

fn tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn ctl(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
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

/// The line at the start of `buf`, without its end; the bytes it takes; whether it ended
/// with a bare LF. `None` if it has not ended.
fn line(buf: &[u8]) -> Option<(&[u8], usize, bool)> {
    let lf = buf.iter().position(|&b| b == b'\n')?;
    Some(match buf[..lf].strip_suffix(b"\r") {
        Some(l) => (l, lf + 1, false),
        None => (&buf[..lf], lf + 1, true),
    })
}

/// RFC 9110 §7.2, RFC 3986 §3.2.2: `uri-host [ ":" port ]`, maybe empty.
fn valid_host(v: &[u8]) -> bool {
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || b"-._~".contains(&b);
    let sub_delim = |b: u8| b"!$&'()*+,;=".contains(&b);
    let (host, port) = match v.first() {
        Some(b'[') => match v.iter().position(|&b| b == b']') {
            Some(end) => v.split_at(end + 1),
            None => return false,
        },
        _ => v.split_at(v.iter().position(|&b| b == b':').unwrap_or(v.len())),
    };
    let port_ok = port.is_empty() || (port[0] == b':' && port[1..].iter().all(u8::is_ascii_digit));
    let host_ok = if let [b'[', inner @ .., b']'] = host {
        !inner.is_empty()
            && inner
                .iter()
                .all(|&b| unreserved(b) || sub_delim(b) || b == b':')
    } else {
        let mut i = 0;
        while i < host.len() && (unreserved(host[i]) || sub_delim(host[i]) || host[i] == b'%') {
            if host[i] == b'%'
                && !host
                    .get(i + 1..i + 3)
                    .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
            {
                return false;
            }
            i += if host[i] == b'%' { 3 } else { 1 };
        }
        i == host.len()
    };
    port_ok && host_ok
}

/// Comma-separated list members, OWS trimmed, empty ones dropped, lowercased.
fn members(v: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    v.split(|&b| b == b',')
        .map(trim_ows)
        .filter(|m| !m.is_empty())
        .map(<[u8]>::to_ascii_lowercase)
}

/// Field lines up to the empty line that ends them, as RFC 9112 §5 reads them: `Ok` with
/// the fields and the bytes they took, or what the request is due.
#[allow(clippy::type_complexity)]
fn fields(buf: &[u8], lenient: &mut bool) -> Result<(Vec<(Vec<u8>, Vec<u8>)>, usize), Due> {
    let (mut out, mut at) = (Vec::new(), 0);
    loop {
        let Some((l, used, bare_lf)) = line(&buf[at..]) else {
            return Err(if buf.len() > MAX_HEAD {
                Due::Refuse
            } else {
                Due::Incomplete
            });
        };
        at += used;
        // The bare LF is a MAY of §2.2.
        *lenient |= bare_lf;
        if l.is_empty() {
            return Ok((out, at));
        }
        // Obs-fold or whitespace before the first field: reject or read it another way (§5.2,
        // §2.2); a bare CR is invalid or a SP (§2.2); CR, LF or NUL in a value likewise, and
        // other controls may be kept (RFC 9110 §5.5).
        if matches!(l[0], b' ' | b'\t') || l.iter().any(|&b| ctl(b)) {
            return Err(Due::Either);
        }
        let Some(colon) = l.iter().position(|&b| b == b':') else {
            return Err(Due::Refuse);
        };
        // Whitespace before the colon is a 400 (§5.1), as is any other non-token.
        if colon == 0 || !l[..colon].iter().all(|&b| tchar(b)) {
            return Err(Due::Refuse);
        }
        out.push((l[..colon].to_vec(), trim_ows(&l[colon + 1..]).to_vec()));
        if out.len() > MAX_HEADERS {
            return Err(Due::Refuse);
        }
    }
}

/// What the request at the start of `buf` is due.
fn model(buf: &[u8]) -> Due {
    let mut lenient = false;
    // Empty lines before the request line: SHOULD ignore one, MAY more (§2.2).
    let mut at = 0;
    while at < buf.len() && matches!(buf[at], b'\r' | b'\n') {
        match &buf[at..] {
            [b'\n', ..] => at += 1,
            [b'\r', b'\n', ..] => at += 2,
            [b'\r'] => return Due::Incomplete,
            _ => return Due::Either,
        }
        lenient = true;
    }
    // Head too large: 431 or 414, whatever else is wrong. The empty lines before it are no
    // part of it.
    let Some(head_len) = head_end(&buf[at..]).map(|n| at + n) else {
        return if buf.len() - at > MAX_HEAD {
            Due::Refuse
        } else {
            Due::Incomplete
        };
    };
    if head_len - at > MAX_HEAD {
        return Due::Refuse;
    }
    let (req_line, used, bare_lf) = line(&buf[at..]).unwrap();
    lenient |= bare_lf;
    at += used;
    if req_line.iter().any(|&b| ctl(b) && b != b'\r') {
        return Due::Refuse;
    }
    // A bare CR, a tab or extra spaces: words on whitespace are a MAY (§3).
    let parts: Vec<&[u8]> = req_line.split(|&b| b == b' ').collect();
    if req_line.iter().any(|&b| b == b'\r' || b == b'\t')
        || parts.len() != 3
        || parts.iter().any(|p| p.is_empty())
    {
        return Due::Either;
    }
    let (method, target, version) = (parts[0], parts[1], parts[2]);
    if !method.iter().all(|&b| tchar(b)) {
        return Due::Refuse;
    }
    // Not a URI character (non-ASCII, `"<>\^`{|}`), a fragment (`#`, in no form of
    // request-target), or the asterisk-form but for OPTIONS (§3.2): SHOULD be a 400 or a
    // 301 (§3).
    lenient |= target
        .iter()
        .any(|&b| !b.is_ascii() || b"\"<>\\^`{|}#".contains(&b))
        || (target == b"*" && method != b"OPTIONS");
    let minor = match version {
        b"HTTP/1.1" => 1,
        b"HTTP/1.0" => 0,
        // A later 1.x is served as 1.1, or refused (RFC 9110 §6.2).
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', d] if d.is_ascii_digit() => return Due::Either,
        _ => return Due::Refuse,
    };
    // The example answers CONNECT with 501.
    if method == b"CONNECT" {
        return Due::Refuse;
    }
    let fields = match fields(&buf[at..head_len], &mut lenient) {
        Ok((fields, _)) => fields,
        Err(due) => return due,
    };
    let all = |name: &'static str| {
        fields
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| &v[..])
    };
    // Exactly one valid Host in HTTP/1.1, never two (§3.2).
    let hosts: Vec<&[u8]> = all("host").collect();
    if hosts.len() > 1 || (minor == 1 && hosts.is_empty()) || !hosts.iter().all(|h| valid_host(h)) {
        return Due::Refuse;
    }
    // HTTP/1.0 closes unless asked to keep alive; `close` wins.
    let tokens: Vec<Vec<u8>> = all("connection").flat_map(members).collect();
    let mut close = tokens.iter().any(|t| t == b"close")
        || (minor == 0 && !tokens.iter().any(|t| t == b"keep-alive"));
    let expects: Vec<&[u8]> = all("expect").collect();
    let expect = match expects[..] {
        [] => false,
        [e] if e.eq_ignore_ascii_case(b"100-continue") => minor == 1,
        // Another expectation MAY get a 417 (RFC 9110 §10.1.1).
        _ => return Due::Either,
    };
    let types: Vec<&[u8]> = all("content-type").collect();
    let content_type = match types[..] {
        [] => Some(b"application/octet-stream".to_vec()),
        [t] => Some(t.to_vec()),
        _ => None,
    };
    let codings: Vec<Vec<u8>> = all("transfer-encoding").flat_map(members).collect();
    let te = all("transfer-encoding").next().is_some();
    let lengths: Vec<&[u8]> = all("content-length").collect();
    let mut body = Vec::new();
    let mut at = head_len;
    let chunked = if te {
        // HTTP/1.0 framing is faulty (§6.1); `chunked` must be last, and only there (§6.3);
        // a coding before it the example does not know: 501.
        if minor == 0
            || codings.is_empty()
            || codings.iter().filter(|c| c.starts_with(b"chunked")).count() > 1
        {
            return Due::Refuse;
        }
        match codings.last().unwrap().as_slice() {
            b"chunked" if codings.len() == 1 => {}
            c if c.starts_with(b"chunked") && trim_ows(&c[7..]).starts_with(b";") => {
                return Due::Either
            }
            _ => return Due::Refuse,
        }
        // With a Content-Length too: MAY be refused, else read as chunked and closed (§6.1).
        if !lengths.is_empty() {
            lenient = true;
            close = true;
        }
        true
    } else {
        let mut n = None;
        for v in lengths.iter().flat_map(|v| v.split(|&b| b == b',')) {
            let v = trim_ows(v);
            if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
                return Due::Refuse;
            }
            let value = v.iter().fold(0u64, |n, &d| {
                n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
            });
            if n.is_some_and(|n| n != value) {
                return Due::Refuse;
            }
            n = Some(value);
        }
        // The same length twice, or as a list: MAY be taken as one (RFC 9110 §8.6).
        lenient |= lengths.len() > 1 || lengths.iter().any(|v| v.contains(&b','));
        let n = n.unwrap_or(0);
        if n > MAX_BODY {
            return Due::Refuse;
        }
        let Some(data) = buf.get(at..at + n as usize) else {
            return Due::Incomplete;
        };
        body.extend_from_slice(data);
        at += n as usize;
        false
    };
    if chunked {
        match chunks(buf, &mut at, &mut body, &mut lenient) {
            Ok(()) => {}
            Err(due) => return due,
        }
    }
    let of_head = !chunked && body.is_empty();
    let echo = if of_head {
        let mut text = [method, b" ", target, b" HTTP/1.", &[b'0' + minor], b"\r\n"].concat();
        for (n, v) in &fields {
            text.extend_from_slice(&[&n[..], b": ", v, b"\r\n"].concat());
        }
        text
    } else {
        body
    };
    Due::Echo {
        echo,
        method_head: method == b"HEAD",
        of_head,
        close,
        minor,
        expect: expect && !of_head,
        content_type,
        lenient,
        used: at,
    }
}

/// Where the head at the start of `buf` ends (after its empty line), if it does.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    let (_, mut at, _) = line(buf)?;
    loop {
        let (l, used, _) = line(&buf[at..])?;
        at += used;
        if l.is_empty() {
            return Some(at);
        }
    }
}

/// Decodes a chunked body (§7.1) from `buf[*at..]` into `body`.
fn chunks(buf: &[u8], at: &mut usize, body: &mut Vec<u8>, lenient: &mut bool) -> Result<(), Due> {
    // What the chunk-size lines hold after their digits, over the whole body.
    let mut extensions = 0;
    loop {
        let rest = &buf[*at..];
        // The example refuses a line that does not start with a digit, or runs on too long.
        if rest.first().is_some_and(|b| !b.is_ascii_hexdigit()) {
            return Err(Due::Refuse);
        }
        let Some((l, used, bare_lf)) = line(rest) else {
            return Err(if rest.len() > MAX_CHUNK_LINE {
                Due::Refuse
            } else {
                Due::Incomplete
            });
        };
        if used > MAX_CHUNK_LINE {
            return Err(Due::Refuse);
        }
        // Control bytes or a bare LF: the line ends differently for different readers.
        if bare_lf || l.iter().any(|&b| ctl(b) && b != b'\r') {
            return Err(Due::Refuse);
        }
        if l.contains(&b'\r') {
            return Err(Due::Either);
        }
        let digits = l.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        let size = l[..digits].iter().fold(0u64, |n, &d| {
            let d = (d as char).to_digit(16).unwrap() as u64;
            n.saturating_mul(16).saturating_add(d)
        });
        // Over 16 digits: the example refuses what a u64 may still hold.
        *lenient |= digits > 16;
        extensions += l.len() - digits;
        if extensions > MAX_CHUNK_EXTENSIONS {
            return Err(Due::Refuse);
        }
        let ext = trim_ows(&l[digits..]);
        // BWS is for before a `;` only.
        *lenient |= ext.is_empty() && digits < l.len();
        if !ext.is_empty() && ext[0] != b';' {
            return Err(Due::Refuse);
        }
        // Extensions are ignored; a malformed one MAY be refused.
        *lenient |= ext.split(|&b| b == b';').skip(1).any(|e| {
            let (name, value) = match e.iter().position(|&b| b == b'=') {
                Some(eq) => (trim_ows(&e[..eq]), Some(trim_ows(&e[eq + 1..]))),
                None => (trim_ows(e), None),
            };
            name.is_empty()
                || !name.iter().all(|&b| tchar(b))
                || value.is_some_and(|v| v.is_empty() || !v.iter().all(|&b| tchar(b)))
        });
        *at += used;
        if (body.len() as u64).saturating_add(size) > MAX_BODY {
            return Err(Due::Refuse);
        }
        if size == 0 {
            // Trailer fields, read as a head's (§7.1.2), and held to its limit.
            let (_, used) = fields(&buf[*at..], lenient)?;
            if used > MAX_HEAD {
                return Err(Due::Refuse);
            }
            *at += used;
            return Ok(());
        }
        let size = size as usize;
        let (Some(data), Some(end)) = (
            buf.get(*at..*at + size),
            buf.get(*at + size..*at + size + 2),
        ) else {
            return Err(Due::Incomplete);
        };
        if end != b"\r\n" {
            return Err(Due::Refuse);
        }
        body.extend_from_slice(data);
        *at += size + 2;
    }
}

/// What each request of a stream is due, up to the first that ends the connection, with
/// whether it is a `HEAD` (its answer then has no body).
pub fn model_stream(buf: &[u8]) -> Vec<(Due, bool)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let rest = &buf[at..];
        let head = rest[rest
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count()..]
            .starts_with(b"HEAD ");
        let due = model(rest);
        let next = match &due {
            Due::Echo {
                close: false, used, ..
            } => Some(*used),
            _ => None,
        };
        out.push((due, head));
        match next {
            Some(used) => at += used,
            None => break,
        }
    }
    out
}
