//! The upstreams the tests put behind the proxy: small keep-alive HTTP/1.1 servers on
//! 127.0.0.1:0 that count their accepts, say who they are in `X-Backend`, and record what
//! each request carried.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use overlap::io::AsyncWriteExt;
use overlap::net::{TcpListener, TcpStream};
use overlap::sync::Semaphore;
use overlap::task::JoinSet;

use super::http::{self, Framing, Head};

/// What one request reached an upstream with.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub forwarded_for: Option<String>,
    /// The hop-by-hop headers that came through (none should).
    pub hop_headers: Vec<String>,
    pub body_len: usize,
}

/// What an upstream saw, for the tests.
#[derive(Default)]
pub struct Log {
    pub accepts: Cell<usize>,
    pub closed: Cell<usize>,
    pub requests: RefCell<Vec<Seen>>,
}

/// A running upstream; dropping it aborts its accept loop and every connection.
pub struct Upstream {
    pub addr: SocketAddr,
    pub log: Rc<Log>,
    /// `/gate` requests wait for a permit here before answering.
    pub gate: Rc<Semaphore>,
    _tasks: JoinSet<()>,
}

impl Upstream {
    /// Serves as `name` on 127.0.0.1:0.
    pub async fn start(name: &'static str) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Rc::new(Log::default());
        let gate = Rc::new(Semaphore::new(0));
        let mut tasks = JoinSet::new();
        let (l, g) = (log.clone(), gate.clone());
        tasks.spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                let (conn, _) = listener.accept().await.unwrap();
                l.accepts.set(l.accepts.get() + 1);
                while conns.try_join_next().is_some() {}
                let (l, g) = (l.clone(), g.clone());
                conns.spawn(async move {
                    let _ = serve(conn, name, &l, &g).await;
                    l.closed.set(l.closed.get() + 1);
                });
            }
        });
        Upstream {
            addr,
            log,
            gate,
            _tasks: tasks,
        }
    }

    /// Which requests it served, by path.
    pub fn paths(&self) -> Vec<String> {
        let seen = self.log.requests.borrow();
        seen.iter().map(|s| s.path.clone()).collect()
    }
}

const HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
    "x-hop",
];

/// Serves requests on `conn` until it closes or a path ends it:
/// - `/echo...`: the body back, chunked if it came chunked;
/// - `/big/N`: N pattern bytes, chunked;
/// - `/bye`: answers, then closes without saying so (an idle connection gone stale);
/// - `/reset`: answers, then resets the connection (a zero-linger close);
/// - `/early`: 413 on the head alone, the body unread, and closes;
/// - `/close`: answers with `Connection: close` and closes;
/// - `/raw/N`: N pattern bytes with no length, the body ending with the connection;
/// - `/gate`: answers once a permit is added to the gate;
/// - `/hang`: never answers;
/// - `/ws`: 101, then echoes raw bytes until end of file, says `bye` and closes;
/// - `/ws-short`: 101, then says `bye` and closes at once.
async fn serve(mut conn: TcpStream, name: &str, log: &Log, gate: &Semaphore) -> io::Result<()> {
    conn.set_nodelay(true)?;
    let mut buf = Vec::new();
    while let Some(head) = http::read_head(&mut conn, &mut buf).await? {
        let path = head.word(1).to_string();
        let framing = head.framing(None)?;
        if path == "/early" {
            // Refused on its head alone: the body is never read.
            let no = "HTTP/1.1 413 Content Too Large\r\nContent-Length: 9\r\nConnection: close\r\n\r\ntoo large";
            return conn.write_all(no.as_bytes()).await;
        }
        let body = http::read_body(&mut conn, &mut buf, framing).await?;
        log.requests.borrow_mut().push(Seen {
            path: path.clone(),
            forwarded_for: head.get("x-forwarded-for").map(str::to_string),
            hop_headers: head
                .headers
                .iter()
                .filter(|(n, _)| HOP.iter().any(|h| n.eq_ignore_ascii_case(h)))
                .map(|(n, _)| n.clone())
                .collect(),
            body_len: body.len(),
        });
        let number = |p: &str| p.rsplit('/').next().unwrap().parse::<usize>().unwrap();
        let mut extra = "";
        let reply = match path.as_str() {
            p if p.starts_with("/echo") => {
                if framing == Framing::Chunked {
                    let head = format!("HTTP/1.1 200 OK\r\nX-Backend: {name}\r\nTransfer-Encoding: chunked\r\nKeep-Alive: timeout=5\r\n\r\n");
                    conn.write_all(head.as_bytes()).await?;
                    conn.write_all(&http::chunked(&body, 10_000)).await?;
                    continue;
                }
                body
            }
            p if p.starts_with("/big/") => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nX-Backend: {name}\r\nTransfer-Encoding: chunked\r\n\r\n"
                );
                conn.write_all(head.as_bytes()).await?;
                let data = super::support::pattern(number(p));
                conn.write_all(&http::chunked(&data, 65_000)).await?;
                continue;
            }
            p if p.starts_with("/raw/") => {
                let head = format!("HTTP/1.1 200 OK\r\nX-Backend: {name}\r\n\r\n");
                conn.write_all(head.as_bytes()).await?;
                conn.write_all(&super::support::pattern(number(p))).await?;
                return Ok(());
            }
            "/close" => {
                extra = "Connection: close\r\n";
                b"closing".to_vec()
            }
            "/gate" => {
                gate.acquire().await.unwrap().forget();
                b"through the gate".to_vec()
            }
            "/hang" => std::future::pending().await,
            "/ws" => return websocket(conn, &head, buf, name, true).await,
            "/ws-short" => return websocket(conn, &head, buf, name, false).await,
            _ => b"ok".to_vec(),
        };
        let head = format!(
            "HTTP/1.1 200 OK\r\nX-Backend: {name}\r\nContent-Length: {}\r\n{extra}\r\n",
            reply.len()
        );
        conn.write_all(&[head.as_bytes(), &reply].concat()).await?;
        if path == "/reset" {
            return conn.set_zero_linger();
        }
        if path == "/bye" || path == "/close" {
            return Ok(());
        }
    }
    Ok(())
}

/// Answers an upgrade with 101, then (if `echo`) echoes raw bytes until end of file, and
/// says `bye`.
async fn websocket(
    mut conn: TcpStream,
    head: &Head,
    buf: Vec<u8>,
    name: &str,
    echo: bool,
) -> io::Result<()> {
    if !head.has_token("connection", "upgrade") || head.get("upgrade") != Some("websocket") {
        let no = "HTTP/1.1 426 Upgrade Required\r\nContent-Length: 0\r\n\r\n";
        return conn.write_all(no.as_bytes()).await;
    }
    let head = format!("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nX-Backend: {name}\r\n\r\n");
    conn.write_all(head.as_bytes()).await?;
    if echo {
        conn.write_all(&buf).await?;
        super::support::echo_until_eof(&mut conn).await;
    }
    conn.write_all(b"bye").await
}

/// A free port on 127.0.0.1: bound, then let go (a connect there is refused).
pub async fn dead_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}
