//! The gateway's setup and life: its routes and backends, the accept loop over several
//! listeners, and the graceful drain (stop accepting, let requests in flight finish up to
//! a deadline, then abort the rest and close the pools).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use overlap::net::TcpListener;
use overlap::stream::wrappers::TcpListenerStream;
use overlap::stream::StreamExt;
use overlap::sync::{CancellationToken, Semaphore};
use overlap::task::{JoinHandle, JoinSet};
use overlap::time;

use super::limits::{Breaker, BreakerConfig, RateConfig, RateLimiter};
use super::pool::{BackendAddr, Pool, PoolConfig};
use super::proxy::serve;

/// A backend: its name, address and how long it may take to connect and answer.
#[derive(Clone, Debug)]
pub struct BackendConfig {
    pub name: String,
    pub addr: BackendAddr,
    pub timeout: Duration,
}

/// A route: requests whose path starts with `prefix` go to `backend`, the prefix cut off
/// if `strip`; at most `max_concurrent` at once, the others waiting up to `queue_timeout`.
#[derive(Clone, Debug)]
pub struct RouteConfig {
    pub prefix: String,
    pub backend: String,
    pub strip: bool,
    pub max_concurrent: usize,
    pub queue_timeout: Duration,
    pub max_body: u64,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub backends: Vec<BackendConfig>,
    pub routes: Vec<RouteConfig>,
    pub max_head: usize,
    /// How long a keep-alive client may stay idle between requests.
    pub client_idle: Duration,
    pub rate: RateConfig,
    pub breaker: BreakerConfig,
    pub pool: PoolConfig,
    pub drain_deadline: Duration,
}

impl Config {
    /// One backend per `(name, addr)`, one route per `(prefix, backend)`, the defaults
    /// for the rest (generous, so a test tightens only what it looks at).
    pub fn new(backends: &[(&str, BackendAddr)], routes: &[(&str, &str)]) -> Config {
        Config {
            backends: backends
                .iter()
                .map(|(name, addr)| BackendConfig {
                    name: name.to_string(),
                    addr: addr.clone(),
                    timeout: Duration::from_secs(10),
                })
                .collect(),
            routes: routes
                .iter()
                .map(|(prefix, backend)| RouteConfig {
                    prefix: prefix.to_string(),
                    backend: backend.to_string(),
                    strip: false,
                    max_concurrent: 64,
                    queue_timeout: Duration::from_secs(1),
                    max_body: 64 << 20,
                })
                .collect(),
            max_head: 8 * 1024,
            client_idle: Duration::from_secs(60),
            rate: RateConfig {
                burst: 1000,
                per_second: 1000,
                max_clients: 1024,
            },
            breaker: BreakerConfig {
                failures: 3,
                cooldown: Duration::from_secs(30),
            },
            pool: PoolConfig {
                max_idle: 8,
                idle_timeout: Duration::from_secs(90),
            },
            drain_deadline: Duration::from_secs(30),
        }
    }
}

/// A backend at run time.
pub struct Backend {
    pub cfg: BackendConfig,
    pub pool: Rc<Pool>,
    pub breaker: Breaker,
}

/// A route at run time.
pub struct Route {
    pub cfg: RouteConfig,
    pub backend: Rc<Backend>,
    pub permits: Rc<Semaphore>,
}

/// Counters, for the tests.
#[derive(Default)]
pub struct Stats {
    pub accepted: Cell<u64>,
    pub requests: Cell<u64>,
    pub by_status: RefCell<BTreeMap<u16, u64>>,
    /// Idempotent requests sent again after a pooled connection's close crossed them.
    pub retries: Cell<u64>,
    /// Client connections closed because the drain began while they were idle.
    pub closed_idle_on_drain: Cell<u64>,
    /// What went wrong with backends, newest last (the user's log).
    pub backend_errors: RefCell<Vec<String>>,
}

impl Stats {
    pub fn count(&self, status: u16) {
        *self.by_status.borrow_mut().entry(status).or_default() += 1;
    }

    pub fn backend_error(&self, what: impl std::fmt::Display) {
        self.backend_errors.borrow_mut().push(what.to_string());
    }

    pub fn status(&self, status: u16) -> u64 {
        self.by_status.borrow().get(&status).copied().unwrap_or(0)
    }
}

