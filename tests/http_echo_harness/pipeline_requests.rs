//! Random valid requests for the HTTP echo example's model (`pipeline_model.rs`): methods,
//! targets and versions, field values with tabs, empty or repeated, obs-text, `Connection`
//! and `Transfer-Encoding` tokens in any case, bodies by length (0 too) or chunked with
//! extensions and trailers, `Expect: 100-continue`; and where to cut a pipeline of them.

use crate::pipeline_model::Req;
use crate::support::Rng;

const HOSTS: &[&str] = &[
    "t",
    "t:8080",
    "127.0.0.1:80",
    "[::1]:8080",
    "",
    "a%41.b-c_d~e",
];

/// Field lines that valid requests may carry, each as (name, value as sent): whitespace
/// around values, tabs inside, empty values, repeated and differently cased names,
/// obs-text, quoted commas.
const ODD_FIELDS: &[(&str, &[u8])] = &[
    ("X-Tabs", b"\t\tv w\t "),
    ("X-Inner", b"a\tb  c"),
    ("X-Empty", b""),
    ("X-Blank", b"   \t"),
    ("Accept", b"a/b"),
    ("accept", b" c/d"),
    ("ACCEPT", b"e/f"),
    ("X-Obs", b"caf\xe9 \xff"),
    ("X-Utf", "café".as_bytes()),
    ("X-Quoted", b"\"a, b\", c"),
    ("x-lower-name", b"v"),
    ("X-Colons", b"a:b: c"),
    ("X-Te-Lookalike", b"chunked"),
    (
        "X-Long",
        b"0123456789012345678901234567890123456789012345678901234567890123456789",
    ),
];

/// `Connection` values that keep an HTTP/1.1 connection open (`None`: no field).
const KEEP_1_1: &[Option<&str>] = &[
    None,
    None,
    Some("keep-alive"),
    Some("Keep-Alive"),
    Some("upgrade-never"),
];
/// ... that keep an HTTP/1.0 one open.
const KEEP_1_0: &[&str] = &[
    "keep-alive",
    "Keep-Alive",
    "KEEP-ALIVE",
    "foo, keep-alive",
    "\tkeep-alive ",
];
/// ... that close either (`None`: no field, which closes HTTP/1.0 only).
const CLOSE: &[&str] = &[
    "close",
    "Close",
    "CLOSE",
    "keep-alive, close",
    "close, keep-alive",
    " close\t",
];

/// Chunk extensions after a chunk size, valid or for the example to ignore.
const EXTENSIONS: &[&str] = &[
    "",
    "",
    ";a=b",
    ";name",
    ";q=\"x;y\"",
    " ;s",
    "\t;t=1",
    ";a=b;c",
];
const CODINGS: &[&str] = &["chunked", "Chunked", "CHUNKED", " chunked\t"];

/// Bytes a body is made of: mostly ones that look like framing.
fn body_bytes(rng: &mut Rng, n: usize) -> Vec<u8> {
    const LOOKALIKE: &[u8] = b"\r\n0;HTTP/1.1 GET:\t";
    (0..n)
        .map(|_| match rng.below(3) {
            0 => LOOKALIKE[rng.below(LOOKALIKE.len())],
            _ => rng.next() as u8,
        })
        .collect()
}

/// A body of a random length, see [`body_len`].
fn random_body(rng: &mut Rng) -> Vec<u8> {
    let n = body_len(rng);
    body_bytes(rng, n)
}

/// A body length: mostly small, sometimes past the echo's copy limit (16 KiB) or the
/// uncounted bodies' (64 KiB).
fn body_len(rng: &mut Rng) -> usize {
    match rng.below(20) {
        0 => 16 * 1024 + rng.below(100),
        1 => 64 * 1024 + 1 + rng.below(5000),
        _ => 1 + rng.below(120),
    }
}

/// Inserts `field` among `fields` at a random place.
fn insert(rng: &mut Rng, fields: &mut Vec<(String, Vec<u8>)>, name: &str, value: &[u8]) {
    let at = rng.below(fields.len() + 1);
    fields.insert(at, (name.to_string(), value.to_vec()));
}

