//! A user's small HTTP/1.1 client, sketched as one would for tokio (a `TcpStream` in a
//! `BufReader`, `read_line` for the status line and headers, `read_exact` for a
//! `Content-Length` body, `timeout` around the connect and each read, `??` to turn both
//! errors into one, and the connection kept for the next request) and then written for
//! overlap, against a loopback server the test spawns. The test checks the answers, that
//! three requests share one connection, that the client reconnects once the server closes
//! it, and that a server that never answers makes the request fail with `TimedOut`.

mod support;

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use overlap::io::{self, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use overlap::net::{TcpListener, TcpStream};
use overlap::time::timeout;
use support::within;

const HANG: Duration = Duration::from_secs(10);

/// One parsed response.
#[derive(Debug, PartialEq)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A keep-alive client for one server.
struct Client {
    addr: SocketAddr,
    conn: Option<BufReader<TcpStream>>,
    read_timeout: Duration,
    /// Connections opened so far.
    connects: usize,
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

impl Client {
    fn new(addr: SocketAddr, read_timeout: Duration) -> Client {
        Client {
            addr,
            conn: None,
            read_timeout,
            connects: 0,
        }
    }

    /// `GET`s or `POST`s `path`; on a kept connection the server closed meanwhile, retries
    /// once on a new one (the request is idempotent in this test).
    async fn request(&mut self, method: &str, path: &str, body: &[u8]) -> io::Result<Response> {
        let reused = self.conn.is_some();
        match self.try_request(method, path, body).await {
            // The server closed the idle connection: we learn it at the first read (or
            // write, if its reset came back first).
            Err(e)
                if reused
                    && matches!(
                        e.kind(),
                        io::ErrorKind::UnexpectedEof
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::BrokenPipe
                    ) =>
            {
                self.conn = None;
                self.try_request(method, path, body).await
            }
            other => other,
        }
    }

    async fn try_request(&mut self, method: &str, path: &str, body: &[u8]) -> io::Result<Response> {
        if self.conn.is_none() {
            // `Elapsed` converts into `io::Error` (`TimedOut`), so `??` works, as in tokio.
            let stream = timeout(Duration::from_secs(5), TcpStream::connect(self.addr)).await??;
            stream.set_nodelay(true)?;
            self.conn = Some(BufReader::new(stream));
            self.connects += 1;
        }
        let conn = self.conn.as_mut().unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        );
        // The BufReader passes writes through to the stream, as tokio's does.
        conn.write_all(head.as_bytes()).await?;
        conn.write_all(body).await?;
        conn.flush().await?;
        let result = timeout(self.read_timeout, read_response(conn)).await;
        let response = match result {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                self.conn = None;
                return Err(e);
            }
            Err(elapsed) => {
                self.conn = None; // the answer may still come: this connection is lost
                return Err(elapsed.into());
            }
        };
        if response.header("connection") == Some("close") {
            self.conn = None;
        }
        Ok(response)
    }
}

