//! The client and its keep-alive pool: per `host:port`, a FIFO semaphore of `limit` busy
//! slots and a LIFO stack of idle connections; the checkout (stale check, idle expiry,
//! connect), the request with its one safe retry, and the idle reaper task.
//!
//! The slot count is the invariant: a request holds a permit from before it takes a
//! connection until it gives it back or closes it, and a connection is only opened when no
//! idle one is left, so busy + idle never passes `limit`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io::{self, ErrorKind};
use std::rc::{Rc, Weak};
use std::time::Duration;

use overlap::io::AsyncWriteExt;
use overlap::net::TcpStream;
use overlap::sync::{OwnedSemaphorePermit, Semaphore};
use overlap::time::{sleep, timeout, Instant};
use overlap::JoinHandle;

use crate::conn::{Conn, Url};
use crate::response::{read_head, Response};

/// The client's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Most connections open to one `host:port` at once (busy and idle).
    pub per_host: usize,
    /// How long a request waits for a slot before failing with `TimedOut`.
    pub wait_timeout: Duration,
    /// How long connecting, sending a request and reading its head may take; also each
    /// body's whole read.
    pub request_timeout: Duration,
    /// How long an idle connection is kept before the reaper closes it.
    pub idle_timeout: Duration,
    /// The largest body read.
    pub max_body: usize,
}

impl Config {
    /// `per_host` connections, a 5 s wait, a 30 s request timeout, a 90 s idle timeout
    /// (reqwest's) and 1 MiB bodies.
    pub fn new(per_host: usize) -> Config {
        Config {
            per_host,
            wait_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(90),
            max_body: 1 << 20,
        }
    }
}

/// Counts of what the pool did, for tests and metrics.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections opened.
    pub opened: Cell<u64>,
    /// Checkouts served by an idle connection.
    pub reused: Cell<u64>,
    /// Idle connections found stale at checkout and closed.
    pub stale: Cell<u64>,
    /// Idle connections closed by the reaper (or found expired at checkout).
    pub expired: Cell<u64>,
    /// Requests sent again on a fresh connection after a reused one failed.
    pub retried: Cell<u64>,
    /// Connections closed because their request was dropped or its response left unread.
    pub abandoned: Cell<u64>,
    /// Connections closed after an error, a timeout or a response that forbids reuse.
    pub closed: Cell<u64>,
}

/// One host's slots and idle connections.
struct Host {
    slots: Rc<Semaphore>,
    /// Most recently used last: checkout pops from the end (LIFO keeps the fewest
    /// connections warm and lets the others expire).
    idle: Vec<Conn>,
}

struct Inner {
    cfg: Config,
    hosts: RefCell<HashMap<String, Host>>,
    stats: Stats,
    next_id: Cell<u64>,
    reaper: RefCell<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(reaper) = self.reaper.get_mut().take() {
            reaper.abort();
        }
    }
}

/// An HTTP/1.1 client with a keep-alive pool. Clones share the pool; the last one dropped
/// closes every idle connection and stops the reaper.
#[derive(Clone)]
pub struct Client(Rc<Inner>);

/// A connection lent to one request, with its host slot. Dropped without
/// [`finish`](Self::finish) or [`discard`](Self::discard) (the request future dropped, the
/// response left unread), it closes the connection: what was read of it is unknown.
pub struct Checkout {
    conn: Option<Conn>,
    reused: bool,
    key: String,
    pool: Weak<Inner>,
    _slot: OwnedSemaphorePermit,
}

impl Checkout {
    /// The connection.
    pub fn conn(&mut self) -> &mut Conn {
        self.conn
            .as_mut()
            .expect("a checkout holds its connection until it ends")
    }

    /// The connection's number.
    pub fn conn_id(&self) -> u64 {
        self.conn.as_ref().map_or(0, |c| c.id)
    }