/// What the gateway's tasks share.
pub struct Shared {
    pub cfg: Config,
    pub routes: Vec<Route>,
    pub backends: Vec<Rc<Backend>>,
    pub rate: RateLimiter,
    pub stats: Stats,
    /// Cancelled when the drain begins.
    pub draining: CancellationToken,
}

impl Shared {
    /// The route with the longest prefix `path` starts with.
    pub fn route(&self, path: &str) -> Option<&Route> {
        self.routes
            .iter()
            .filter(|r| path.starts_with(&r.cfg.prefix))
            .max_by_key(|r| r.cfg.prefix.len())
    }

    pub fn backend(&self, name: &str) -> &Rc<Backend> {
        self.backends
            .iter()
            .find(|b| b.cfg.name == name)
            .expect("a backend of that name")
    }
}

/// How the drain went.
#[derive(Debug, PartialEq)]
pub struct DrainReport {
    /// Client connections open when the drain began.
    pub open_at_drain: usize,
    /// Those still open at the deadline, aborted.
    pub aborted: usize,
}

/// A running gateway.
pub struct Gateway {
    pub shared: Rc<Shared>,
    pub addrs: Vec<SocketAddr>,
    task: JoinHandle<DrainReport>,
}

impl Gateway {
    pub fn start(listeners: Vec<TcpListener>, cfg: Config) -> Gateway {
        let backends: Vec<Rc<Backend>> = cfg
            .backends
            .iter()
            .map(|b| {
                Rc::new(Backend {
                    cfg: b.clone(),
                    pool: Rc::new(Pool::new(b.addr.clone(), cfg.pool)),
                    breaker: Breaker::new(cfg.breaker),
                })
            })
            .collect();
        let routes = cfg
            .routes
            .iter()
            .map(|r| Route {
                cfg: r.clone(),
                backend: backends
                    .iter()
                    .find(|b| b.cfg.name == r.backend)
                    .expect("a route's backend is configured")
                    .clone(),
                permits: Rc::new(Semaphore::new(r.max_concurrent)),
            })
            .collect();
        let shared = Rc::new(Shared {
            rate: RateLimiter::new(cfg.rate),
            cfg,
            routes,
            backends,
            stats: Stats::default(),
            draining: CancellationToken::new(),
        });
        let addrs = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
        let task = overlap::spawn(run(listeners, shared.clone()));
        Gateway {
            shared,
            addrs,
            task,
        }
    }

    /// The shutdown trigger: what a SIGTERM handler would call.
    pub fn shutdown(&self) {
        self.shared.draining.cancel();
    }

    /// Waits for the gateway to have drained.
    pub async fn finished(self) -> DrainReport {
        self.task.await.expect("the gateway task ends normally")
    }

    pub fn route(&self, prefix: &str) -> &Route {
        self.shared
            .routes
            .iter()
            .find(|r| r.cfg.prefix == prefix)
            .unwrap()
    }

    pub fn backend(&self, name: &str) -> &Rc<Backend> {
        self.shared.backend(name)
    }
}

async fn run(listeners: Vec<TcpListener>, shared: Rc<Shared>) -> DrainReport {
    let mut conns = JoinSet::new();
    let mut incoming =
        overlap::stream::select_all(listeners.into_iter().map(TcpListenerStream::new));
    loop {
        overlap::select! {
            _ = shared.draining.cancelled() => break,
            Some(accepted) = incoming.next() => match accepted {
                Ok(stream) => {
                    shared.stats.accepted.set(shared.stats.accepted.get() + 1);
                    let peer = stream.peer_addr();
                    if let (Ok(peer), Ok(())) = (peer, stream.set_nodelay(true)) {
                        conns.spawn(serve(stream, peer, shared.clone()));
                    }
                }
                // EMFILE and the like: back off, the connections in flight go on.
                Err(_) => time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = conns.join_next() => {}
        }
    }
    // No more accepting: the listening sockets close, new connections are refused.
    drop(incoming);
    let open_at_drain = conns.len();
    let _ = time::timeout(shared.cfg.drain_deadline, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    let aborted = conns.len();
    conns.shutdown().await;
    for b in &shared.backends {
        b.pool.clear();
    }
    DrainReport {
        open_at_drain,
        aborted,
    }
}