async fn read_response(conn: &mut BufReader<TcpStream>) -> io::Result<Response> {
    let mut line = String::new();
    if conn.read_line(&mut line).await? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let status = line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        if conn.read_line(&mut line).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        let (name, value) = l.split_once(':').ok_or_else(|| bad("bad header"))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse().map_err(|_| bad("bad length")))
        .transpose()?
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body).await?;
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// The test's server: answers `GET /hello`, echoes `POST /echo`, closes after
/// `GET /bye` (with `Connection: close`), and never answers `GET /stall`.
async fn serve(listener: TcpListener, accepted: Rc<Cell<usize>>) {
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        accepted.set(accepted.get() + 1);
        overlap::spawn(async move {
            let mut conn = BufReader::new(stream);
            let mut line = String::new();
            loop {
                line.clear();
                if conn.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                let mut parts = line.split_whitespace();
                let (method, path) = (
                    parts.next().unwrap().to_string(),
                    parts.next().unwrap().to_string(),
                );
                let mut len = 0usize;
                loop {
                    line.clear();
                    conn.read_line(&mut line).await.unwrap();
                    let l = line.trim_end();
                    if l.is_empty() {
                        break;
                    }
                    if let Some(v) = l.strip_prefix("Content-Length: ") {
                        len = v.parse().unwrap();
                    }
                }
                let mut body = vec![0u8; len];
                conn.read_exact(&mut body).await.unwrap();
                let (answer, close): (Vec<u8>, bool) = match (method.as_str(), path.as_str()) {
                    ("GET", "/hello") => (b"hello, world".to_vec(), false),
                    ("POST", "/echo") => (body, false),
                    ("GET", "/bye") => (b"bye".to_vec(), true),
                    ("GET", "/stall") => {
                        std::future::pending::<()>().await;
                        unreachable!()
                    }
                    _ => (b"no such page".to_vec(), false),
                };
                let status = if answer == b"no such page" {
                    "404 Not Found"
                } else {
                    "200 OK"
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\n{}\r\n",
                    answer.len(),
                    if close { "Connection: close\r\n" } else { "" }
                );
                let stream = conn.get_mut();
                stream.write_all(head.as_bytes()).await.unwrap();
                stream.write_all(&answer).await.unwrap();
                if close {
                    return;
                }
            }
        });
    }
}

async fn start_server() -> (SocketAddr, Rc<Cell<usize>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Rc::new(Cell::new(0));
    overlap::spawn(serve(listener, accepted.clone()));
    (addr, accepted)
}

#[overlap::test]
async fn requests_share_one_kept_alive_connection() {
    let (addr, accepted) = start_server().await;
    let mut client = Client::new(addr, HANG);
    let hello = within(HANG, client.request("GET", "/hello", b""), "hello")
        .await
        .unwrap();
    assert_eq!(
        (hello.status, hello.body.as_slice()),
        (200, &b"hello, world"[..])
    );
    // A body bigger than the BufReader's buffer: `read_exact` takes the rest from the socket.
    let big = support::pattern(100_000);
    let echo = within(HANG, client.request("POST", "/echo", &big), "echo")
        .await
        .unwrap();
    assert_eq!(echo.status, 200);
    assert_eq!(echo.header("Content-Length"), Some("100000"));
    assert!(echo.body == big, "the echoed body differs");
    let missing = within(HANG, client.request("GET", "/nope", b""), "404")
        .await
        .unwrap();
    assert_eq!(
        (missing.status, missing.body.as_slice()),
        (404, &b"no such page"[..])
    );
    assert_eq!((client.connects, accepted.get()), (1, 1));
}

#[overlap::test]
async fn the_client_reconnects_after_the_server_closes() {
    let (addr, accepted) = start_server().await;
    let mut client = Client::new(addr, HANG);
    let bye = within(HANG, client.request("GET", "/bye", b""), "bye")
        .await
        .unwrap();
    assert_eq!((bye.status, bye.header("connection")), (200, Some("close")));
    let hello = within(HANG, client.request("GET", "/hello", b""), "hello")
        .await
        .unwrap();
    assert_eq!(hello.body, b"hello, world");
    assert_eq!((client.connects, accepted.get()), (2, 2));
}

