//! Keep-alive connections to one backend, over TCP or a Unix socket (one type for both:
//! `overlap::either::Either`, tokio-util's `Either`): idle ones kept up to a count and a
//! time, each checked for a close by the backend before reuse, and never leased to two
//! requests at once.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use overlap::either::Either;
use overlap::net::{TcpStream, UnixStream};
use overlap::time::Instant;

use super::http::Conn;

/// A backend connection: TCP or Unix.
pub type Upstream = Either<TcpStream, UnixStream>;

/// Where a backend listens.
#[derive(Clone, Debug)]
pub enum BackendAddr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// The pool's settings.
#[derive(Clone, Copy, Debug)]
pub struct PoolConfig {
    pub max_idle: usize,
    pub idle_timeout: Duration,
}

/// What the pool did, for the tests.
#[derive(Default, Debug, Clone, Copy, PartialEq)]
pub struct PoolStats {
    pub connects: u64,
    pub reused: u64,
    /// Idle ones found closed (or sending unasked) at checkout.
    pub stale: u64,
    /// Idle ones past the idle timeout.
    pub expired: u64,
    /// Returned to a full pool, so closed.
    pub over_max_idle: u64,
    /// The most leased at once.
    pub max_leased: usize,
}

struct Idle {
    conn: Conn<Upstream>,
    id: u64,
    since: Instant,
}

/// The pool of one backend.
pub struct Pool {
    addr: BackendAddr,
    cfg: PoolConfig,
    idle: RefCell<Vec<Idle>>,
    leased: RefCell<HashSet<u64>>,
    next_id: Cell<u64>,
    stats: Cell<PoolStats>,
}

/// A connection lent to one request; dropped, it is closed unless [`Lease::put_back`].
pub struct Lease {
    pool: Rc<Pool>,
    conn: Option<Conn<Upstream>>,
    pub id: u64,
    /// Whether it had served an earlier request (so a close may have crossed ours).
    pub reused: bool,
}

impl Pool {
    pub fn new(addr: BackendAddr, cfg: PoolConfig) -> Pool {
        Pool {
            addr,
            cfg,
            idle: RefCell::new(Vec::new()),
            leased: RefCell::new(HashSet::new()),
            next_id: Cell::new(0),
            stats: Cell::new(PoolStats::default()),
        }
    }

    pub fn stats(&self) -> PoolStats {
        self.stats.get()
    }

    pub fn idle(&self) -> usize {
        self.idle.borrow().len()
    }

    pub fn leased(&self) -> usize {
        self.leased.borrow().len()
    }

    fn bump(&self, f: impl FnOnce(&mut PoolStats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }

    /// Closes every idle connection (the drain's end).
    pub fn clear(&self) {
        self.idle.borrow_mut().clear();
    }

    /// An idle connection still open, the freshest first, else a new one.
    pub async fn checkout(self: &Rc<Self>, fresh: bool) -> io::Result<Lease> {
        let now = overlap::time::now();
        if !fresh {
            loop {
                let Some(idle) = self.idle.borrow_mut().pop() else {
                    break;
                };
                if now.saturating_duration_since(idle.since) >= self.cfg.idle_timeout {
                    self.bump(|s| s.expired += 1);
                    self.expire_older(now);
                    continue;
                }
                if !still_open(&idle.conn) {
                    self.bump(|s| s.stale += 1);
                    continue;
                }
                self.bump(|s| s.reused += 1);
                return Ok(self.lease(idle.conn, idle.id, true));
            }
        }
        let io = match &self.addr {
            BackendAddr::Tcp(addr) => {
                let s = TcpStream::connect(*addr).await?;
                s.set_nodelay(true)?;
                Either::Left(s)
            }
            BackendAddr::Unix(path) => Either::Right(UnixStream::connect(path).await?),
        };
        self.bump(|s| s.connects += 1);
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        Ok(self.lease(Conn::new(io), id, false))
    }

    /// Drops the idle connections past the timeout (all older than the one that was).
    fn expire_older(&self, now: Instant) {
        let mut idle = self.idle.borrow_mut();
        let before = idle.len();
        idle.retain(|i| now.saturating_duration_since(i.since) < self.cfg.idle_timeout);
        let gone = (before - idle.len()) as u64;
        self.bump(|s| s.expired += gone);
    }

    fn lease(self: &Rc<Self>, conn: Conn<Upstream>, id: u64, reused: bool) -> Lease {
        let mut leased = self.leased.borrow_mut();
        assert!(leased.insert(id), "connection {id} leased twice");
        let n = leased.len();
        self.bump(|s| s.max_leased = s.max_leased.max(n));
        Lease {
            pool: self.clone(),
            conn: Some(conn),
            id,
            reused,
        }
    }
}

impl Lease {
    pub fn conn(&mut self) -> &mut Conn<Upstream> {
        self.conn
            .as_mut()
            .expect("a lease holds its connection until dropped")
    }

    /// Back to the pool for the next request, or closed if the pool is full.
    pub fn put_back(mut self) {
        let now = overlap::time::now();
        self.pool.expire_older(now);
        let mut idle = self.pool.idle.borrow_mut();
        if idle.len() >= self.pool.cfg.max_idle {
            self.pool.bump(|s| s.over_max_idle += 1);
            return; // dropped: closed, and no longer leased.
        }
        let conn = self.conn.take().expect("held until now");
        idle.push(Idle {
            conn,
            id: self.id,
            since: now,
        });
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.pool.leased.borrow_mut().remove(&self.id);
    }
}

/// Whether an idle connection looks open: nothing to read yet (`WouldBlock`), as tokio's
/// `try_read` tells it. End of file, an error, or bytes nobody asked for: not reusable.
fn still_open(conn: &Conn<Upstream>) -> bool {
    if conn.buffered() > 0 {
        return false;
    }
    let mut probe = [0u8; 1];
    let r = match &conn.io {
        Either::Left(tcp) => tcp.try_read(&mut probe),
        Either::Right(unix) => unix.try_read(&mut probe),
    };
    matches!(r, Err(e) if e.kind() == ErrorKind::WouldBlock)
}
