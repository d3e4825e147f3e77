//! The tests' backends: small overlap HTTP/1.1 servers on TCP or a Unix socket, whose
//! answer the request path picks (echo, headers, slow, dying mid-answer, a big streamed
//! body, an upload sink), and which count what they saw.

use std::cell::Cell;
use std::path::Path;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use overlap::either::Either;
use overlap::io::{self, AsyncWrite};
use overlap::net::{TcpListener, UnixListener};
use overlap::sync::Semaphore;
use overlap::task::{AbortOnDropHandle, JoinSet};

use super::http::{relay_body, Conn, Framing, Head, RelayError};
use super::pool::{BackendAddr, Upstream};

/// What a backend saw, and the switches a test turns.
pub struct State {
    pub accepts: Cell<u64>,
    pub requests: Cell<u64>,
    pub in_flight: Cell<u64>,
    pub max_in_flight: Cell<u64>,
    /// Connections closed (by either side) so far.
    pub closed: Cell<u64>,
    /// Body bytes taken by `/sink` so far, in all requests.
    pub received: Cell<u64>,
    /// `/sink` uploads that ended before their length.
    pub truncated_uploads: Cell<u64>,
    /// Close each connection right after its first answer, saying nothing.
    pub close_after_response: Cell<bool>,
    /// Read the second request on a connection, then close it unanswered: the race of a
    /// keep-alive timeout with a request in flight, made certain.
    pub close_on_reuse: Cell<bool>,
    /// `/big` waits for a permit of `gate_permits` after its first chunk, if set.
    pub gated: Cell<bool>,
    pub gate_permits: Semaphore,
}

impl State {
    fn new() -> State {
        let zero = || Cell::new(0);
        State {
            accepts: zero(),
            requests: zero(),
            in_flight: zero(),
            max_in_flight: zero(),
            closed: zero(),
            received: zero(),
            truncated_uploads: zero(),
            close_after_response: Cell::new(false),
            close_on_reuse: Cell::new(false),
            gated: Cell::new(false),
            gate_permits: Semaphore::new(0),
        }
    }

    fn bump(c: &Cell<u64>) {
        c.set(c.get() + 1);
    }
}

/// A running backend; dropped, its tasks are aborted and its connections closed.
pub struct Backend {
    pub addr: BackendAddr,
    pub state: Rc<State>,
    _task: AbortOnDropHandle<()>,
}

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Backend {
    pub async fn tcp(name: &str) -> Backend {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = BackendAddr::Tcp(l.local_addr().unwrap());
        Backend::start(name, addr, Listener::Tcp(l))
    }

    pub fn unix(name: &str, path: &Path) -> Backend {
        let _ = std::fs::remove_file(path);
        let l = UnixListener::bind(path).unwrap();
        Backend::start(name, BackendAddr::Unix(path.into()), Listener::Unix(l))
    }

    fn start(name: &str, addr: BackendAddr, listener: Listener) -> Backend {
        let state = Rc::new(State::new());
        let (st, nm) = (state.clone(), name.to_string());
        let task = overlap::spawn(async move {
            let mut conns = JoinSet::new();
            for id in 0.. {
                let io: Upstream = match &listener {
                    Listener::Tcp(l) => {
                        let (s, _) = l.accept().await.unwrap();
                        s.set_nodelay(true).unwrap();
                        Either::Left(s)
                    }
                    Listener::Unix(l) => Either::Right(l.accept().await.unwrap().0),
                };
                State::bump(&st.accepts);
                while conns.try_join_next().is_some() {}
                conns.spawn(connection(Conn::new(io), id, nm.clone(), st.clone()));
            }
        });
        Backend {
            addr,
            state,
            _task: AbortOnDropHandle::new(task),
        }
    }

    /// Lets `/big` answers waiting at their gate go on.
    pub fn open_gate(&self, n: usize) {
        self.state.gate_permits.add_permits(n);
    }
}

async fn connection(mut conn: Conn<Upstream>, id: u64, name: String, st: Rc<State>) {
    for nth in 0.. {
        let Ok(Some(head)) = conn.read_head(64 * 1024).await else {
            break;
        };
        State::bump(&st.requests);
        if nth == 1 && st.close_on_reuse.get() {
            let framing = head.request_framing().unwrap();
            let _ = relay_body(&mut conn, &mut io::sink(), framing, framing, |_| {}).await;
            break;
        }
        st.in_flight.set(st.in_flight.get() + 1);
        st.max_in_flight
            .set(st.max_in_flight.get().max(st.in_flight.get()));
        let ok = answer(&mut conn, &head, id, &name, &st).await;
        st.in_flight.set(st.in_flight.get() - 1);
        if !ok || st.close_after_response.get() {
            break;
        }
    }
    State::bump(&st.closed);
}

