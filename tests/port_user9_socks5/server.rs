//! The proxy: an accept loop capped by a `Semaphore`, and per client a handshake under a
//! timeout (greeting, RFC 1929 auth, request), then CONNECT, BIND or UDP ASSOCIATE.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use overlap::io::{copy_bidirectional, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use overlap::net::{lookup_host, TcpListener, TcpStream, UdpSocket};
use overlap::sync::Semaphore;
use overlap::task::JoinSet;
use overlap::time::{self, Instant};

use super::wire::{self, Request, Target};

/// How the proxy runs.
#[derive(Clone)]
pub struct Config {
    /// `(user, password)` pairs; empty means no authentication (method 0x00).
    pub users: Vec<(String, String)>,
    /// Clients served at once; the rest wait in the listen backlog.
    pub max_clients: usize,
    /// The whole handshake (greeting, auth, request) must arrive within this.
    pub handshake_timeout: Duration,
    /// A relay with no byte moving either way for this long is closed.
    pub idle_timeout: Duration,
    /// CONNECT relays with `splice_bidirectional` (no idle timeout: nothing sees the bytes),
    /// else with `copy_bidirectional` over streams that note each read and write.
    pub zero_copy: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            users: Vec::new(),
            max_clients: 64,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            zero_copy: false,
        }
    }
}

/// What the proxy saw, for the tests.
#[derive(Default)]
pub struct Stats {
    pub accepted: Cell<usize>,
    pub handshake_timeouts: Cell<usize>,
    pub idle_timeouts: Cell<usize>,
    pub udp_relays_live: Cell<usize>,
    pub fragments_dropped: Cell<usize>,
}

/// A running proxy; dropping it aborts the accept loop and every client.
pub struct Server {
    pub addr: SocketAddr,
    pub stats: Rc<Stats>,
    _tasks: JoinSet<()>,
}

impl Server {
    /// Binds 127.0.0.1:0 and serves.
    pub async fn start(config: Config) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stats = Rc::new(Stats::default());
        let mut tasks = JoinSet::new();
        tasks.spawn(accept_loop(listener, Rc::new(config), stats.clone()));
        Server {
            addr,
            stats,
            _tasks: tasks,
        }
    }
}

async fn accept_loop(listener: TcpListener, config: Rc<Config>, stats: Rc<Stats>) {
    let limit = Rc::new(Semaphore::new(config.max_clients));
    // Dropped with this task (the server's drop aborts it): every client goes too.
    let mut clients = JoinSet::new();
    loop {
        // A permit first: a client over the cap is not accepted until one leaves.
        let permit = limit.clone().acquire_owned().await.unwrap();
        let conn = match listener.accept().await {
            Ok((conn, _)) => conn,
            Err(_) => {
                time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        stats.accepted.set(stats.accepted.get() + 1);
        while clients.try_join_next().is_some() {}
        let (config, stats) = (config.clone(), stats.clone());
        clients.spawn(async move {
            let _ = serve(conn, &config, &stats).await;
            drop(permit);
        });
    }
}

async fn serve(mut conn: TcpStream, config: &Config, stats: &Stats) -> io::Result<()> {
    conn.set_nodelay(true)?;
    let request = match time::timeout(config.handshake_timeout, handshake(&mut conn, config)).await
    {
        Ok(Ok(Some(r))) => r,
        Ok(Ok(None)) | Ok(Err(_)) => return Ok(()),
        Err(_) => {
            stats
                .handshake_timeouts
                .set(stats.handshake_timeouts.get() + 1);
            return Ok(());
        }
    };
    match request {
        Request::Connect(target) => connect(conn, target, config, stats).await,
        Request::Bind(target) => bind(conn, target, config, stats).await,
        Request::UdpAssociate(target) => udp_associate(conn, target, stats).await,
        Request::Unsupported(code) => wire::write_reply(&mut conn, code, None).await,
    }
}

/// Greeting, auth and request; `None` when the client is refused (the refusal sent).
async fn handshake(conn: &mut TcpStream, config: &Config) -> io::Result<Option<Request>> {
    let methods = wire::read_greeting(conn).await?;
    let want = if config.users.is_empty() { 0x00 } else { 0x02 };
    if !methods.contains(&want) {
        conn.write_all(&[5, 0xFF]).await?;
        return Ok(None);
    }
    conn.write_all(&[5, want]).await?;
    if want == 0x02 {
        let (user, pass) = wire::read_auth(conn).await?;
        let ok = config.users.iter().any(|(u, p)| *u == user && *p == pass);
        conn.write_all(&[1, if ok { 0 } else { 1 }]).await?;
        if !ok {
            return Ok(None);
        }
    }
    wire::read_request(conn).await.map(Some)
}

/// The reply code for a failed connect, from the kind overlap gives.
pub fn reply_code(err: &io::Error) -> u8 {
    match err.kind() {
        io::ErrorKind::ConnectionRefused => 0x05,
        io::ErrorKind::HostUnreachable => 0x04,
        io::ErrorKind::NetworkUnreachable => 0x03,
        io::ErrorKind::TimedOut => 0x04,
        io::ErrorKind::Unsupported => 0x08,
        _ => 0x01,
    }
}

/// The target's addresses: a literal as it is, a name through `lookup_host`.
async fn resolve(target: &Target) -> io::Result<Vec<SocketAddr>> {
    match target {
        Target::Addr(addr) => Ok(vec![*addr]),
        Target::Name(name, port) => Ok(lookup_host((name.as_str(), *port)).await?.collect()),
    }
}

async fn connect_any(target: &Target) -> io::Result<TcpStream> {
    let mut last = None;
    for addr in resolve(target).await? {
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::HostUnreachable, "no address")))
}

