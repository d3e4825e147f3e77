//! The tests' HTTP/1.1 server on 127.0.0.1:0, written with overlap: one task per
//! connection, keep-alive by default, its behaviour chosen per server (close after K
//! requests, close when idle, reset or close on the K-th request without answering) and
//! per path (chunked, `Connection: close`, HTTP/1.0, malformed answers, never answering,
//! half a body, a head cut short, a reset mid-body, a slow answer, an unsolicited `408` afterwards). It
//! counts what it sees, so tests can check what the pool did on the wire.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream};
use overlap::time::{sleep, timeout};
use overlap::{JoinHandle, JoinSet};

/// What the server does, beyond answering each request.
#[derive(Clone, Copy, Debug, Default)]
pub struct Behaviour {
    /// Closes a connection, without saying so, after this many answers.
    pub close_after: Option<u32>,
    /// Closes a connection idle for this long.
    pub idle_close: Option<Duration>,
    /// Reads the K-th request of each connection, then resets it (SO_LINGER 0) unanswered.
    pub reset_on: Option<u32>,
    /// Reads the K-th request of each connection, then closes it unanswered.
    pub close_on: Option<u32>,
}

/// What the server saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Connections accepted.
    pub accepts: Cell<u32>,
    /// Requests read (answered or not).
    pub requests: Cell<u32>,
    /// Connections open now.
    pub live: Cell<u32>,
    /// The most open at once.
    pub most_live: Cell<u32>,
    /// Connections the client closed (EOF while waiting for a request).
    pub client_closes: Cell<u32>,
    /// `method path` of each request, in the order read.
    pub log: RefCell<Vec<String>>,
}

/// A running server; stopped (every task aborted, every socket closed) when dropped.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    /// What it saw.
    pub seen: Rc<Seen>,
    accept: JoinHandle<()>,
    conns: Rc<RefCell<JoinSet<()>>>,
}

impl Server {
    /// Starts a server with `behaviour`.
    pub async fn start(behaviour: Behaviour) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Rc::new(Seen::default());
        let conns = Rc::new(RefCell::new(JoinSet::new()));
        let accept = overlap::spawn({
            let (seen, conns) = (seen.clone(), conns.clone());
            async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    // Without it, a second small write (the unsolicited 408) waits for the
                    // client's delayed ACK, 40 ms of real time the paused clock skips.
                    stream.set_nodelay(true).unwrap();
                    bump(&seen.accepts);
                    bump(&seen.live);
                    seen.most_live
                        .set(seen.most_live.get().max(seen.live.get()));
                    let seen = seen.clone();
                    conns.borrow_mut().spawn(async move {
                        let _ = serve(stream, behaviour, &seen).await;
                        seen.live.set(seen.live.get() - 1);
                    });
                }
            }
        });
        Server {
            addr,
            seen,
            accept,
            conns,
        }
    }

    /// `http://127.0.0.1:port{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.accept.abort();
        self.conns.borrow_mut().abort_all();
    }
}

fn bump(c: &Cell<u32>) {
    c.set(c.get() + 1);
}

/// A request as read: method, path, body.
struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
}

/// Reads one request; `None` at EOF before it.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Option<Request>> {
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut words = head.split_whitespace();
    let (method, path) = (
        words.next().unwrap().to_string(),
        words.next().unwrap().to_string(),
    );
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .map_or(0, |v| v.trim().parse::<usize>().unwrap());
    while buf.len() < head_end + len {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[head_end..head_end + len].to_vec();
    buf.drain(..head_end + len);
    Ok(Some(Request { method, path, body }))
}

/// Waits for the client to close (reading and dropping whatever it sends).
async fn until_client_closes(stream: &mut TcpStream, seen: &Seen) {
    let mut sink = [0u8; 1024];
    while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    bump(&seen.client_closes);
}

/// Serves one connection.
async fn serve(mut stream: TcpStream, b: Behaviour, seen: &Seen) -> io::Result<()> {
    let mut buf = Vec::new();
    let mut answered = 0u32;
    loop {
        if b.close_after == Some(answered) {
            return Ok(());
        }
        let next = read_request(&mut stream, &mut buf);
        let req = match b.idle_close {
            Some(idle) => match timeout(idle, next).await {
                Ok(r) => r?,
                Err(_) => return Ok(()),
            },
            None => next.await?,
        };
        let Some(req) = req else {
            bump(&seen.client_closes);
            return Ok(());
        };
        bump(&seen.requests);
        seen.log
            .borrow_mut()
            .push(format!("{} {}", req.method, req.path));
        let nth = answered + 1;
        if b.reset_on == Some(nth) {
            stream.set_linger(Some(Duration::ZERO))?;
            return Ok(());
        }
        if b.close_on == Some(nth) {
            return Ok(());
        }
        let plain = |body: &str| {
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        let echo = format!(
            "{} {} #{nth} {}",
            req.method,
            req.path,
            String::from_utf8_lossy(&req.body)
        );
        match req.path.as_str() {
            "/chunked" => {
                let out = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-sum\r\n\r\n\
                           7;ext=1\r\nhello, \r\n5\r\nworld\r\n0\r\nx-sum: 12\r\n\r\n";
                stream.write_all(out.as_bytes()).await?;
            }
            "/close" => {
                let out = format!(
                    "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{echo}",
                    echo.len()
                );
                stream.write_all(out.as_bytes()).await?;
                return Ok(());
            }
            "/http10" => {
                let out = format!(
                    "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{echo}",
                    echo.len()
                );
                stream.write_all(out.as_bytes()).await?;
                return Ok(());
            }
            "/bad-length" => {
                stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n")
                    .await?
            }
            "/bad-status" => stream.write_all(b"HTTP/1.1 2OO OK\r\n\r\n").await?,
            "/huge-head" => {
                let filler = "a".repeat(9000);
                let out =
                    format!("HTTP/1.1 200 OK\r\nx-filler: {filler}\r\nContent-Length: 0\r\n\r\n");
                stream.write_all(out.as_bytes()).await?;
            }
            "/bad-chunk" => {
                let out =
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n";
                stream.write_all(out.as_bytes()).await?;
            }
            "/never" => {
                until_client_closes(&mut stream, seen).await;
                return Ok(());
            }
            "/half" => {
                stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")
                    .await?;
                until_client_closes(&mut stream, seen).await;
                return Ok(());
            }
            "/cut-head" => {
                stream.write_all(b"HTTP/1.1 200 OK\r\n").await?;
                return Ok(());
            }
            "/rst-mid" => {
                stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")
                    .await?;
                stream.set_linger(Some(Duration::ZERO))?;
                return Ok(());
            }
            "/unsolicited" => {
                stream.write_all(plain(&echo).as_bytes()).await?;
                sleep(Duration::from_secs(1)).await;
                stream
                    .write_all(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n")
                    .await?;
            }
            p if p.starts_with("/slow/") => {
                let ms: u64 = p["/slow/".len()..]
                    .split('/')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                sleep(Duration::from_millis(ms)).await;
                stream.write_all(plain(&echo).as_bytes()).await?;
            }
            _ => stream.write_all(plain(&echo).as_bytes()).await?,
        }
        answered += 1;
    }
}
