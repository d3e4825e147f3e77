//! The HTTP/1.1 side of the server: a request head read into a `BytesMut` with `read_buf`
//! (at most `max_head` bytes), parsed into a method, a path, a query and the headers; and
//! the responses, whole (`Content-Length`) or refused and closed (`refuse`).

use std::time::Duration;

use overlap::codec::BytesMut;
use overlap::io::{AsyncReadBufExt, AsyncReadExt, AsyncWriteExt};
use overlap::net::TcpStream;
use overlap::sync::CancellationToken;
use overlap::time::timeout;

/// A request's head.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body's length: `Ok(None)` without the header, `Err` for a bad one.
    pub fn content_length(&self) -> Result<Option<usize>, ()> {
        match self.header("content-length") {
            None => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(drop),
        }
    }
}

/// Why a head was refused: its status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bad {
    Malformed,
    TooLarge,
}

impl Bad {
    pub fn status(self) -> &'static str {
        match self {
            Bad::Malformed => "400 Bad Request",
            Bad::TooLarge => "431 Request Header Fields Too Large",
        }
    }
}

/// Reads the next request's head from `stream` into `buf` (bytes past it stay in `buf`):
/// `Ok(None)` if the connection ended cleanly between requests.
pub async fn read_request(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    max_head: usize,
) -> Result<Option<Request>, Bad> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            if end + 4 > max_head {
                return Err(Bad::TooLarge);
            }
            let head = buf.split_to(end + 4);
            return parse(&head[..end]).map(Some);
        }
        if buf.len() >= max_head {
            return Err(Bad::TooLarge);
        }
        match stream.read_buf(buf).await {
            Ok(0) if buf.is_empty() => return Ok(None),
            Ok(0) | Err(_) => return Err(Bad::Malformed),
            Ok(_) => {}
        }
    }
}

fn parse(head: &[u8]) -> Result<Request, Bad> {
    let head = std::str::from_utf8(head).map_err(|_| Bad::Malformed)?;
    let mut lines = head.split("\r\n");
    let mut parts = lines.next().unwrap_or("").split(' ');
    let (method, target, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v), None) if !m.is_empty() && t.starts_with('/') => (m, t, v),
        _ => return Err(Bad::Malformed),
    };
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(Bad::Malformed);
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line.split_once(':').ok_or(Bad::Malformed)?;
        if name.is_empty() || name.contains(' ') {
            return Err(Bad::Malformed);
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
    Ok(Request {
        method: method.to_string(),
        path: path.to_string(),
        query,
        headers,
    })
}

/// A whole response with a text body.
pub fn response(status: &str, extra: &str, body: &str, close: bool) -> String {
    let connection = if close { "Connection: close\r\n" } else { "" };
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{extra}{connection}\r\n{body}",
        body.len()
    )
}

/// Writes `status` and closes the connection the way a server that refuses must: its
/// write side shut, then what the client still sends read and dropped until it closes (or
/// `drain` passes, or the server shuts down), so the client reads the answer before any
/// reset.
pub async fn refuse(
    mut stream: TcpStream,
    status: &str,
    body: &str,
    drain: Duration,
    token: &CancellationToken,
) {
    let answer = response(status, "", body, true);
    let _ = timeout(drain, stream.write_all(answer.as_bytes())).await;
    let _ = stream.close().await;
    let linger = async {
        let mut sink = [0u8; 4096];
        while let Ok(1..) = stream.read(&mut sink).await {}
    };
    overlap::select! {
        _ = token.cancelled() => {}
        _ = timeout(drain, linger) => {}
    }
}
