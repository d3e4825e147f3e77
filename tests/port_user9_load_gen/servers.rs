//! The servers the generator loads, on overlap: one accept loop and a task per connection
//! in a `JoinSet`, so dropping a `Server` aborts them all and closes every socket.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpSocket, TcpStream};
use overlap::task::JoinSet;

/// What a server does with each connection.
#[derive(Clone, Copy, Debug)]
pub enum Behavior {
    /// Answers every request, keeping the connection open.
    KeepAlive,
    /// Answers `n` requests, then closes the idle connection (an idle timeout).
    CloseAfter(u32),
    /// Answers `n` requests, then reads the next and closes without answering (a
    /// keep-alive close racing the client's next request).
    DropOnRequest(u32),
    /// Answers `n` requests, then resets the connection on the next one.
    ResetOnRequest(u32),
    /// Reads requests and never answers.
    Silent,
}

/// Counts kept by a server, read by the tests.
#[derive(Default, Debug)]
pub struct Counts {
    pub accepted: Cell<usize>,
    pub requests: Cell<usize>,
    pub peers: std::cell::RefCell<Vec<SocketAddr>>,
}

/// A running server; dropping it stops it.
pub struct Server {
    pub addr: SocketAddr,
    pub counts: Rc<Counts>,
    _tasks: JoinSet<()>,
}

impl Server {
    /// A server on `127.0.0.1` with the kernel's usual backlog.
    pub async fn start(behavior: Behavior) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Server::serve(listener, behavior)
    }

    /// A server whose listen backlog is `backlog`.
    pub fn with_backlog(backlog: u32, behavior: Behavior) -> Server {
        let sock = TcpSocket::new_v4().unwrap();
        sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        Server::serve(sock.listen(backlog).unwrap(), behavior)
    }

    fn serve(listener: TcpListener, behavior: Behavior) -> Server {
        let addr = listener.local_addr().unwrap();
        let counts = Rc::new(Counts::default());
        let mut tasks = JoinSet::new();
        let c = counts.clone();
        tasks.spawn(async move {
            let mut conns = JoinSet::new();
            let mut conn_id = 0u32;
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(pair) => pair,
                    // Out of fds (the EMFILE test): the connection waits in the kernel; try
                    // again shortly rather than spin.
                    Err(_) => {
                        overlap::time::sleep(Duration::from_millis(1)).await;
                        continue;
                    }
                };
                c.accepted.set(c.accepted.get() + 1);
                c.peers.borrow_mut().push(peer);
                conn_id += 1;
                let c = c.clone();
                conns.spawn(async move {
                    let _ = serve_conn(stream, conn_id, behavior, &c).await;
                });
                // Reap finished connections so the set does not grow with the run.
                while conns.try_join_next().is_some() {}
            }
        });
        Server {
            addr,
            counts,
            _tasks: tasks,
        }
    }
}

/// The response a server gives to request `seq` (from 1) of connection `conn` for `path`:
/// the tests build the same bytes to compare.
pub fn response(conn: u32, seq: u32, path: &str) -> Vec<u8> {
    let body = format!("{conn}:{seq}:{path}");
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn serve_conn(
    mut stream: TcpStream,
    conn: u32,
    behavior: Behavior,
    counts: &Counts,
) -> io::Result<()> {
    let mut buf = Vec::new();
    let mut seq = 0u32;
    loop {
        // Answer every whole request in the buffer together (pipelining), then read more.
        let mut out = Vec::new();
        while let Some((path, used)) = next_request(&buf)? {
            buf.drain(..used);
            counts.requests.set(counts.requests.get() + 1);
            match behavior {
                Behavior::DropOnRequest(n) if seq == n => return Ok(()),
                Behavior::ResetOnRequest(n) if seq == n => {
                    stream.set_zero_linger()?;
                    return Ok(());
                }
                Behavior::Silent => continue,
                _ => {}
            }
            seq += 1;
            out.extend_from_slice(&response(conn, seq, &path));
        }
        stream.write_all(&out).await?;
        if matches!(behavior, Behavior::CloseAfter(n) if seq >= n) {
            return Ok(());
        }
        let mut chunk = [0u8; 16384];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The path of the first whole request in `buf` and the bytes it took (head and a
/// `Content-Length` body), or `None` for a partial one.
fn next_request(buf: &[u8]) -> io::Result<Option<(String, usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut req = httparse::Request::new(&mut headers);
    let head = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
    };
    let len = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
        .unwrap_or(0usize);
    if buf.len() < head + len {
        return Ok(None);
    }
    Ok(Some((req.path.unwrap_or("").to_string(), head + len)))
}
