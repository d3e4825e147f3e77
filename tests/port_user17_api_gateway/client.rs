//! The tests' HTTP client: requests written raw, responses read back with the gateway's
//! own head parser and body framing, a body cut short by a close reported as such.

use std::net::SocketAddr;

use overlap::io::AsyncWriteExt;
use overlap::net::TcpStream;

use super::http::{relay_body, Conn, Framing, Head};

/// A response as read.
#[derive(Debug)]
pub struct Response {
    pub head: Head,
    pub body: Vec<u8>,
    /// Whether the body ended as its framing said (not by a close).
    pub complete: bool,
}

impl Response {
    pub fn status(&self) -> u16 {
        self.head.status()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.get(name)
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

/// A client connection with its read-ahead.
pub struct Client {
    pub conn: Conn<TcpStream>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).await.unwrap();
        s.set_nodelay(true).unwrap();
        Client { conn: Conn::new(s) }
    }

    pub async fn send(&mut self, raw: impl AsRef<[u8]>) {
        self.conn.io.write_all(raw.as_ref()).await.unwrap();
    }

    /// The next response to a request of `method`; `None` at end of file before it.
    pub async fn response_to(&mut self, method: &str) -> Option<Response> {
        self.response_with_progress(method, |_| {}).await
    }

    /// As [`response_to`](Self::response_to), `progress` told each piece of body read.
    pub async fn response_with_progress(
        &mut self,
        method: &str,
        progress: impl FnMut(usize),
    ) -> Option<Response> {
        let head = self.conn.read_head(64 * 1024).await.unwrap()?;
        let framing = head.response_framing(method).unwrap();
        let mut body = Vec::new();
        let done = relay_body(&mut self.conn, &mut body, framing, Framing::Empty, progress).await;
        Some(Response {
            head,
            body,
            complete: done.is_ok(),
        })
    }

    pub async fn response(&mut self) -> Response {
        self.response_to("GET").await.expect("a response, not EOF")
    }

    /// `GET path` on this connection (keep-alive), with `extra` header lines.
    pub async fn get(&mut self, path: &str, extra: &str) -> Response {
        let req = format!("GET {path} HTTP/1.1\r\nHost: gw\r\n{extra}\r\n");
        self.send(req).await;
        self.response().await
    }

    /// `method path` with a Content-Length body.
    pub async fn with_body(&mut self, method: &str, path: &str, body: &[u8]) -> Response {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: gw\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        self.send(head).await;
        self.send(body).await;
        self.response().await
    }

    /// Whether the gateway closed the connection: end of file, or a reset, with nothing
    /// more to read.
    pub async fn closed(&mut self) -> bool {
        matches!(self.conn.read_head(1024).await, Ok(None) | Err(_))
    }
}

/// `GET path` on a new connection.
pub async fn get(addr: SocketAddr, path: &str) -> Response {
    Client::connect(addr).await.get(path, "").await
}
