//! The pool: a `Semaphore` of `max_size` permits bounds the connections checked out, idle
//! ones wait in a `VecDeque`, a checkout health-checks what it takes, a reaper task on an
//! `interval` closes connections past their lifetime or idle too long and keeps `min_idle`
//! open, and a checked-out connection goes back when its guard drops — unless it is broken.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::rc::{Rc, Weak};
use std::time::Duration;

use overlap::sync::{OwnedSemaphorePermit, Semaphore};
use overlap::task::JoinHandle;
use overlap::time::{self, Instant};

use super::client::{Connection, DbError};

#[derive(Clone)]
pub struct Config {
    pub addr: SocketAddr,
    pub user: String,
    pub password: String,
    pub max_size: usize,
    pub min_idle: usize,
    pub checkout_timeout: Duration,
    pub max_lifetime: Duration,
    pub idle_timeout: Duration,
    pub reap_every: Duration,
}

impl Config {
    pub fn new(addr: SocketAddr, max_size: usize) -> Config {
        Config {
            addr,
            user: "app".into(),
            password: super::server::PASSWORD.into(),
            max_size,
            min_idle: 0,
            checkout_timeout: Duration::from_secs(5),
            max_lifetime: Duration::from_secs(30 * 60),
            idle_timeout: Duration::from_secs(10 * 60),
            reap_every: Duration::from_secs(30),
        }
    }
}

/// What the pool did, for the tests to check.
#[derive(Default, Debug)]
pub struct PoolStats {
    pub opened: Cell<usize>,
    /// Connections open now: idle or checked out.
    pub live: Cell<usize>,
    pub discarded_broken: Cell<usize>,
    pub failed_health_check: Cell<usize>,
    pub reaped_lifetime: Cell<usize>,
    pub reaped_idle: Cell<usize>,
}

struct Inner {
    cfg: Config,
    idle: RefCell<VecDeque<Connection>>,
    permits: Rc<Semaphore>,
    closed: Cell<bool>,
    stats: PoolStats,
    reaper: RefCell<Option<JoinHandle<()>>>,
}

#[derive(Clone)]
pub struct Pool(Rc<Inner>);

/// A checked-out connection; back to the pool when dropped.
pub struct PooledConnection {
    conn: Option<Connection>,
    pool: Rc<Inner>,
    /// Dropped after `drop` has put the connection back, so a waiter woken by the permit
    /// finds it idle. `None` only while [`discard`](Self::discard) takes the guard apart.
    permit: Option<OwnedSemaphorePermit>,
}

impl Pool {
    pub fn new(cfg: Config) -> Pool {
        let inner = Rc::new(Inner {
            permits: Rc::new(Semaphore::new(cfg.max_size)),
            cfg,
            idle: RefCell::default(),
            closed: Cell::new(false),
            stats: PoolStats::default(),
            reaper: RefCell::new(None),
        });
        let reaper = overlap::spawn(reap(Rc::downgrade(&inner)));
        *inner.reaper.borrow_mut() = Some(reaper);
        Pool(inner)
    }

    pub fn stats(&self) -> &PoolStats {
        &self.0.stats
    }

    pub fn idle(&self) -> usize {
        self.0.idle.borrow().len()
    }

    /// How many idle connections the fast check finds closed.
    pub fn idle_closed(&self) -> usize {
        self.0
            .idle
            .borrow()
            .iter()
            .filter(|c| c.is_closed())
            .count()
    }

    /// A connection within the checkout timeout (tokio: `timeout(d, pool.get()).await`).
    pub async fn get(&self) -> Result<PooledConnection, DbError> {
        match time::timeout(self.0.cfg.checkout_timeout, self.checkout()).await {
            Ok(res) => res,
            Err(_) => Err(DbError::Timeout),
        }
    }