async fn connect(
    mut conn: TcpStream,
    target: Target,
    config: &Config,
    stats: &Stats,
) -> io::Result<()> {
    let mut upstream = match connect_any(&target).await {
        Ok(s) => s,
        Err(e) => return wire::write_reply(&mut conn, reply_code(&e), None).await,
    };
    upstream.set_nodelay(true)?;
    wire::write_reply(&mut conn, 0, Some(upstream.local_addr()?)).await?;
    relay(conn, &mut upstream, config, stats).await
}

async fn relay(
    mut conn: TcpStream,
    upstream: &mut TcpStream,
    config: &Config,
    stats: &Stats,
) -> io::Result<()> {
    if config.zero_copy {
        return overlap::pipe::splice_bidirectional(&conn, &*upstream)
            .await
            .map(drop);
    }
    let last = Rc::new(Cell::new(Instant::now()));
    let mut a = Noted {
        inner: &mut conn,
        last: last.clone(),
    };
    let mut b = Noted {
        inner: upstream,
        last: last.clone(),
    };
    let copy = copy_bidirectional(&mut a, &mut b);
    let idle = async {
        loop {
            let deadline = last.get() + config.idle_timeout;
            if Instant::now() >= deadline {
                return;
            }
            time::sleep_until(deadline).await;
        }
    };
    overlap::select! {
        r = copy.fuse_() => r.map(drop),
        _ = idle.fuse_() => {
            stats.idle_timeouts.set(stats.idle_timeouts.get() + 1);
            Ok(())
        }
    }
}

/// `FutureExt::fuse` under a name that does not clash.
trait Fuse: std::future::Future + Sized {
    fn fuse_(self) -> futures_util::future::Fuse<Self> {
        futures_util::FutureExt::fuse(self)
    }
}
impl<F: std::future::Future> Fuse for F {}

/// A stream that notes when it last moved a byte.
struct Noted<'a> {
    inner: &'a mut TcpStream,
    last: Rc<Cell<Instant>>,
}

impl Noted<'_> {
    fn note<T>(&self, r: &Poll<io::Result<T>>) {
        if let Poll::Ready(Ok(_)) = r {
            self.last.set(Instant::now());
        }
    }
}

impl AsyncRead for Noted<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut *self.inner).poll_read(cx, buf);
        self.note(&r);
        r
    }
}

impl AsyncWrite for Noted<'_> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut *self.inner).poll_write(cx, buf);
        self.note(&r);
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.inner).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.inner).poll_close(cx)
    }
}

