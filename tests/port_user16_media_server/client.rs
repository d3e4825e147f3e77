//! The tests' HTTP client: requests written raw, responses read back by `Content-Length`
//! (none for HEAD and 304), pipelined responses one after another from one buffer.

use std::net::SocketAddr;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::TcpStream;

/// A response as read.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A client connection with its read buffer.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        Client {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
        }
    }

    pub async fn send(&mut self, raw: impl AsRef<[u8]>) {
        self.stream.write_all(raw.as_ref()).await.unwrap();
    }

    /// Reads more; false at EOF.
    async fn fill(&mut self) -> bool {
        let mut chunk = vec![0u8; 64 * 1024];
        let n = self.stream.read(&mut chunk).await.unwrap_or(0);
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    /// The next response (`head` for a HEAD request: no body read); `None` at EOF.
    pub async fn response(&mut self, head: bool) -> Option<Response> {
        let end = loop {
            if let Some(p) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p;
            }
            if !self.fill().await {
                assert!(self.buf.is_empty(), "EOF mid-head: {:?}", self.buf);
                return None;
            }
        };
        let text = String::from_utf8(self.buf[..end].to_vec()).unwrap();
        self.buf.drain(..end + 4);
        let mut lines = text.split("\r\n");
        let status = lines.next().unwrap()[9..12].parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.to_ascii_lowercase(), v.trim().to_string())
            })
            .collect();
        let mut r = Response {
            status,
            headers,
            body: Vec::new(),
        };
        let len: usize = match r.header("content-length") {
            Some(v) if !head && status != 304 => v.parse().unwrap(),
            _ => 0,
        };
        while self.buf.len() < len {
            assert!(self.fill().await, "EOF mid-body");
        }
        r.body = self.buf.drain(..len).collect();
        Some(r)
    }

    /// Reads until EOF, returning whatever came.
    pub async fn rest(&mut self) -> Vec<u8> {
        while self.fill().await {}
        std::mem::take(&mut self.buf)
    }
}

/// One request on a fresh connection (`Connection: close` added), its response.
pub async fn fetch(addr: SocketAddr, method: &str, target: &str, extra: &str) -> Response {
    let mut c = Client::connect(addr).await;
    c.send(&format!(
        "{method} {target} HTTP/1.1\r\nHost: t\r\n{extra}Connection: close\r\n\r\n"
    ))
    .await;
    let r = c.response(method == "HEAD").await.unwrap();
    assert!(c.rest().await.is_empty());
    r
}