    async fn checkout(&self) -> Result<PooledConnection, DbError> {
        let inner = &self.0;
        let mut permit = Some(
            inner
                .permits
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| DbError::Closed)?,
        );
        loop {
            let next = inner.idle.borrow_mut().pop_back();
            let Some(conn) = next else { break };
            if conn.created.elapsed() >= inner.cfg.max_lifetime {
                inner
                    .stats
                    .reaped_lifetime
                    .set(inner.stats.reaped_lifetime.get() + 1);
                inner.close_one(conn);
                continue;
            }
            // Wrapped before the health check: if the checkout is dropped in the middle of
            // it, the guard sees the broken exchange and discards the connection.
            let mut guard = inner.guard(conn, permit.take().unwrap());
            if guard.query("ping").await.is_ok() {
                return Ok(guard);
            }
            inner
                .stats
                .failed_health_check
                .set(inner.stats.failed_health_check.get() + 1);
            permit = Some(guard.discard());
        }
        let conn =
            Connection::connect(inner.cfg.addr, &inner.cfg.user, &inner.cfg.password).await?;
        inner.stats.opened.set(inner.stats.opened.get() + 1);
        inner.stats.live.set(inner.stats.live.get() + 1);
        Ok(inner.guard(conn, permit.take().unwrap()))
    }

    /// Checks a connection out, runs one query on it and gives it back.
    pub async fn query(&self, sql: &str) -> Result<Vec<String>, DbError> {
        self.get().await?.query(sql).await
    }

    /// Closes the pool: checkouts fail from now on, idle connections say goodbye and
    /// close, checked-out ones close when given back, and the reaper stops.
    pub async fn close(&self) {
        let inner = &self.0;
        inner.closed.set(true);
        inner.permits.close();
        if let Some(reaper) = inner.reaper.borrow_mut().take() {
            reaper.abort();
        }
        let idle: Vec<Connection> = inner.idle.borrow_mut().drain(..).collect();
        for conn in idle {
            inner.stats.live.set(inner.stats.live.get() - 1);
            conn.terminate().await;
        }
    }
}

impl Inner {
    fn guard(self: &Rc<Self>, conn: Connection, permit: OwnedSemaphorePermit) -> PooledConnection {
        PooledConnection {
            conn: Some(conn),
            pool: self.clone(),
            permit: Some(permit),
        }
    }

    fn close_one(&self, conn: Connection) {
        self.stats.live.set(self.stats.live.get() - 1);
        drop(conn);
    }

    fn give_back(&self, mut conn: Connection) {
        if self.closed.get() {
            return self.close_one(conn);
        }
        if conn.is_broken() {
            self.stats
                .discarded_broken
                .set(self.stats.discarded_broken.get() + 1);
            return self.close_one(conn);
        }
        conn.idle_since = Instant::now();
        self.idle.borrow_mut().push_back(conn);
    }

    /// Closes idle connections past their lifetime or idle timeout, then opens new ones
    /// up to `min_idle` (each under a permit, so the pool never grows past `max_size`).
    async fn reap_once(self: &Rc<Self>) {
        let now = Instant::now();
        let cfg = &self.cfg;
        let mut kept = VecDeque::new();
        let idle: Vec<Connection> = self.idle.borrow_mut().drain(..).collect();
        for conn in idle {
            if now - conn.created >= cfg.max_lifetime {
                self.stats
                    .reaped_lifetime
                    .set(self.stats.reaped_lifetime.get() + 1);
                self.close_one(conn);
            } else if now - conn.idle_since >= cfg.idle_timeout {
                self.stats.reaped_idle.set(self.stats.reaped_idle.get() + 1);
                self.close_one(conn);
            } else {
                kept.push_back(conn);
            }
        }
        self.idle.borrow_mut().extend(kept);
        while self.idle.borrow().len() < cfg.min_idle
            && self.stats.live.get() < cfg.max_size
            && !self.closed.get()
        {
            let Ok(permit) = self.permits.clone().try_acquire_owned() else {
                break;
            };
            let Ok(conn) = Connection::connect(cfg.addr, &cfg.user, &cfg.password).await else {
                break;
            };
            self.stats.opened.set(self.stats.opened.get() + 1);
            self.stats.live.set(self.stats.live.get() + 1);
            drop(self.guard(conn, permit));
        }
    }
}

impl PooledConnection {
    /// Closes the connection instead of giving it back; the permit stays with the caller.
    fn discard(mut self) -> OwnedSemaphorePermit {
        let conn = self.conn.take().unwrap();
        self.pool.close_one(conn);
        self.permit.take().unwrap()
    }
}

impl Deref for PooledConnection {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn.as_ref().unwrap()
    }
}

impl DerefMut for PooledConnection {
    fn deref_mut(&mut self) -> &mut Connection {
        self.conn.as_mut().unwrap()
    }
}

impl Drop for PooledConnection {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.give_back(conn);
        }
        // The permit goes after this, with the connection already idle.
    }
}

/// The reaper: holds the pool weakly, so a pool dropped without `close` still goes.
async fn reap(pool: Weak<Inner>) {
    let every = match pool.upgrade() {
        Some(pool) => pool.cfg.reap_every,
        None => return,
    };
    let mut tick = time::interval(every);
    loop {
        tick.tick().await;
        let Some(pool) = pool.upgrade() else { return };
        pool.reap_once().await;
    }
}
