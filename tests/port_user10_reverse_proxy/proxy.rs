//! The reverse proxy: an accept loop, and per client connection a keep-alive loop that
//! reads a request head, picks an upstream round-robin (skipping those marked down), takes
//! a pooled connection to it (or makes one), streams the body through while the response
//! streams back, and gives the connection back to the pool.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use overlap::future::{FusedFuture, FutureExt};
use overlap::io::{copy_bidirectional, AsyncWriteExt};
use overlap::net::TcpListener;
use overlap::net::TcpStream;
use overlap::task::JoinSet;
use overlap::time;

use super::http::{self, Framing, Head};

/// How the proxy runs.
#[derive(Clone)]
pub struct Config {
    pub upstreams: Vec<SocketAddr>,
    /// Idle connections kept per upstream; one more given back is closed.
    pub pool_max: usize,
    /// From the request head sent upstream to the response head back; past it, 504.
    pub upstream_timeout: Duration,
}

impl Config {
    pub fn new(upstreams: Vec<SocketAddr>) -> Config {
        Config {
            upstreams,
            pool_max: 4,
            upstream_timeout: Duration::from_secs(30),
        }
    }
}

/// What the proxy did, for the tests.
#[derive(Default)]
pub struct Stats {
    pub connected: Cell<usize>,
    pub reused: Cell<usize>,
    pub stale: Cell<usize>,
    pub refused: Cell<usize>,
    pub pool_full: Cell<usize>,
    pub timeouts: Cell<usize>,
    pub bad_requests: Cell<usize>,
    pub upgrades_live: Cell<usize>,
}

fn bump(c: &Cell<usize>) {
    c.set(c.get() + 1);
}

/// A connection to an upstream with the bytes read past the last response.
struct UpConn {
    stream: TcpStream,
    buf: Vec<u8>,
}

struct Upstream {
    addr: SocketAddr,
    down: Cell<bool>,
    idle: RefCell<Vec<UpConn>>,
}

struct Shared {
    config: Config,
    stats: Rc<Stats>,
    upstreams: Vec<Upstream>,
    next: Cell<usize>,
}

/// A running proxy; dropping it aborts the accept loop, every client and the pools.
pub struct Proxy {
    pub addr: SocketAddr,
    pub stats: Rc<Stats>,
    shared: Rc<Shared>,
    _tasks: JoinSet<()>,
}

impl Proxy {
    /// Binds 127.0.0.1:0 and serves.
    pub async fn start(config: Config) -> Proxy {
        Proxy::start_on("127.0.0.1:0", config).await
    }

    /// Binds `addr` (a loopback address) and serves.
    pub async fn start_on(addr: &str, config: Config) -> Proxy {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stats = Rc::new(Stats::default());
        let upstreams = config
            .upstreams
            .iter()
            .map(|&addr| Upstream {
                addr,
                down: Cell::new(false),
                idle: RefCell::new(Vec::new()),
            })
            .collect();
        let shared = Rc::new(Shared {
            config,
            stats: stats.clone(),
            upstreams,
            next: Cell::new(0),
        });
        let mut tasks = JoinSet::new();
        tasks.spawn(accept_loop(listener, shared.clone()));
        Proxy {
            addr,
            stats,
            shared,
            _tasks: tasks,
        }
    }

    /// Idle connections pooled for upstream `i`.
    pub fn idle(&self, i: usize) -> usize {
        self.shared.upstreams[i].idle.borrow().len()
    }

