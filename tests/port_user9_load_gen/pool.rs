//! The client's connection pool: per host an idle list (newest first), at most
//! `max_per_host` connections open, idle ones dropped after `idle_timeout` or when found
//! closed by the server, and a request that fails on a reused connection before any byte
//! of its answer sent once more on a fresh one if it is idempotent.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::{Rc, Weak};
use std::time::Duration;

use overlap::net::{TcpSocket, TcpStream};
use overlap::sync::Notify;
use overlap::time::{self, Instant};

use super::http::{Conn, Request, Response};

/// How the pool connects and keeps connections.
#[derive(Clone, Debug)]
pub struct Config {
    pub max_per_host: usize,
    pub idle_timeout: Duration,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// Tries per connection, the first included; between them a backoff doubling from
    /// `backoff` up to `max_backoff`.
    pub connect_tries: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Source addresses taken in turn (127.0.0.x); empty: the kernel's choice.
    pub sources: Vec<IpAddr>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_per_host: 4,
            idle_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_millis(200),
            request_timeout: Duration::from_secs(5),
            connect_tries: 8,
            backoff: Duration::from_millis(2),
            max_backoff: Duration::from_millis(50),
            sources: Vec::new(),
        }
    }
}

/// What the pool did, for the tests and the report.
#[derive(Default, Debug)]
pub struct Stats {
    pub opened: Cell<usize>,
    pub reused: Cell<usize>,
    pub stale: Cell<usize>,
    pub expired: Cell<usize>,
    pub retried: Cell<usize>,
    pub connect_retries: Cell<usize>,
    pub connect_timeouts: Cell<usize>,
    pub out_of_fds: Cell<usize>,
}

fn bump(c: &Cell<usize>) {
    c.set(c.get() + 1);
}

/// One host's connections: the idle ones and a count of all open, with a wake for a
/// request waiting for room.
struct Host {
    idle: RefCell<VecDeque<(Pooled, Instant)>>,
    open: Cell<usize>,
    /// `max_per_host`, lowered to what fit when a connect ran out of fds.
    cap: Cell<usize>,
    freed: Notify,
}

/// A connection counted against its host's limit; the count drops with it, however it
/// goes (an error, a timeout dropping the future, a stale one thrown away).
#[derive(Debug)]
pub struct Pooled {
    pub conn: Conn,
    slot: Slot,
}

#[derive(Debug)]
struct Slot(Weak<Host>);

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(host) = self.0.upgrade() {
            host.open.set(host.open.get() - 1);
            host.freed.notify_one();
        }
    }
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Host {{ open: {} }}", self.open.get())
    }
}

/// The pool. Not `Send`: the generator's tasks share it through an `Rc`.
pub struct Pool {
    cfg: Config,
    hosts: RefCell<HashMap<SocketAddr, Rc<Host>>>,
    next_source: Cell<usize>,
    pub stats: Stats,
}

impl Pool {
    pub fn new(cfg: Config) -> Pool {
        Pool {
            cfg,
            hosts: RefCell::default(),
            next_source: Cell::new(0),
            stats: Stats::default(),
        }
    }

    fn host(&self, addr: SocketAddr) -> Rc<Host> {
        let mut hosts = self.hosts.borrow_mut();
        let host = hosts.entry(addr).or_insert_with(|| {
            Rc::new(Host {
                idle: RefCell::default(),
                open: Cell::new(0),
                cap: Cell::new(self.cfg.max_per_host),
                freed: Notify::new(),
            })
        });
        host.clone()
    }

    /// How many idle connections `addr` has.
    pub fn idle(&self, addr: SocketAddr) -> usize {
        self.host(addr).idle.borrow().len()
    }

    /// An idle connection to `addr` still good, else a new one once there is room.
    pub async fn checkout(&self, addr: SocketAddr) -> io::Result<(Pooled, bool)> {
        let host = self.host(addr);
        loop {
            loop {
                let Some((pooled, since)) = host.idle.borrow_mut().pop_front() else {
                    break;
                };
                if since.elapsed() >= self.cfg.idle_timeout {
                    bump(&self.stats.expired);
                } else if pooled.conn.is_stale() {
                    bump(&self.stats.stale);
                } else {
                    bump(&self.stats.reused);
                    return Ok((pooled, true));
                }
            }
            if host.open.get() < host.cap.get() {
                match self.open(&host, addr).await {
                    Ok(p) => return Ok((p, false)),
                    // Out of fds: keep to the connections there are, closing the idle
                    // ones (and those checked in past the new cap) to give fds back, the
                    // server's end of a connection not yet accepted among them.
                    Err(e) if out_of_fds(&e) => {
                        bump(&self.stats.out_of_fds);
                        host.cap.set(host.open.get().max(1));
                        self.shed_idle();
                    }
                    Err(e) => return Err(e),
                }
                if host.open.get() < host.cap.get() {
                    time::sleep(self.cfg.backoff).await;
                    continue;
                }
            }
            host.freed.notified().await;
        }
    }

    /// A new connection, counted before its connect starts (a cancelled connect gives the
    /// room back through the slot).
    async fn open(&self, host: &Rc<Host>, addr: SocketAddr) -> io::Result<Pooled> {
        host.open.set(host.open.get() + 1);
        let slot = Slot(Rc::downgrade(host));
        let stream = self.connect(addr).await?;
        bump(&self.stats.opened);
        Ok(Pooled {
            conn: Conn::new(stream),
            slot,
        })
    }