    /// Ends the request: the connection goes back to the idle stack if `reusable` and
    /// nothing unasked-for was read, else it is closed. The slot is freed after, so the
    /// next waiter finds the connection idle.
    pub fn finish(&mut self, reusable: bool) {
        let (Some(conn), Some(pool)) = (self.conn.take(), self.pool.upgrade()) else {
            return;
        };
        if !reusable || conn.has_leftover() {
            bump(&pool.stats.closed);
            return;
        }
        let mut conn = conn;
        conn.idle_since = Instant::now();
        let mut hosts = pool.hosts.borrow_mut();
        if let Some(host) = hosts.get_mut(&self.key) {
            host.idle.push(conn);
        }
    }

    /// Closes the connection (after an error).
    pub fn discard(&mut self) {
        if self.conn.take().is_some() {
            if let Some(pool) = self.pool.upgrade() {
                bump(&pool.stats.closed);
            }
        }
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        if self.conn.take().is_some() {
            if let Some(pool) = self.pool.upgrade() {
                bump(&pool.stats.abandoned);
            }
        }
    }
}

fn bump(c: &Cell<u64>) {
    c.set(c.get() + 1);
}

/// Errors that mean the server closed a connection it had kept idle: the request never
/// reached a live server, so an idempotent one may be sent again.
fn is_closed_before_answer(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::UnexpectedEof
            | ErrorKind::ConnectionReset
            | ErrorKind::BrokenPipe
            | ErrorKind::ConnectionAborted
    )
}

/// Methods that may be sent twice (RFC 9110 9.2.2), so may be retried.
fn idempotent(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS")
}

impl Client {
    /// A client with `cfg`; starts its reaper task (on the current runtime).
    pub fn new(cfg: Config) -> Client {
        assert!(cfg.per_host > 0, "per_host must be at least 1");
        let inner = Rc::new(Inner {
            cfg,
            hosts: RefCell::new(HashMap::new()),
            stats: Stats::default(),
            next_id: Cell::new(1),
            reaper: RefCell::new(None),
        });
        let reaper = overlap::spawn(reap(Rc::downgrade(&inner), inner.cfg.idle_timeout));
        *inner.reaper.borrow_mut() = Some(reaper);
        Client(inner)
    }

    /// The pool's counts.
    pub fn stats(&self) -> &Stats {
        &self.0.stats
    }

    /// How many idle connections the pool holds for `authority` (`host:port`).
    pub fn idle(&self, authority: &str) -> usize {
        self.0
            .hosts
            .borrow()
            .get(authority)
            .map_or(0, |h| h.idle.len())
    }

    /// `GET url`.
    pub async fn get(&self, url: &str) -> io::Result<Response> {
        self.request("GET", url, b"").await
    }

    /// `POST url` with `body`.
    pub async fn post(&self, url: &str, body: &[u8]) -> io::Result<Response> {
        self.request("POST", url, body).await
    }

    /// Sends `method url` with `body` and reads the response's head. A request that fails
    /// on a *reused* connection with EOF or a reset before any response byte is sent once
    /// more on a fresh connection if `method` is idempotent; never a POST, which the
    /// server may have acted on.
    pub async fn request(&self, method: &str, url: &str, body: &[u8]) -> io::Result<Response> {
        let url = Url::parse(url)?;
        let cfg = &self.0.cfg;
        let mut retried = false;
        loop {
            let mut co = self.checkout(&url.authority, retried).await?;
            let limit = cfg.request_timeout;
            let exchange = async {
                let conn = co.conn();
                let head = format!(
                    "{method} {} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n",
                    url.path,
                    url.authority,
                    body.len()
                );
                let stream = conn.stream();
                stream.write_all(head.as_bytes()).await?;
                stream.write_all(body).await?;
                stream.flush().await?;
                read_head(conn).await?.ok_or_else(|| {
                    io::Error::new(
                        ErrorKind::UnexpectedEof,
                        "connection closed before any response byte",
                    )
                })
            };
            let failure = match timeout(limit, exchange).await {
                Ok(Ok(head)) => return Response::new(head, method, co, limit, cfg.max_body),
                Ok(Err(e)) => e,
                Err(_) => {
                    co.discard();
                    return Err(io::Error::new(
                        ErrorKind::TimedOut,
                        format!("no response head within {limit:?}"),
                    ));
                }
            };
            // Only a request whose connection died before it gave a single byte back may
            // go again: after that, the server has answered, whatever else went wrong.
            let may_retry = co.reused
                && !retried
                && idempotent(method)
                && co.conn().received() == 0
                && is_closed_before_answer(&failure);
            co.discard();
            if !may_retry {
                return Err(failure);
            }
            retried = true;
            bump(&self.0.stats.retried);
        }
    }