#[overlap::test]
async fn a_kept_connection_the_server_dropped_is_retried_once() {
    let (addr, accepted) = start_server().await;
    let mut client = Client::new(addr, HANG);
    within(HANG, client.request("GET", "/hello", b""), "first")
        .await
        .unwrap();
    // The server goes away without a `Connection: close` (an idle timeout, say): swap in a
    // kept connection whose server has closed it, after answering a `/bye` asked by hand.
    let mut other = Client::new(addr, HANG);
    other.request("GET", "/hello", b"").await.unwrap();
    let mut stolen = other.conn.take().unwrap();
    stolen
        .write_all(b"GET /bye HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        .await
        .unwrap();
    let bye = within(HANG, read_response(&mut stolen), "bye")
        .await
        .unwrap();
    assert_eq!(bye.body, b"bye");
    client.conn = Some(stolen); // a kept connection whose server is gone
    let hello = within(HANG, client.request("GET", "/hello", b""), "retried")
        .await
        .unwrap();
    assert_eq!(hello.body, b"hello, world");
    assert_eq!((client.connects, accepted.get()), (2, 3));
}

#[overlap::test]
async fn a_server_that_never_answers_times_the_request_out() {
    let (addr, _accepted) = start_server().await;
    let mut client = Client::new(addr, Duration::from_millis(50));
    let err = within(HANG, client.request("GET", "/stall", b""), "stall")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert!(
        client.conn.is_none(),
        "a timed-out connection is not reused"
    );
    // The next request opens a fresh connection and works.
    client.read_timeout = HANG;
    let hello = within(HANG, client.request("GET", "/hello", b""), "after")
        .await
        .unwrap();
    assert_eq!(hello.body, b"hello, world");
    assert_eq!(client.connects, 2);
}

#[overlap::test]
async fn a_buf_stream_holds_the_request_until_flush_and_reads_the_answer_by_line() {
    use overlap::io::BufStream;
    // tokio's `BufStream<TcpStream>`: the head and body gathered into one send, and the
    // answer read line by line from the same value.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut conn = BufStream::new(TcpStream::connect(addr).await.unwrap());
    let (mut server, _) = listener.accept().await.unwrap();
    conn.write_all(b"POST /echo HTTP/1.1\r\nContent-Length: 4\r\n\r\n")
        .await
        .unwrap();
    conn.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 64];
    let early = server.try_read(&mut buf);
    assert_eq!(
        early.map_err(|e| e.kind()),
        Err(io::ErrorKind::WouldBlock),
        "nothing is sent before the flush"
    );
    conn.flush().await.unwrap();
    let want = b"POST /echo HTTP/1.1\r\nContent-Length: 4\r\n\r\nping";
    let mut got = vec![0u8; want.len()];
    within(HANG, server.read_exact(&mut got), "request")
        .await
        .unwrap();
    assert_eq!(got, want);
    server
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nping")
        .await
        .unwrap();
    let mut status = String::new();
    within(HANG, conn.read_line(&mut status), "status")
        .await
        .unwrap();
    assert_eq!(status, "HTTP/1.1 200 OK\r\n");
    for header in ["Content-Length: 4\r\n", "\r\n"] {
        let mut line = String::new();
        within(HANG, conn.read_line(&mut line), "header")
            .await
            .unwrap();
        assert_eq!(line, header);
    }
    let mut body = [0u8; 4];
    within(HANG, conn.read_exact(&mut body), "body")
        .await
        .unwrap();
    assert_eq!(&body, b"ping");
    let inner: &TcpStream = conn.get_ref();
    assert_eq!(inner.peer_addr().unwrap(), addr);
}

#[overlap::test]
async fn a_connect_to_a_server_that_never_accepts_times_out() {
    // A listener whose accept queue is full drops further SYNs (Linux), so a connect to it
    // hangs: the client's connect `timeout` is what ends it, and the dropped connect
    // releases its socket.
    let socket = overlap::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    let mut timed_out = None;
    for _ in 0..16 {
        match timeout(Duration::from_millis(200), TcpStream::connect(addr)).await {
            Ok(stream) => held.push(stream.unwrap()),
            Err(elapsed) => {
                timed_out = Some(io::Error::from(elapsed));
                break;
            }
        }
    }
    let err = timed_out.expect("some connect waits once the accept queue is full");
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert!(!held.is_empty(), "the queue took some first");
    // Once the listener is gone, a connect is refused at once: the client says so, and
    // does not wait out its limit.
    let mut client = Client::new(addr, HANG);
    drop(listener);
    let err = within(HANG, client.request("GET", "/hello", b""), "after close")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
}