    /// Whether upstream `i` is marked down.
    pub fn is_down(&self, i: usize) -> bool {
        self.shared.upstreams[i].down.get()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // The pools are in `shared`, which the tasks hold too: empty them here.
        for u in &self.shared.upstreams {
            u.idle.borrow_mut().clear();
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Rc<Shared>) {
    let mut clients = JoinSet::new();
    loop {
        let (conn, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(_) => {
                time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        while clients.try_join_next().is_some() {}
        let shared = shared.clone();
        clients.spawn(async move {
            let _ = serve(conn, peer, &shared).await;
        });
    }
}

/// A short answer from the proxy itself, the connection closed after it.
async fn answer(client: &mut TcpStream, status: &str) -> io::Result<()> {
    let body = format!("{status}\n");
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    client
        .write_all(&[head.as_bytes(), body.as_bytes()].concat())
        .await?;
    client.close().await
}

/// The hop-by-hop headers (RFC 9110 7.6.1) and those `Connection` names, removed.
fn strip_hop_by_hop(head: &Head) -> Vec<(String, String)> {
    const HOP: [&str; 9] = [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-authenticate",
        "proxy-authorization",
    ];
    let named: Vec<String> = head
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, v)| v.split(',').map(|t| t.trim().to_ascii_lowercase()))
        .collect();
    head.headers
        .iter()
        .filter(|(n, _)| {
            let n = n.to_ascii_lowercase();
            !HOP.contains(&n.as_str()) && !named.contains(&n)
        })
        .cloned()
        .collect()
}

/// The message's framing said again after the hop-by-hop headers went (the body is
/// relayed in the same form), and an upgrade's two headers put back.
fn reframe(headers: &mut Vec<(String, String)>, framing: Framing, upgrade: Option<&str>) {
    if framing == Framing::Chunked {
        headers.push(("Transfer-Encoding".into(), "chunked".into()));
    }
    if let Some(proto) = upgrade {
        headers.push(("Connection".into(), "Upgrade".into()));
        headers.push(("Upgrade".into(), proto.into()));
    }
}

async fn serve(mut client: TcpStream, peer: SocketAddr, shared: &Shared) -> io::Result<()> {
    client.set_nodelay(true)?;
    let mut buf = Vec::new();
    loop {
        let head = match http::read_head(&mut client, &mut buf).await {
            Ok(Some(head)) => head,
            Ok(None) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                bump(&shared.stats.bad_requests);
                return answer(&mut client, "400 Bad Request").await;
            }
            Err(e) => return Err(e),
        };
        let framing = match head.framing(None) {
            Ok(f) => f,
            Err(_) => {
                bump(&shared.stats.bad_requests);
                return answer(&mut client, "400 Bad Request").await;
            }
        };
        let keep_alive = !head.has_token("connection", "close");
        let upgrade = match head.has_token("connection", "upgrade") {
            true => head.get("upgrade").map(str::to_string),
            false => None,
        };
        let mut headers = strip_hop_by_hop(&head);
        reframe(&mut headers, framing, upgrade.as_deref());
        let xff = match headers
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case("x-forwarded-for"))
        {
            Some(i) => format!("{}, {}", headers.remove(i).1, peer.ip()),
            None => peer.ip().to_string(),
        };
        headers.push(("X-Forwarded-For".into(), xff));
        let up_head = Head {
            line: head.line.clone(),
            headers,
        };
        let Some((i, mut up)) = checkout(shared).await else {
            return answer(&mut client, "502 Bad Gateway").await;
        };
        let method = head.word(0).to_string();
        let head_sent = Cell::new(false);
        let upgrading = upgrade.as_deref();
        let result = {
            let (mut client_rd, mut client_wr) = TcpStream::split(&mut client);
            let UpConn {
                stream,
                buf: up_buf,
            } = &mut up;
            let (mut up_rd, mut up_wr) = TcpStream::split(stream);
            // The body goes up while the response comes back: an upstream may answer
            // before the body ends, and a streaming one answers piece by piece.
            let send = async {
                up_wr.write_all(&up_head.encode()).await?;
                http::relay_body(&mut client_rd, &mut buf, &mut up_wr, framing).await
            };
            let recv = async {
                let limit = shared.config.upstream_timeout;
                let resp = match time::timeout(limit, http::read_head(&mut up_rd, up_buf)).await {
                    Ok(r) => r?.ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?,
                    Err(_) => return Err(io::Error::from(io::ErrorKind::TimedOut)),
                };
                let resp_framing = resp.framing(Some(&method))?;
                let upgraded = resp.status() == 101 && upgrading.is_some();
                let up_keeps =
                    !resp.has_token("connection", "close") && resp_framing != Framing::UntilClose;
                let client_keeps = keep_alive && resp_framing != Framing::UntilClose;
                // The response's head (hop-by-hop gone, framing said again) and body.
                let mut headers = strip_hop_by_hop(&resp);
                reframe(&mut headers, resp_framing, upgrading.filter(|_| upgraded));
                if !client_keeps && !upgraded {
                    headers.push(("Connection".into(), "close".into()));
                }
                let line = resp.line.clone();
                head_sent.set(true);
                client_wr
                    .write_all(&Head { line, headers }.encode())
                    .await?;
                if !upgraded {
                    http::relay_body(&mut up_rd, up_buf, &mut client_wr, resp_framing).await?;
                }
                Ok((upgraded, up_keeps, client_keeps))
            };
            both(send, recv).await
        };
        let (upgraded, up_keeps, client_keeps) = match result {
            // A body not sent whole: neither connection's framing can be trusted.
            Ok(((upgraded, _, _), false)) => (upgraded, false, false),
            Ok((r, true)) => r,
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                bump(&shared.stats.timeouts);
                return answer(&mut client, "504 Gateway Timeout").await;
            }
            Err(_) if !head_sent.get() => return answer(&mut client, "502 Bad Gateway").await,
            Err(e) => return Err(e),
        };
        if upgraded {
            return relay_upgraded(client, buf, up, shared).await;
        }
        if up_keeps {
            checkin(shared, i, up);
        }
        if !client_keeps {
            return client.close().await;
        }
    }
}

