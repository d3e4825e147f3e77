//! The tests' HTTP client: raw requests written as given (so they can be malformed,
//! pipelined or cut short), and responses parsed by httparse, a parser independent of the
//! server's.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::TcpStream;

use super::support::within;

const HANG: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub fields: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn etag(&self) -> String {
        self.field("etag").expect("an ETag").to_string()
    }
}

/// One connection to the service. Its methods take `&self`, so that a test can write a
/// body (through `&client.stream`) while it reads the answer.
pub struct Client {
    pub stream: TcpStream,
    /// Bytes read past the last response.
    buf: RefCell<Vec<u8>>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            buf: RefCell::new(Vec::new()),
        }
    }

    pub async fn send(&self, raw: &[u8]) {
        (&self.stream).write_all(raw).await.unwrap();
    }

    /// Sends `raw` and reads one response (to a HEAD if `head`).
    pub async fn request(&self, raw: &[u8]) -> Resp {
        self.send(raw).await;
        let is_head = raw.starts_with(b"HEAD ");
        self.response(is_head).await
    }

    /// Reads the next response; its body is empty for a HEAD and for 1xx.
    pub async fn response(&self, to_head: bool) -> Resp {
        within(HANG, self.try_response(to_head), "a response")
            .await
            .unwrap_or_else(|e| panic!("no whole response: {e}; read {:?}", self.buf.borrow()))
    }

    /// As [`response`](Client::response), or why none came whole (the connection ended).
    pub async fn try_response(&self, to_head: bool) -> std::io::Result<Resp> {
        loop {
            if let Some(resp) = self.buffered_response(to_head) {
                return Ok(resp);
            }
            let mut chunk = vec![0u8; 64 * 1024];
            let n = (&self.stream).read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.borrow_mut().extend_from_slice(&chunk[..n]);
        }
    }

    /// The next response, taken from what was read, if it is all there.
    fn buffered_response(&self, to_head: bool) -> Option<Resp> {
        let mut buf = self.buf.borrow_mut();
        let mut fields = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut fields);
        let httparse::Status::Complete(at) = resp.parse(&buf).unwrap() else {
            return None;
        };
        let status = resp.code.unwrap();
        let fields: Vec<(String, String)> = resp
            .headers
            .iter()
            .map(|h| {
                let v = String::from_utf8(h.value.to_vec()).unwrap();
                (h.name.to_ascii_lowercase(), v)
            })
            .collect();
        let len: usize = fields
            .iter()
            .find(|(n, _)| n == "content-length")
            .map_or(0, |(_, v)| v.parse().unwrap());
        let len = if to_head || status < 200 { 0 } else { len };
        if buf.len() < at + len {
            return None;
        }
        let body = buf[at..at + len].to_vec();
        buf.drain(..at + len);
        Some(Resp {
            status,
            fields,
            body,
        })
    }

    /// Whether the server has closed the connection, with nothing more before the end (an
    /// end of file, or a reset).
    pub async fn closed(&self) -> bool {
        let mut rest = Vec::new();
        let read = within(
            HANG,
            overlap::io::read_to_end(&mut &self.stream, &mut rest),
            "the end",
        )
        .await;
        assert!(
            rest.is_empty() && self.buf.borrow().is_empty(),
            "more after the last response: {:?}",
            String::from_utf8_lossy(&rest)
        );
        match read {
            Ok(_) => true,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }
}

/// `PUT /files/<name>` with a `Content-Length` body, and `extra` header lines (each
/// ending in CRLF).
pub fn put(name: &str, body: &[u8], extra: &str) -> Vec<u8> {
    let mut out = put_head(name, body.len(), extra);
    out.extend_from_slice(body);
    out
}

pub fn put_head(name: &str, len: usize, extra: &str) -> Vec<u8> {
    format!("PUT /files/{name} HTTP/1.1\r\nHost: t\r\nContent-Length: {len}\r\n{extra}\r\n")
        .into_bytes()
}

/// `body` chunked into pieces of the sizes `sizes` gives, in turn (each at least 1), with
/// an extension on every third chunk and a trailer at the end.
pub fn chunked(body: &[u8], mut sizes: impl FnMut() -> usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < body.len() {
        let n = sizes().max(1).min(body.len() - at);
        let ext = if i % 3 == 2 { ";name=value" } else { "" };
        out.extend_from_slice(format!("{n:x}{ext}\r\n").as_bytes());
        out.extend_from_slice(&body[at..at + n]);
        out.extend_from_slice(b"\r\n");
        at += n;
        i += 1;
    }
    out.extend_from_slice(b"0\r\nX-Trailer: yes\r\n\r\n");
    out
}

pub fn put_chunked_head(name: &str, extra: &str) -> Vec<u8> {
    format!("PUT /files/{name} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n{extra}\r\n")
        .into_bytes()
}

pub fn get(name: &str, extra: &str) -> Vec<u8> {
    format!("GET /files/{name} HTTP/1.1\r\nHost: t\r\n{extra}\r\n").into_bytes()
}

pub fn head(name: &str, extra: &str) -> Vec<u8> {
    format!("HEAD /files/{name} HTTP/1.1\r\nHost: t\r\n{extra}\r\n").into_bytes()
}

pub fn delete(name: &str, extra: &str) -> Vec<u8> {
    format!("DELETE /files/{name} HTTP/1.1\r\nHost: t\r\n{extra}\r\n").into_bytes()
}

/// Writes `raw` in pieces of `piece` bytes, yielding between them, so that other clients'
/// pieces interleave with these.
pub async fn send_in_pieces(stream: &TcpStream, raw: &[u8], piece: usize) -> std::io::Result<()> {
    let mut w = stream;
    for part in raw.chunks(piece) {
        w.write_all(part).await?;
        overlap::yield_now().await;
    }
    Ok(())
}
