//! The forwarder: a UDP server and a TCP listener on one port, a cache, in-flight dedup,
//! and upstreams asked in turn over UDP, then over TCP when the answer comes back truncated.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream, UdpSocket};
use overlap::sync::oneshot;
use overlap::task::JoinSet;
use overlap::time::{self, timeout, timeout_at, Instant};

use crate::wire::{self, Malformed, Message, Question};

pub struct Config {
    pub upstreams: Vec<SocketAddr>,
    /// How long one upstream gets (over UDP, and again over TCP).
    pub try_timeout: Duration,
    /// How long a TCP client may take over a frame, and sit idle between frames.
    pub tcp_timeout: Duration,
    /// Queries in flight per client address, past which the client is REFUSED.
    pub per_client: usize,
    /// Ask over a connected socket (the kernel drops other sources, and an ICMP error ends
    /// the try at once) or an unconnected one (the forwarder checks the source itself).
    pub connected: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            upstreams: Vec::new(),
            try_timeout: Duration::from_secs(2),
            tcp_timeout: Duration::from_secs(5),
            per_client: 8,
            connected: true,
        }
    }
}

#[derive(Default)]
pub struct Stats {
    pub cache_hits: Cell<u64>,
    pub deduped: Cell<u64>,
    pub ignored_replies: Cell<u64>,
    pub refused_by_upstream: Cell<u64>,
    pub try_timeouts: Cell<u64>,
    pub tcp_retries: Cell<u64>,
    pub formerr: Cell<u64>,
    pub dropped: Cell<u64>,
    pub limited: Cell<u64>,
    pub tcp_timeouts: Cell<u64>,
}

fn bump(c: &Cell<u64>) {
    c.set(c.get() + 1);
}

type Waiters = Vec<oneshot::Sender<Option<Rc<Vec<u8>>>>>;
/// A cached answer and when it expires.
type Cached = (Instant, Rc<Vec<u8>>);

pub struct Forwarder {
    config: Config,
    cache: RefCell<HashMap<Question, Cached>>,
    inflight: RefCell<HashMap<Question, Waiters>>,
    per_client: RefCell<HashMap<SocketAddr, usize>>,
    next_id: Cell<u16>,
    pub stats: Stats,
}

/// The leader's claim on an in-flight question: dropped unanswered (its task aborted), it
/// takes the entry out, and the waiters' channels close.
struct Leading<'a>(&'a RefCell<HashMap<Question, Waiters>>, &'a Question);

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        self.0.borrow_mut().remove(self.1);
    }
}

/// A client's slot among its queries in flight.
struct Slot(Rc<Forwarder>, SocketAddr);

impl Drop for Slot {
    fn drop(&mut self) {
        let mut map = self.0.per_client.borrow_mut();
        if let Some(n) = map.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.1);
            }
        }
    }
}

impl Forwarder {
    pub fn new(config: Config) -> Rc<Forwarder> {
        Rc::new(Forwarder {
            config,
            cache: RefCell::default(),
            inflight: RefCell::default(),
            per_client: RefCell::default(),
            next_id: Cell::new(0x4000),
            stats: Stats::default(),
        })
    }

    fn slot(self: &Rc<Self>, client: SocketAddr) -> Option<Slot> {
        let mut map = self.per_client.borrow_mut();
        let n = map.entry(client).or_insert(0);
        if *n >= self.config.per_client {
            bump(&self.stats.limited);
            return None;
        }
        *n += 1;
        Some(Slot(self.clone(), client))
    }

    /// The answer for `query`, under its id: from the cache, from a query in flight, or
    /// from an upstream; SERVFAIL when none answers.
    pub async fn answer(&self, query: &Message) -> Vec<u8> {
        match self.resolve(&query.question).await {
            Some(reply) => wire::with_id(&reply, query.id),
            None => wire::error(query, wire::SERVFAIL),
        }
    }