/// Answers one request; false if the connection must close.
async fn answer(conn: &mut Conn<Upstream>, head: &Head, id: u64, name: &str, st: &State) -> bool {
    let framing = head.request_framing().unwrap();
    let target = head.target().to_string();
    let arg = |prefix: &str| -> u64 { target[prefix.len()..].parse().unwrap() };
    if target == "/sink" {
        let mut sink = Summer::default();
        let got = relay_body(conn, &mut sink, framing, Framing::Empty, |n| {
            st.received.set(st.received.get() + n as u64)
        })
        .await;
        if let Err(RelayError::SourceEof | RelayError::Source(_)) = got {
            State::bump(&st.truncated_uploads);
            return false;
        }
        let body = format!("{} {:016x}", sink.len, sink.hash);
        return send(conn, 200, &[], body.as_bytes()).await;
    }
    let mut body = Vec::new();
    if relay_body(conn, &mut body, framing, Framing::Empty, |_| {})
        .await
        .is_err()
    {
        return false;
    }
    let who = [("X-Backend", name.to_string()), ("X-Conn", id.to_string())];
    if target.starts_with("/slow/") {
        overlap::time::sleep(Duration::from_secs(arg("/slow/"))).await;
        send(conn, 200, &who, b"slow").await
    } else if target.starts_with("/die/") {
        let n = arg("/die/") as usize;
        let mut out = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n".to_vec();
        out.extend(std::iter::repeat_n(b'd', n));
        let _ = conn.write_all(&out).await;
        false
    } else if target.starts_with("/die-chunked/") {
        let n = arg("/die-chunked/") as usize;
        let mut out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        out.extend(format!("{n:x}\r\n").as_bytes());
        out.extend(std::iter::repeat_n(b'c', n));
        out.extend(b"\r\n");
        let _ = conn.write_all(&out).await;
        false
    } else if target.starts_with("/big/") {
        big(conn, arg("/big/") as usize, st).await
    } else if target == "/until-close" {
        let _ = conn
            .write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nto the end")
            .await;
        false
    } else if target == "/headers" {
        let mut out = format!("{} {}\n", head.method(), target);
        for (n, v) in &head.headers {
            out.push_str(&format!("{}: {v}\n", n.to_ascii_lowercase()));
        }
        let hop = [
            ("Connection", "keep-alive, X-Secret-Hop".to_string()),
            ("X-Secret-Hop", "1".to_string()),
            ("Keep-Alive", "timeout=5".to_string()),
            ("Proxy-Authenticate", "Basic".to_string()),
            ("X-Backend", name.to_string()),
        ];
        send(conn, 200, &hop, out.as_bytes()).await
    } else {
        let mut out = format!("{name} {} {target}\n", head.method()).into_bytes();
        out.extend_from_slice(&body);
        send(conn, 200, &who, &out).await
    }
}

async fn send(
    conn: &mut Conn<Upstream>,
    status: u16,
    extra: &[(&str, String)],
    body: &[u8],
) -> bool {
    let mut head = Head {
        line: format!("HTTP/1.1 {status} OK"),
        headers: vec![("Content-Length".into(), body.len().to_string())],
    };
    for (n, v) in extra {
        head.headers.push((n.to_string(), v.clone()));
    }
    let mut out = head.encode();
    out.extend_from_slice(body);
    conn.write_all(&out).await.is_ok()
}

/// `n` bytes of [`super::support::pattern`], chunked, 32 KiB a chunk; with the gate set,
/// the rest only after a permit.
async fn big(conn: &mut Conn<Upstream>, n: usize, st: &State) -> bool {
    let data = super::support::pattern(n);
    let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    if conn.write_all(head.as_bytes()).await.is_err() {
        return false;
    }
    for (i, piece) in data.chunks(32 * 1024).enumerate() {
        if i == 1 && st.gated.get() {
            st.gate_permits.acquire().await.unwrap().forget();
        }
        let mut out = format!("{:x}\r\n", piece.len()).into_bytes();
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
        if conn.write_all(&out).await.is_err() {
            return false;
        }
    }
    conn.write_all(b"0\r\n\r\n").await.is_ok()
}

/// A writer that keeps only a length and an FNV-1a hash of what it was given.
pub struct Summer {
    pub len: u64,
    pub hash: u64,
}

impl Default for Summer {
    fn default() -> Summer {
        Summer {
            len: 0,
            hash: 0xcbf2_9ce4_8422_2325,
        }
    }
}

impl Summer {
    pub fn of(bytes: &[u8]) -> String {
        let mut s = Summer::default();
        s.add(bytes);
        format!("{} {:016x}", s.len, s.hash)
    }

    fn add(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.hash = (self.hash ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
        self.len += bytes.len() as u64;
    }
}

impl AsyncWrite for Summer {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.add(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