/// BIND: a listener on the control connection's address, its address in the first reply,
/// the peer that connected in the second (only one from the expected host), then the relay.
async fn bind(
    mut conn: TcpStream,
    target: Target,
    config: &Config,
    stats: &Stats,
) -> io::Result<()> {
    let expected: Option<IpAddr> = match &target {
        Target::Addr(a) if !a.ip().is_unspecified() => Some(a.ip()),
        _ => None,
    };
    let listener = match TcpListener::bind((conn.local_addr()?.ip(), 0)).await {
        Ok(l) => l,
        Err(e) => return wire::write_reply(&mut conn, reply_code(&e), None).await,
    };
    wire::write_reply(&mut conn, 0, Some(listener.local_addr()?)).await?;
    let mut peer = loop {
        let mut probe = [0u8; 1];
        let accepted = overlap::select! {
            r = listener.accept().fuse_() => r,
            // The client gave up (closed, or sent what it must not): no second reply.
            _ = conn.read(&mut probe).fuse_() => return Ok(()),
        };
        match accepted {
            Ok((s, from)) if expected.is_none_or(|ip| ip == from.ip()) => break (s, from),
            Ok(_) => continue, // someone else: dropped
            Err(e) => return wire::write_reply(&mut conn, reply_code(&e), None).await,
        }
    };
    drop(listener);
    wire::write_reply(&mut conn, 0, Some(peer.1)).await?;
    peer.0.set_nodelay(true)?;
    relay(conn, &mut peer.0, config, stats).await
}

/// UDP ASSOCIATE: a socket of its own on the control connection's address, relaying until
/// the control connection ends (end of file, an error, or any byte: the client must send
/// none), when the socket is closed.
async fn udp_associate(mut conn: TcpStream, target: Target, stats: &Stats) -> io::Result<()> {
    let sock = match UdpSocket::bind((conn.local_addr()?.ip(), 0)).await {
        Ok(s) => s,
        Err(e) => return wire::write_reply(&mut conn, reply_code(&e), None).await,
    };
    wire::write_reply(&mut conn, 0, Some(sock.local_addr()?)).await?;
    stats.udp_relays_live.set(stats.udp_relays_live.get() + 1);
    struct Live<'a>(&'a Stats);
    impl Drop for Live<'_> {
        fn drop(&mut self) {
            self.0.udp_relays_live.set(self.0.udp_relays_live.get() - 1);
        }
    }
    let _live = Live(stats);
    // The client's own address: given in the request (port 0 or an unspecified address
    // means "not known yet"), else taken from its first datagram from the control's peer IP.
    let client_ip = conn.peer_addr()?.ip();
    let client: RefCell<Option<SocketAddr>> = RefCell::new(match target {
        Target::Addr(a) if a.port() != 0 && !a.ip().is_unspecified() => Some(a),
        _ => None,
    });
    let sent_to: RefCell<HashSet<SocketAddr>> = RefCell::new(HashSet::new());
    let pump = async {
        let mut buf = vec![0u8; 65536];
        loop {
            let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                continue; // an ICMP error from a target: not the relay's end
            };
            let known = *client.borrow();
            let from_client = match known {
                Some(c) => c == from,
                None if from.ip() == client_ip => {
                    *client.borrow_mut() = Some(from);
                    true
                }
                None => false,
            };
            if from_client {
                let Some((frag, target, data)) = wire::parse_udp(&buf[..n]) else {
                    continue;
                };
                if frag != 0 {
                    stats
                        .fragments_dropped
                        .set(stats.fragments_dropped.get() + 1);
                    continue;
                }
                let Ok(addrs) = resolve(&target).await else {
                    continue;
                };
                if let Some(to) = addrs.into_iter().next() {
                    sent_to.borrow_mut().insert(to);
                    let _ = sock.send_to(data, to).await;
                }
            } else if let Some(c) = known {
                if sent_to.borrow().contains(&from) {
                    let out = wire::udp_datagram(from, &buf[..n]);
                    let _ = sock.send_to(&out, c).await;
                }
            }
        }
    };
    let mut probe = [0u8; 1];
    overlap::select! {
        _ = pump.fuse_() => {},
        _ = conn.read(&mut probe).fuse_() => {},
    }
    Ok(())
}