    async fn resolve(&self, q: &Question) -> Option<Rc<Vec<u8>>> {
        if let Some((expires, reply)) = self.cache.borrow().get(q) {
            if time::now() < *expires {
                bump(&self.stats.cache_hits);
                return Some(reply.clone());
            }
        }
        let waiting = self.inflight.borrow_mut().get_mut(q).map(|waiters| {
            let (tx, rx) = oneshot::channel();
            waiters.push(tx);
            rx
        });
        if let Some(rx) = waiting {
            bump(&self.stats.deduped);
            return rx.await.ok().flatten();
        }
        self.inflight.borrow_mut().insert(q.clone(), Vec::new());
        let claim = Leading(&self.inflight, q);
        let reply = self.ask_upstreams(q).await.map(Rc::new);
        if let Some(reply) = &reply {
            if let Some(ttl) = wire::min_ttl(reply).filter(|&t| t > 0) {
                let expires = time::now() + Duration::from_secs(ttl.into());
                self.cache
                    .borrow_mut()
                    .insert(q.clone(), (expires, reply.clone()));
            }
        }
        let waiters = self.inflight.borrow_mut().remove(q).unwrap_or_default();
        drop(claim);
        for w in waiters {
            let _ = w.send(reply.clone());
        }
        reply
    }

    async fn ask_upstreams(&self, q: &Question) -> Option<Vec<u8>> {
        for &up in &self.config.upstreams {
            let id = self.next_id.get();
            self.next_id.set(id.wrapping_add(0x9E37));
            let reply = match self.ask_udp(up, id, q).await {
                Ok(reply) => reply,
                Err(e) => {
                    match e.kind() {
                        ErrorKind::ConnectionRefused => bump(&self.stats.refused_by_upstream),
                        ErrorKind::TimedOut => bump(&self.stats.try_timeouts),
                        _ => {}
                    }
                    continue;
                }
            };
            if u16::from_be_bytes([reply[2], reply[3]]) & wire::TC == 0 {
                return Some(reply);
            }
            bump(&self.stats.tcp_retries);
            match timeout(self.config.try_timeout, self.ask_tcp(up, id, q)).await {
                Ok(Ok(reply)) => return Some(reply),
                Ok(Err(_)) => {}
                Err(_) => bump(&self.stats.try_timeouts),
            }
        }
        None
    }

    /// One try over UDP: the first reply from `up` with our id and question, until the
    /// try's deadline.
    async fn ask_udp(&self, up: SocketAddr, id: u16, q: &Question) -> io::Result<Vec<u8>> {
        let local = if up.is_ipv4() {
            "127.0.0.1:0"
        } else {
            "[::1]:0"
        };
        let sock = UdpSocket::bind(local).await?;
        let msg = wire::query(id, q);
        if self.config.connected {
            sock.connect(up).await?;
            sock.send(&msg).await?;
        } else {
            sock.send_to(&msg, up).await?;
        }
        let deadline = Instant::now() + self.config.try_timeout;
        // One byte more than the largest answer taken over UDP tells a cut datagram.
        let mut buf = vec![0u8; 4097];
        loop {
            let (n, from) = timeout_at(deadline, sock.recv_from(&mut buf))
                .await
                .map_err(|_| io::Error::from(ErrorKind::TimedOut))??;
            if n == buf.len() {
                bump(&self.stats.ignored_replies);
                continue;
            }
            let reply = &buf[..n];
            match wire::parse(reply, true) {
                Ok(m) if from == up && m.id == id && m.question == *q => return Ok(reply.to_vec()),
                _ => bump(&self.stats.ignored_replies),
            }
        }
    }

    async fn ask_tcp(&self, up: SocketAddr, id: u16, q: &Question) -> io::Result<Vec<u8>> {
        let mut conn = TcpStream::connect(up).await?;
        write_frame(&mut conn, &wire::query(id, q)).await?;
        let reply = read_frame(&mut conn).await?;
        match wire::parse(&reply, true) {
            Ok(m) if m.id == id && m.question == *q => Ok(reply),
            _ => Err(io::Error::new(ErrorKind::InvalidData, "a wrong TCP answer")),
        }
    }
}

pub async fn write_frame(conn: &mut TcpStream, msg: &[u8]) -> io::Result<()> {
    let mut frame = (msg.len() as u16).to_be_bytes().to_vec();
    frame.extend_from_slice(msg);
    conn.write_all(&frame).await
}