    /// A fresh connection, waiting for room as a checkout does, but never an idle one.
    async fn open_fresh(&self, addr: SocketAddr) -> io::Result<Pooled> {
        let host = self.host(addr);
        while host.open.get() >= host.cap.get() {
            if host.idle.borrow_mut().pop_back().is_some() {
                continue; // an idle one makes room for the fresh one
            }
            host.freed.notified().await;
        }
        self.open(&host, addr).await
    }

    /// Puts a connection back, newest first; one the server will close is dropped.
    pub fn checkin(&self, pooled: Pooled, close: bool) {
        let Some(host) = pooled.slot.0.upgrade() else {
            return;
        };
        if !close && host.open.get() <= host.cap.get() {
            host.idle.borrow_mut().push_front((pooled, Instant::now()));
            host.freed.notify_one();
        }
    }

    /// Connects to `addr` from the next source address, with a timeout per try and a
    /// backoff between tries; refused and timed-out tries are tried again.
    pub async fn connect(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        let mut delay = self.cfg.backoff;
        let mut tries = 0;
        loop {
            tries += 1;
            let from = self.next_source();
            let err = match time::timeout(self.cfg.connect_timeout, connect_from(from, addr)).await
            {
                Ok(Ok(stream)) => return Ok(stream),
                Ok(Err(e)) => e,
                Err(_) => {
                    bump(&self.stats.connect_timeouts);
                    let msg = format!(
                        "connect to {addr} timed out after {:?}",
                        self.cfg.connect_timeout
                    );
                    io::Error::new(io::ErrorKind::TimedOut, msg)
                }
            };
            // Out of fds is the pool's to handle (see `checkout`), not a try's.
            let again = matches!(
                err.kind(),
                io::ErrorKind::TimedOut | io::ErrorKind::ConnectionRefused
            );
            if !again || tries >= self.cfg.connect_tries {
                return Err(err);
            }
            bump(&self.stats.connect_retries);
            time::sleep(delay).await;
            delay = (delay * 2).min(self.cfg.max_backoff);
        }
    }

    /// Drops every host's idle connections.
    pub fn shed_idle(&self) {
        let hosts: Vec<_> = self.hosts.borrow().values().cloned().collect();
        for host in hosts {
            let idle = std::mem::take(&mut *host.idle.borrow_mut());
            drop(idle);
        }
    }

    fn next_source(&self) -> Option<IpAddr> {
        let n = self.next_source.get();
        self.next_source.set(n + 1);
        (!self.cfg.sources.is_empty()).then(|| self.cfg.sources[n % self.cfg.sources.len()])
    }

    /// Sends `req` to `addr` under the request timeout and returns its response. A reused
    /// connection that fails before any byte of the answer (closed by the server as the
    /// request went, or reset) is not the request's fault: an idempotent one is sent once
    /// more on a fresh connection. A connection that timed out is dropped, its state unknown.
    pub async fn send(&self, addr: SocketAddr, req: &Request) -> io::Result<Response> {
        let (mut pooled, reused) = self.checkout(addr).await?;
        let err = match self.exchange(&mut pooled, req).await {
            Ok(resp) => {
                self.checkin(pooled, resp.close);
                return Ok(resp);
            }
            Err(e) => e,
        };
        let unanswered = pooled.conn.buf.is_empty()
            && matches!(
                err.kind(),
                io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
            );
        drop(pooled);
        if !(reused && unanswered && req.idempotent) {
            return Err(err);
        }
        bump(&self.stats.retried);
        let mut fresh = self.open_fresh(addr).await?;
        let resp = self.exchange(&mut fresh, req).await?;
        self.checkin(fresh, resp.close);
        Ok(resp)
    }

    async fn exchange(&self, pooled: &mut Pooled, req: &Request) -> io::Result<Response> {
        match time::timeout(self.cfg.request_timeout, pooled.conn.exchange(req)).await {
            Ok(res) => res,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no response within {:?}", self.cfg.request_timeout),
            )),
        }
    }
}

/// Whether `err` is the process (or system) out of fds.
pub fn out_of_fds(err: &io::Error) -> bool {
    matches!(
        overlap::io::raw_os_error(err),
        Some(libc::EMFILE | libc::ENFILE)
    )
}

/// Waits until the newest idle connection to `addr` is readable (the server's FIN, say):
/// for a test that wants the pool to find it closed, whatever the loopback's delay.
pub async fn idle_readable(pool: &Pool, addr: SocketAddr) {
    let host = pool.host(addr);
    let (pooled, since) = host
        .idle
        .borrow_mut()
        .pop_front()
        .expect("an idle connection");
    pooled.conn.stream.readable().await.unwrap();
    host.idle.borrow_mut().push_front((pooled, since));
}

/// A connect from `from` (any port) to `to`, or from the kernel's choice.
pub async fn connect_from(from: Option<IpAddr>, to: SocketAddr) -> io::Result<TcpStream> {
    let Some(ip) = from else {
        return TcpStream::connect(to).await;
    };
    let sock = if ip.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    sock.bind(SocketAddr::new(ip, 0))?;
    sock.connect(to).await
}

/// A connect from a fixed source address and port, sharing it through `SO_REUSEADDR` (a
/// generator pinning its source ports).
pub async fn connect_pinned(from: SocketAddr, to: SocketAddr) -> io::Result<TcpStream> {
    let sock = TcpSocket::new_v4()?;
    sock.set_reuseaddr(true)?;
    sock.bind(from)?;
    sock.connect(to).await
}