    /// Takes a slot for `key` (waiting in FIFO order, up to the wait timeout), then the
    /// most recently used idle connection that is neither expired nor stale, or a new one.
    /// `fresh_only` (a retry) skips the idle ones.
    async fn checkout(&self, key: &str, fresh_only: bool) -> io::Result<Checkout> {
        let inner = &self.0;
        let slots = {
            let mut hosts = inner.hosts.borrow_mut();
            let host = hosts.entry(key.to_string()).or_insert_with(|| Host {
                slots: Rc::new(Semaphore::new(inner.cfg.per_host)),
                idle: Vec::new(),
            });
            host.slots.clone()
        };
        let wait = inner.cfg.wait_timeout;
        let slot = match timeout(wait, slots.acquire_owned()).await {
            Ok(Ok(slot)) => slot,
            Ok(Err(_)) => return Err(io::Error::other("the pool is closed")),
            Err(_) => {
                return Err(io::Error::new(
                    ErrorKind::TimedOut,
                    format!("no connection to {key} free within {wait:?}"),
                ))
            }
        };
        let mut co = Checkout {
            conn: None,
            reused: false,
            key: key.to_string(),
            pool: Rc::downgrade(inner),
            _slot: slot,
        };
        let now = Instant::now();
        let pop_idle = || match fresh_only {
            true => None,
            false => inner.hosts.borrow_mut().get_mut(key)?.idle.pop(),
        };
        while let Some(conn) = pop_idle() {
            if conn.idle_expired(now, inner.cfg.idle_timeout) {
                bump(&inner.stats.expired);
            } else if conn.is_stale().is_some() {
                bump(&inner.stats.stale);
            } else {
                bump(&inner.stats.reused);
                co.conn = Some(conn);
                co.reused = true;
                return Ok(co);
            }
        }
        let limit = inner.cfg.request_timeout;
        let stream = match timeout(limit, TcpStream::connect(key)).await {
            Ok(res) => res?,
            Err(_) => {
                return Err(io::Error::new(
                    ErrorKind::TimedOut,
                    format!("connecting to {key} took over {limit:?}"),
                ))
            }
        };
        let id = inner.next_id.get();
        inner.next_id.set(id + 1);
        bump(&inner.stats.opened);
        co.conn = Some(Conn::new(id, stream));
        Ok(co)
    }
}

/// The reaper: every quarter of the idle timeout, closes the idle connections that have
/// been idle for the whole timeout. Holds the pool weakly, so it never keeps it alive.
async fn reap(pool: Weak<Inner>, idle_timeout: Duration) {
    let tick = (idle_timeout / 4).max(Duration::from_millis(1));
    loop {
        sleep(tick).await;
        let Some(pool) = pool.upgrade() else { return };
        let now = Instant::now();
        let mut closed = 0;
        for host in pool.hosts.borrow_mut().values_mut() {
            let before = host.idle.len();
            host.idle.retain(|c| !c.idle_expired(now, idle_timeout));
            closed += before - host.idle.len();
        }
        pool.stats
            .expired
            .set(pool.stats.expired.get() + closed as u64);
    }
}
