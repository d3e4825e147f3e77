//! The tests' HTTP client: raw requests on a connection, replies read by their
//! `Content-Length` (or to the close), with a flag for a body the server cut.

use std::net::SocketAddr;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::TcpStream;

use crate::http::{self, header};

/// A reply as the client saw it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Whether all the bytes the `Content-Length` promised came.
    pub complete: bool,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    pub fn cache(&self) -> &str {
        self.header("x-cache").unwrap_or("")
    }
}

/// A client connection with its read buffer.
pub struct Client {
    pub sock: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let sock = TcpStream::connect(addr).await.unwrap();
        sock.set_nodelay(true).unwrap();
        Client {
            sock,
            buf: Vec::new(),
        }
    }

    pub async fn send_raw(&mut self, raw: &[u8]) {
        self.sock.write_all(raw).await.unwrap();
    }

    /// Sends a request for `path` with `extra` header lines (each ending in CRLF).
    pub async fn request(&mut self, method: &str, path: &str, extra: &str) {
        let raw = format!("{method} {path} HTTP/1.1\r\nHost: cache.test\r\n{extra}\r\n");
        self.send_raw(raw.as_bytes()).await;
    }

    /// Reads a reply's head only.
    pub async fn head(&mut self) -> Reply {
        let head = http::read_head(&mut self.sock, &mut self.buf, 64 * 1024)
            .await
            .expect("a reply head");
        let resp = http::parse_response(&head).unwrap();
        Reply {
            status: resp.status,
            headers: resp.headers,
            body: Vec::new(),
            complete: true,
        }
    }

    /// Reads `n` body bytes exactly.
    pub async fn body_part(&mut self, n: usize) -> Vec<u8> {
        let mut out: Vec<u8> = self.buf.drain(..n.min(self.buf.len())).collect();
        let start = out.len();
        out.resize(n, 0);
        self.sock.read_exact(&mut out[start..]).await.unwrap();
        out
    }

    /// Reads the rest of `reply`'s body, `already` bytes of it read: all the
    /// `Content-Length`, or what comes before the close.
    pub async fn rest(&mut self, mut reply: Reply, already: Vec<u8>) -> Reply {
        let len: usize = reply.header("content-length").unwrap().parse().unwrap();
        let mut body = already;
        let take = (len - body.len()).min(self.buf.len());
        body.extend(self.buf.drain(..take));
        let mut chunk = vec![0u8; 64 * 1024];
        while body.len() < len {
            let want = chunk.len().min(len - body.len());
            match self.sock.read(&mut chunk[..want]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => body.extend_from_slice(&chunk[..n]),
            }
        }
        reply.complete = body.len() == len;
        reply.body = body;
        reply
    }

    /// Reads a whole reply (no body for a HEAD).
    pub async fn reply(&mut self, head_only: bool) -> Reply {
        let reply = self.head().await;
        if head_only {
            return reply;
        }
        self.rest(reply, Vec::new()).await
    }

    /// Whether the server closed the connection (EOF on the next read).
    pub async fn closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        self.buf.is_empty() && matches!(self.sock.read(&mut byte).await, Ok(0) | Err(_))
    }
}

/// One GET on a new connection, with `extra` header lines.
pub async fn get(addr: SocketAddr, path: &str, extra: &str) -> Reply {
    let mut c = Client::connect(addr).await;
    c.request("GET", path, extra).await;
    c.reply(false).await
}
