//! The tests' side: scripts written into the script directory, and an HTTP client that
//! sends raw requests (an upload alongside the read of the response), then takes the
//! response apart strictly: its head, and its body by `Content-Length` or by chunks,
//! noting a body cut short.

use std::net::SocketAddr;
use std::path::Path;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::TcpStream;

/// Writes the `sh` script `name` (`body` after the `#!/bin/sh` line), executable. Written
/// by a child process, so that no fd of this process has the file open for writing when
/// another test's fork happens: a fork holding it would make the exec fail with ETXTBSY.
pub fn write_script(dir: &Path, name: &str, body: &str) {
    let text = format!("#!/bin/sh\n{body}\n");
    let status = std::process::Command::new("sh")
        .args([
            "-c",
            "printf '%s' \"$1\" > \"$2\" && chmod 755 \"$2\"",
            "sh",
        ])
        .arg(&text)
        .arg(dir.join(name))
        .status()
        .unwrap();
    assert!(status.success(), "writing {name}");
}

/// A response as the client saw it.
#[derive(Debug, Default)]
pub struct Response {
    /// Every byte, as received.
    pub raw: Vec<u8>,
    pub status: u16,
    /// The head's fields, in order.
    pub fields: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
    /// Whether the body was whole (its length met, or its last chunk seen).
    pub complete: bool,
}

impl Response {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The head's text, up to and including its blank line.
    pub fn head(&self) -> String {
        let end = find(&self.raw, b"\r\n\r\n").expect("a head") + 4;
        String::from_utf8_lossy(&self.raw[..end]).into_owned()
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Sends `request` (head and body, as bytes) and reads the response to the end of the
/// connection, writing and reading at once.
pub async fn exchange(addr: SocketAddr, request: &[u8]) -> Response {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut rh, mut wh) = stream.into_split();
    let send = async {
        // The server may answer and close before taking the whole upload (a 413, say).
        let _ = wh.write_all(request).await;
        wh
    };
    let recv = async {
        let mut raw = Vec::new();
        let _ = rh.read_to_end(&mut raw).await;
        raw
    };
    let (_wh, raw) = overlap::join!(send, recv);
    parse(raw)
}

/// A GET of `target`.
pub async fn get(addr: SocketAddr, target: &str) -> Response {
    let req = format!("GET {target} HTTP/1.1\r\nHost: test\r\n\r\n");
    exchange(addr, req.as_bytes()).await
}

/// A POST of `body` to `target`.
pub async fn post(addr: SocketAddr, target: &str, body: &[u8]) -> Response {
    let mut req = format!(
        "POST {target} HTTP/1.1\r\nHost: test\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    exchange(addr, &req).await
}

/// Takes a response apart; panics on anything malformed.
pub fn parse(raw: Vec<u8>) -> Response {
    let mut fields = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut fields);
    let head_len = match resp.parse(&raw) {
        Ok(httparse::Status::Complete(n)) => n,
        other => panic!(
            "no response head ({other:?}): {:?}",
            String::from_utf8_lossy(&raw)
        ),
    };
    let status = resp.code.unwrap();
    let fields: Vec<(String, String)> = resp
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_owned(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let rest = &raw[head_len..];
    let get = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let (body, complete) = if let Some(len) = get("content-length") {
        let len: usize = len.parse().unwrap();
        assert!(rest.len() <= len, "bytes past the Content-Length");
        (rest.to_vec(), rest.len() == len)
    } else {
        assert_eq!(get("transfer-encoding").as_deref(), Some("chunked"));
        dechunk(rest)
    };
    Response {
        raw,
        status,
        fields,
        body,
        complete,
    }
}

/// A chunked body's data, and whether its last chunk came; panics on bad framing.
pub fn dechunk(mut rest: &[u8]) -> (Vec<u8>, bool) {
    let mut body = Vec::new();
    loop {
        let Some(eol) = find(rest, b"\r\n") else {
            return (body, false);
        };
        let size = std::str::from_utf8(&rest[..eol]).unwrap();
        let size = usize::from_str_radix(size, 16).unwrap_or_else(|_| panic!("size {size:?}"));
        let data = &rest[eol + 2..];
        if size == 0 {
            assert_eq!(data, b"\r\n", "the last chunk ends the response");
            return (body, true);
        }
        if data.len() < size + 2 {
            body.extend_from_slice(&data[..data.len().min(size)]);
            return (body, false);
        }
        assert_eq!(&data[size..size + 2], b"\r\n", "a chunk ends in CRLF");
        body.extend_from_slice(&data[..size]);
        rest = &data[size + 2..];
    }
}

/// The pid in the file `path` (a script wrote `$$` or `$!` there), once it is there.
pub async fn pid_in(path: &Path) -> u32 {
    let mut text = String::new();
    crate::support::until(
        || {
            text = std::fs::read_to_string(path).unwrap_or_default();
            text.ends_with('\n')
        },
        "a pid file",
    )
    .await;
    text.trim().parse().unwrap()
}

/// Whether process `pid` has ended: no /proc entry, or a zombie that is not ours to reap
/// (a grandchild whose parent was killed, left to init).
pub fn ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the command's closing parenthesis.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}