/// Runs the body's relay up and the response's relay back together: the response's
/// relay's result, and whether the body went up whole. An upstream that answers early (a
/// 413) and closes makes the body's relay fail, which is no error once its answer is
/// through, so only the response's relay ends the exchange (or fails it).
async fn both<T>(
    send: impl Future<Output = io::Result<()>>,
    recv: impl Future<Output = io::Result<T>>,
) -> io::Result<(T, bool)> {
    let mut send = pin!(send.fuse());
    let mut recv = pin!(recv.fuse());
    let mut sent = false;
    loop {
        overlap::select! {
            r = send => sent = r.is_ok(),
            r = recv => {
                // Both may have been woken at once: a body relay done by now counts.
                if !send.is_terminated() {
                    sent = matches!(send.as_mut().now_or_never(), Some(Ok(())));
                }
                return r.map(|r| (r, sent));
            }
        }
    }
}

/// The next upstream round-robin that is not down, with a connection to it: an idle one
/// still open, or a new one. An upstream that refuses is marked down and the next tried.
async fn checkout(shared: &Shared) -> Option<(usize, UpConn)> {
    let n = shared.upstreams.len();
    for _ in 0..n {
        let i = shared.next.get() % n;
        shared.next.set(i + 1);
        let u = &shared.upstreams[i];
        if u.down.get() {
            continue;
        }
        loop {
            let Some(conn) = u.idle.borrow_mut().pop() else {
                break;
            };
            if still_open(&conn) {
                bump(&shared.stats.reused);
                return Some((i, conn));
            }
            bump(&shared.stats.stale);
        }
        match TcpStream::connect(u.addr).await {
            Ok(stream) => {
                stream.set_nodelay(true).ok()?;
                bump(&shared.stats.connected);
                let buf = Vec::new();
                return Some((i, UpConn { stream, buf }));
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                bump(&shared.stats.refused);
                u.down.set(true);
            }
            Err(_) => continue,
        }
    }
    None
}

/// Whether an idle connection is still open: nothing to read now, not even end of file.
/// A peek polled once, as a tokio user would with `now_or_never`.
fn still_open(conn: &UpConn) -> bool {
    let mut one = [0u8; 1];
    conn.stream.peek(&mut one).now_or_never().is_none()
}

fn checkin(shared: &Shared, i: usize, conn: UpConn) {
    let mut idle = shared.upstreams[i].idle.borrow_mut();
    if idle.len() < shared.config.pool_max {
        idle.push(conn);
    } else {
        bump(&shared.stats.pool_full);
    }
}

/// After a 101: what either side sent past the heads, then raw bytes both ways until
/// either closes.
async fn relay_upgraded(
    mut client: TcpStream,
    buf: Vec<u8>,
    up: UpConn,
    shared: &Shared,
) -> io::Result<()> {
    let UpConn {
        stream: mut up,
        buf: up_buf,
    } = up;
    bump(&shared.stats.upgrades_live);
    let result = async {
        up.write_all(&buf).await?;
        client.write_all(&up_buf).await?;
        copy_bidirectional(&mut client, &mut up).await
    }
    .await;
    let live = &shared.stats.upgrades_live;
    live.set(live.get() - 1);
    result.map(drop)
}