/// A random valid request, the `n`th of its pipeline; `close` if it asks to end the
/// connection.
pub fn random_request(rng: &mut Rng, n: usize, close: bool) -> Req {
    let minor = if rng.below(5) == 0 { 0 } else { 1 };
    const METHODS: &[&str] = &[
        "GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "PATCH", "ECHO-IT",
    ];
    let method = METHODS[rng.below(METHODS.len())];
    let target = match rng.below(6) {
        0 => format!("http://t/abs/{n}?q={n}"),
        1 if method == "OPTIONS" => "*".to_string(),
        _ => format!("/r/{n}?k=v&i={n}"),
    };
    let mut fields = Vec::new();
    if minor == 1 || rng.below(2) == 0 {
        fields.push((
            "Host".to_string(),
            HOSTS[rng.below(HOSTS.len())].as_bytes().to_vec(),
        ));
    }
    for _ in 0..rng.below(4) {
        let (name, value) = ODD_FIELDS[rng.below(ODD_FIELDS.len())];
        insert(rng, &mut fields, name, value);
    }
    // Now and then a head near the limits (16 KiB, 64 fields): it outgrows the server's
    // first read buffer, pipelined behind others.
    match rng.below(15) {
        0 => {
            let big = vec![b'b'; 4000 + rng.below(11_000)];
            insert(rng, &mut fields, "X-Big", &big);
        }
        1 => {
            for i in 0..50 {
                insert(rng, &mut fields, &format!("X-Many-{i}"), b"m");
            }
        }
        _ => {}
    }
    let connection = match (close, minor) {
        (true, 0) if rng.below(3) == 0 => None,
        (true, _) => Some(CLOSE[rng.below(CLOSE.len())]),
        (false, 0) => Some(KEEP_1_0[rng.below(KEEP_1_0.len())]),
        (false, _) => KEEP_1_1[rng.below(KEEP_1_1.len())],
    };
    if let Some(value) = connection {
        insert(rng, &mut fields, "Connection", value.as_bytes());
    }
    if rng.below(3) == 0 {
        let ty = format!("text/x-{n}; charset=\"q\"");
        insert(rng, &mut fields, "Content-Type", ty.as_bytes());
    }
    if minor == 1 && rng.below(5) == 0 {
        let expect: &[u8] = [&b"100-continue"[..], b"100-Continue"][rng.below(2)];
        insert(rng, &mut fields, "Expect", expect);
    }
    let (mut body, mut chunked, mut framed) = (Vec::new(), false, Vec::new());
    let mut chunk_lines = Vec::new();
    match rng.below(10) {
        0..=2 => {}
        3 => {
            let zero: &[u8] = [&b"0"[..], b"000", b"0 "][rng.below(3)];
            insert(rng, &mut fields, "Content-Length", zero);
        }
        4..=6 => {
            body = random_body(rng);
            let len = format!("{}{}", ["", "0", "00"][rng.below(3)], body.len());
            insert(rng, &mut fields, "Content-Length", len.as_bytes());
            framed = body.clone();
        }
        _ if minor == 0 => {
            body = random_body(rng);
            insert(
                rng,
                &mut fields,
                "content-length",
                body.len().to_string().as_bytes(),
            );
            framed = body.clone();
        }
        _ => {
            chunked = true;
            let coding = CODINGS[rng.below(CODINGS.len())];
            insert(rng, &mut fields, "Transfer-Encoding", coding.as_bytes());
            for _ in 0..rng.below(4) {
                let data = random_body(rng);
                let size = match rng.below(3) {
                    0 => format!("{:X}", data.len()),
                    1 => format!("00{:x}", data.len()),
                    _ => format!("{:x}", data.len()),
                };
                let line = format!("{size}{}\r\n", EXTENSIONS[rng.below(EXTENSIONS.len())]);
                chunk_lines.push((framed.len(), line.len()));
                framed.extend_from_slice(line.as_bytes());
                framed.extend_from_slice(&data);
                framed.extend_from_slice(b"\r\n");
                body.extend_from_slice(&data);
            }
            let last = format!(
                "{}{}\r\n",
                ["0", "000"][rng.below(2)],
                EXTENSIONS[rng.below(EXTENSIONS.len())]
            );
            chunk_lines.push((framed.len(), last.len()));
            framed.extend_from_slice(last.as_bytes());
            for t in 0..rng.below(3) {
                framed.extend_from_slice(format!("X-Trailer-{t}: t{n}\r\n").as_bytes());
            }
            framed.extend_from_slice(b"\r\n");
        }
    }
    let mut wire = format!("{method} {target} HTTP/1.{minor}\r\n").into_bytes();
    for (name, value) in &fields {
        wire.extend_from_slice(&[name.as_bytes(), b":", value, b"\r\n"].concat());
    }
    wire.extend_from_slice(b"\r\n");
    let head_len = wire.len();
    wire.extend_from_slice(&framed);
    let chunk_line_cuts = chunk_lines
        .iter()
        .map(|&(at, len)| head_len + at + 1 + rng.below(len - 1))
        .collect();
    Req {
        method,
        target,
        minor,
        fields,
        body,
        chunked,
        wire,
        chunk_line_cuts,
    }
}

/// A pipeline of `n` random valid requests, all keeping the connection open but maybe the
/// last, and sometimes one in the middle (the rest must then go unanswered).
pub fn random_pipeline(rng: &mut Rng, n: usize) -> Vec<Req> {
    let middle_close = (rng.below(6) == 0).then(|| rng.below(n));
    let last_close = rng.below(2) == 0;
    (0..n)
        .map(|i| {
            let close = Some(i) == middle_close || (i + 1 == n && last_close);
            random_request(rng, i, close)
        })
        .collect()
}

/// The wire bytes of a pipeline, with empty lines between some requests (RFC 9112 §2.2), and
/// where to cut them: at random bytes, mid-CRLF, mid chunk-size line, between requests, or
/// at every byte.
pub fn wire_and_cuts(rng: &mut Rng, reqs: &[Req]) -> (Vec<u8>, Vec<usize>) {
    let mut wire = Vec::new();
    let mut cuts = Vec::new();
    for r in reqs {
        if !wire.is_empty() && rng.below(8) == 0 {
            wire.extend_from_slice(b"\r\n");
        }
        let at = wire.len();
        cuts.push(at);
        cuts.extend(
            r.chunk_line_cuts
                .iter()
                .filter(|_| rng.below(2) == 0)
                .map(|c| at + c),
        );
        wire.extend_from_slice(&r.wire);
    }
    // An empty line after the last request too, as some clients send after a body.
    if rng.below(8) == 0 {
        wire.extend_from_slice(b"\r\n");
    }
    // Between the CR and LF of some line ends.
    let crlfs: Vec<usize> = (1..wire.len())
        .filter(|&i| wire[i - 1] == b'\r' && wire[i] == b'\n')
        .collect();
    for _ in 0..rng.below(6) {
        if !crlfs.is_empty() {
            cuts.push(crlfs[rng.below(crlfs.len())]);
        }
    }
    for _ in 0..rng.below(12) {
        cuts.push(rng.below(wire.len() + 1));
    }
    if wire.len() < 3000 && rng.below(6) == 0 {
        cuts.extend(0..wire.len());
    }
    cuts.retain(|&c| c > 0 && c < wire.len());
    cuts.sort_unstable();
    cuts.dedup();
    (wire, cuts)
}