pub async fn read_frame(conn: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    conn.read_exact(&mut len).await?;
    let mut msg = vec![0u8; u16::from_be_bytes(len).into()];
    conn.read_exact(&mut msg).await?;
    Ok(msg)
}

/// A running forwarder: its address (UDP and TCP on one port) and its tasks, aborted by its
/// drop.
pub struct Server {
    pub addr: SocketAddr,
    pub fwd: Rc<Forwarder>,
    _tasks: JoinSet<()>,
}

impl Server {
    pub async fn start(ip: &str, config: Config) -> Server {
        let (udp, tcp) = bind_pair(ip).await;
        let addr = udp.local_addr().unwrap();
        let fwd = Forwarder::new(config);
        let mut tasks = JoinSet::new();
        tasks.spawn(serve_udp(fwd.clone(), Rc::new(udp)));
        tasks.spawn(serve_tcp(fwd.clone(), tcp));
        Server {
            addr,
            fwd,
            _tasks: tasks,
        }
    }
}

/// A UDP socket and a TCP listener on one port: the port the UDP bind picked, tried again
/// when TCP's is taken.
pub async fn bind_pair(ip: &str) -> (UdpSocket, TcpListener) {
    for _ in 0..20 {
        let udp = UdpSocket::bind((ip, 0)).await.unwrap();
        let port = udp.local_addr().unwrap().port();
        match TcpListener::bind((ip, port)).await {
            Ok(tcp) => return (udp, tcp),
            Err(e) if e.kind() == ErrorKind::AddrInUse => continue,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("no port free for both UDP and TCP");
}

async fn serve_udp(fwd: Rc<Forwarder>, sock: Rc<UdpSocket>) {
    let mut queries = JoinSet::new();
    let mut buf = [0u8; wire::UDP_LIMIT + 1];
    loop {
        while queries.try_join_next().is_some() {}
        let Ok((n, client)) = sock.recv_from(&mut buf).await else {
            continue;
        };
        if n > wire::UDP_LIMIT {
            bump(&fwd.stats.dropped);
            continue;
        }
        let msg = &buf[..n];
        let query = match wire::parse(msg, false) {
            Ok(query) => query,
            Err(Malformed::Short | Malformed::WrongDirection) => {
                bump(&fwd.stats.dropped);
                continue;
            }
            Err(_) => {
                bump(&fwd.stats.formerr);
                if let Some(reply) = wire::formerr(msg) {
                    let _ = sock.send_to(&reply, client).await;
                }
                continue;
            }
        };
        let Some(slot) = fwd.slot(client) else {
            let _ = sock
                .send_to(&wire::error(&query, wire::REFUSED), client)
                .await;
            continue;
        };
        let (fwd, sock) = (fwd.clone(), sock.clone());
        queries.spawn(async move {
            let _slot = slot;
            let mut reply = fwd.answer(&query).await;
            if reply.len() > wire::UDP_LIMIT {
                reply = wire::truncated(&reply, query.question_end);
            }
            let _ = sock.send_to(&reply, client).await;
        });
    }
}

async fn serve_tcp(fwd: Rc<Forwarder>, listener: TcpListener) {
    let mut conns = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let Ok((conn, _)) = listener.accept().await else {
            continue;
        };
        conns.spawn(serve_conn(fwd.clone(), conn));
    }
}

async fn serve_conn(fwd: Rc<Forwarder>, mut conn: TcpStream) {
    let limit = fwd.config.tcp_timeout;
    loop {
        let msg = match timeout(limit, read_frame(&mut conn)).await {
            Ok(Ok(msg)) => msg,
            Ok(Err(_)) => return,
            Err(_) => return bump(&fwd.stats.tcp_timeouts),
        };
        let reply = match wire::parse(&msg, false) {
            Ok(query) => fwd.answer(&query).await,
            Err(Malformed::Short | Malformed::WrongDirection) => {
                return bump(&fwd.stats.dropped);
            }
            Err(_) => {
                bump(&fwd.stats.formerr);
                wire::formerr(&msg).expect("a header was read")
            }
        };
        if write_frame(&mut conn, &reply).await.is_err() {
            return;
        }
    }
}
