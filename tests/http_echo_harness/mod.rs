//! The HTTP echo example's connection code served in-process on 127.0.0.1:0, and a client
//! that reads its responses one at a time. A test crate using it declares the example's
//! modules (`conn`, `date`, `memory`, `request`) at its root, as `conn.rs` expects.

use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream};

use crate::conn;
use crate::memory::BodyMemory;
use crate::request::Limits;

/// Runs `client` against an echo server on 127.0.0.1:0 with `limits` (and request bodies
/// sharing 1 GiB, more than any test sends).
pub fn with_server<F, Fut>(limits: Limits, client: F)
where
    F: FnOnce(SocketAddr) -> Fut,
    Fut: Future<Output = ()>,
{
    with_server_sharing(limits, 1 << 30, client)
}

/// Serves one connection as [`with_server`] does, on its own: with a drain of its own and
/// body memory to spare.
pub async fn serve_alone(stream: TcpStream, limits: &Limits) -> std::io::Result<()> {
    let memory = BodyMemory::new(1 << 30);
    conn::serve(stream, limits, &conn::Drain::default(), &memory).await
}

/// Like [`with_server`], with the request bodies of all connections sharing `body_memory`
/// bytes, as the example's `--body-memory` makes them.
pub fn with_server_sharing<F, Fut>(limits: Limits, body_memory: u64, client: F)
where
    F: FnOnce(SocketAddr) -> Fut,
    Fut: Future<Output = ()>,
{
    with_server_sending(limits, body_memory, None, client)
}

/// Like [`with_server_sharing`], with each connection's kernel send buffer set to
/// `send_buffer` bytes (which the kernel doubles, and then never grows) if given: a client
/// that does not read then blocks the server's writes after a few KiB, whatever the
/// machine's autotuning would have allowed.
pub fn with_server_sending<F, Fut>(
    limits: Limits,
    body_memory: u64,
    send_buffer: Option<u32>,
    client: F,
) where
    F: FnOnce(SocketAddr) -> Fut,
    Fut: Future<Output = ()>,
{
    overlap::block_on(async {
        let socket = overlap::net::TcpSocket::new_v4().unwrap();
        if let Some(bytes) = send_buffer {
            // Accepted connections inherit it.
            socket.set_send_buffer_size(bytes).unwrap();
        }
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener: TcpListener = socket.listen(128).unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = Rc::new(limits);
        let memory = Rc::new(BodyMemory::new(body_memory));
        overlap::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let (limits, memory) = (limits.clone(), memory.clone());
                overlap::spawn(async move {
                    let drain = conn::Drain::default();
                    let _ = conn::serve(stream, &limits, &drain, &memory).await;
                });
            }
        });
        client(addr).await;
    })
}

/// A POST head for `len` bytes, asking for `100 Continue` if `expect`.
pub fn post_head(len: usize, expect: bool) -> Vec<u8> {
    let expect = if expect {
        "Expect: 100-continue\r\n"
    } else {
        ""
    };
    format!("POST / HTTP/1.1\r\nHost: t\r\n{expect}Content-Length: {len}\r\n\r\n").into_bytes()
}

/// A mebibyte.
pub const MIB: usize = 1 << 20;

/// A client that sent the head of a 1 MiB body and was invited to send it (`100 Continue`):
/// the server has reserved room for it.
pub async fn hold_the_budget(addr: SocketAddr) -> Client {
    let mut holder = Client::connect(addr).await;
    holder.send(&post_head(MIB, true)).await;
    assert_eq!(holder.response(false).await.status, 100);
    holder
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        let h = self
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name));
        h.map(|(_, v)| v.as_str())
    }
}

/// A client connection that reads responses one at a time.
pub struct Client {
    pub stream: TcpStream,
    pub buf: Vec<u8>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        Client {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Reads more; false at EOF.
    pub async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 64 * 1024];
        let n = self.stream.read(&mut chunk).await.unwrap();
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    /// The next response; `head_only` for the answer to a HEAD request (no body follows).
    pub async fn response(&mut self, head_only: bool) -> Response {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut r = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(len) = r.parse(&self.buf).unwrap() {
                let headers: Vec<(String, String)> = r
                    .headers
                    .iter()
                    .map(|h| {
                        let v = String::from_utf8(h.value.to_vec()).unwrap();
                        (h.name.to_string(), v)
                    })
                    .collect();
                let status = r.code.unwrap();
                let mut resp = Response {
                    status,
                    headers,
                    body: Vec::new(),
                };
                let cl: usize = match (status, head_only) {
                    (100, _) | (_, true) => 0,
                    _ => resp.header("content-length").unwrap().parse().unwrap(),
                };
                while self.buf.len() < len + cl {
                    assert!(self.fill().await, "EOF inside a response body");
                }
                resp.body = self.buf[len..len + cl].to_vec();
                self.buf.drain(..len + cl);
                return resp;
            }
            assert!(
                self.fill().await,
                "EOF before a complete response: {:?}",
                self.buf
            );
        }
    }

    /// Asserts the server closes the connection with nothing more to say.
    pub async fn expect_eof(&mut self) {
        assert!(!self.fill().await, "expected EOF, got {:?}", self.buf);
        assert!(self.buf.is_empty());
    }
}

pub async fn one_request(addr: SocketAddr, req: &[u8]) -> Response {
    let mut c = Client::connect(addr).await;
    c.send(req).await;
    c.response(false).await
}
