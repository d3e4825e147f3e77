//! The client: a slot map, a supervised connection per node (`node_conn.rs`), routing by
//! key, `MOVED` (the map updated) and `ASK` (not) redirects, a deadline per request,
//! retries for idempotent requests only, a circuit breaker per node, and a shutdown that
//! leaves no task behind.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use overlap::net::TcpKeepalive;
use overlap::sync::{mpsc, oneshot, CancellationToken};
use overlap::task::JoinHandle;
use overlap::time::{self, Instant};

use super::node_conn::{supervise, Job, NodeShared};
use super::policy::{Admit, Backoff, Breaker};
use super::proto::{slot_of, Cmd, Reply, SLOTS};

#[derive(Clone, Debug)]
pub struct Config {
    /// Each request's deadline, from when it is sent to its node (queueing included).
    pub timeout: Duration,
    /// Times an idempotent request is sent again after a timeout or a lost connection.
    pub retries: u32,
    pub max_redirects: u32,
    pub backoff: Backoff,
    pub breaker_threshold: u32,
    pub cool_down: Duration,
    pub keepalive: TcpKeepalive,
    /// The longest reply line taken.
    pub max_line: usize,
    /// Requests queued for a node at most (senders wait beyond it).
    pub queue: usize,
    /// Seeds each node's backoff generator (mixed with the node's port).
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            timeout: Duration::from_secs(2),
            retries: 2,
            max_redirects: 5,
            backoff: Backoff {
                base: Duration::from_millis(100),
                max: Duration::from_secs(2),
            },
            breaker_threshold: 3,
            cool_down: Duration::from_secs(10),
            keepalive: TcpKeepalive::new()
                .with_time(Duration::from_secs(30))
                .with_interval(Duration::from_secs(5))
                .with_retries(4),
            max_line: 1024,
            queue: 64,
            seed: 0x5eed,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// No reply by the deadline; the request may or may not have been applied.
    Timeout {
        node: SocketAddr,
    },
    /// The connection ended with the request on it (`in_flight` requests in all).
    ConnectionLost {
        node: SocketAddr,
        in_flight: usize,
        why: String,
    },
    /// The node's breaker is open: nothing was sent.
    CircuitOpen {
        node: SocketAddr,
        until: Instant,
    },
    TooManyRedirects {
        last: SocketAddr,
    },
    /// No node serves the key's slot, by the map.
    Unrouted {
        slot: u16,
    },
    /// The node refused the request (`-ERR`), or answered something else than asked.
    Server(String),
    ShutDown,
}

impl Error {
    /// The request may not have reached the node, or its reply may have been lost: an
    /// idempotent one is worth sending again.
    fn is_transient(&self) -> bool {
        matches!(self, Error::Timeout { .. } | Error::ConnectionLost { .. })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Timeout { node } => write!(f, "no reply from {node} in time"),
            Error::ConnectionLost {
                node,
                in_flight,
                why,
            } => write!(
                f,
                "connection to {node} lost ({why}) with {in_flight} requests in flight"
            ),
            Error::CircuitOpen { node, .. } => write!(f, "circuit open for {node}"),
            Error::TooManyRedirects { last } => write!(f, "too many redirects, last to {last}"),
            Error::Unrouted { slot } => write!(f, "no node for slot {slot}"),
            Error::Server(e) => write!(f, "server: {e}"),
            Error::ShutDown => write!(f, "client shut down"),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub moved: u32,
    pub asked: u32,
    pub retries: u32,
    pub fast_failed: u32,
}

struct NodeEntry {
    shared: Rc<NodeShared>,
    jobs: mpsc::Sender<Job>,
}

struct Inner {
    cfg: Rc<Config>,
    slots: RefCell<Vec<Option<SocketAddr>>>,
    nodes: RefCell<HashMap<SocketAddr, NodeEntry>>,
    tasks: RefCell<Vec<JoinHandle<()>>>,
    stop: CancellationToken,
    stats: RefCell<Stats>,
}

pub struct Client {
    inner: Rc<Inner>,
}

/// Gives a probe's slot back if its request is dropped before an outcome.
struct ProbeGuard<'a>(Option<&'a RefCell<Breaker>>);

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        if let Some(b) = self.0 {
            b.borrow_mut().probe_abandoned();
        }
    }
}

impl Client {
    /// A client with an empty slot map: [`Client::connect`] or [`Client::refresh`] fill it.
    pub fn new(cfg: Config) -> Client {
        Client {
            inner: Rc::new(Inner {
                cfg: Rc::new(cfg),
                slots: RefCell::new(vec![None; SLOTS as usize]),
                nodes: RefCell::new(HashMap::new()),
                tasks: RefCell::new(Vec::new()),
                stop: CancellationToken::new(),
                stats: RefCell::new(Stats::default()),
            }),
        }
    }

    /// A client whose slot map comes from the first of `seeds` that answers `SLOTS`.
    pub async fn connect(seeds: &[SocketAddr], cfg: Config) -> Result<Client, Error> {
        let client = Client::new(cfg);
        let mut last = Error::Unrouted { slot: 0 };
        for &seed in seeds {
            match client.refresh(seed).await {
                Ok(()) => return Ok(client),
                Err(e) => last = e,
            }
        }
        client.shutdown().await;
        Err(last)
    }

    /// Asks `node` for the slot map, and takes it.
    pub async fn refresh(&self, node: SocketAddr) -> Result<(), Error> {
        match self.send_to(node, Cmd::Slots, false).await? {
            Reply::Slots(map) => {
                let mut slots = self.inner.slots.borrow_mut();
                for (range, addr) in map {
                    for s in range {
                        slots[s as usize] = Some(addr);
                    }
                }
                Ok(())
            }
            other => Err(Error::Server(format!("SLOTS answered {other:?}"))),
        }
    }

    pub async fn get(&self, key: &str) -> Result<Option<String>, Error> {
        match self.execute(Cmd::Get(key.into())).await? {
            Reply::Value(v) => Ok(v),
            other => Err(Error::Server(format!("GET answered {other:?}"))),
        }
    }

    pub async fn set(&self, key: &str, value: &str) -> Result<(), Error> {
        match self.execute(Cmd::Set(key.into(), value.into())).await? {
            Reply::Ok => Ok(()),
            other => Err(Error::Server(format!("SET answered {other:?}"))),
        }
    }

    pub async fn incr(&self, key: &str) -> Result<i64, Error> {
        match self.execute(Cmd::Incr(key.into())).await? {
            Reply::Int(n) => Ok(n),
            other => Err(Error::Server(format!("INCR answered {other:?}"))),
        }
    }

    pub fn route(&self, key: &str) -> Option<SocketAddr> {
        self.inner.slots.borrow()[slot_of(key) as usize]
    }

    pub fn stats(&self) -> Stats {
        self.inner.stats.borrow().clone()
    }

    /// What the client holds of `node` (made on first use).
    pub fn node(&self, addr: SocketAddr) -> Rc<NodeShared> {
        self.entry(addr).0
    }

    async fn execute(&self, cmd: Cmd) -> Result<Reply, Error> {
        let slot = slot_of(cmd.key().expect("a keyed command"));
        let mut node = self.inner.slots.borrow()[slot as usize].ok_or(Error::Unrouted { slot })?;
        let (mut asking, mut redirects, mut retries) = (false, 0, 0);
        loop {
            let res = self.send_to(node, cmd.clone(), asking).await;
            asking = false;
            let (to, ask) = match res {
                Ok(Reply::Moved(s, to)) => {
                    self.inner.slots.borrow_mut()[s as usize] = Some(to);
                    self.inner.stats.borrow_mut().moved += 1;
                    (to, false)
                }
                Ok(Reply::Ask(_, to)) => {
                    self.inner.stats.borrow_mut().asked += 1;
                    (to, true)
                }
                Ok(Reply::Err(e)) => return Err(Error::Server(e)),
                Ok(reply) => return Ok(reply),
                Err(e)
                    if e.is_transient()
                        && cmd.is_idempotent()
                        && retries < self.inner.cfg.retries =>
                {
                    retries += 1;
                    self.inner.stats.borrow_mut().retries += 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            redirects += 1;
            if redirects > self.inner.cfg.max_redirects {
                return Err(Error::TooManyRedirects { last: to });
            }
            (node, asking) = (to, ask);
        }
    }

    /// One sending of `cmd` to `addr`, through its breaker, to its deadline.
    async fn send_to(&self, addr: SocketAddr, cmd: Cmd, asking: bool) -> Result<Reply, Error> {
        if self.inner.stop.is_cancelled() {
            return Err(Error::ShutDown);
        }
        let (shared, jobs) = self.entry(addr);
        let now = time::now();
        let admit = shared.breaker.borrow_mut().admit(now);
        let admit = match admit {
            Ok(a) => a,
            Err(until) => {
                self.inner.stats.borrow_mut().fast_failed += 1;
                return Err(Error::CircuitOpen { node: addr, until });
            }
        };
        let mut guard = ProbeGuard((admit == Admit::Probe).then_some(&shared.breaker));
        let deadline = now + self.inner.cfg.timeout;
        let (tx, rx) = oneshot::channel();
        let job = Job {
            cmd,
            asking,
            deadline,
            reply: tx,
        };
        let exchange = async {
            jobs.send(job).await.map_err(|_| Error::ShutDown)?;
            rx.await.unwrap_or(Err(Error::ShutDown))
        };
        let res = match time::timeout_at(deadline, exchange).await {
            Ok(res) => res,
            Err(_) => Err(Error::Timeout { node: addr }),
        };
        guard.0 = None;
        let mut breaker = shared.breaker.borrow_mut();
        match &res {
            Err(e) if e.is_transient() => breaker.failure(time::now()),
            Err(Error::ShutDown) => breaker.probe_abandoned(),
            _ => breaker.success(),
        }
        res
    }

    fn entry(&self, addr: SocketAddr) -> (Rc<NodeShared>, mpsc::Sender<Job>) {
        let mut nodes = self.inner.nodes.borrow_mut();
        let e = nodes.entry(addr).or_insert_with(|| {
            let cfg = &self.inner.cfg;
            let shared = Rc::new(NodeShared {
                addr,
                attempts: RefCell::new(Vec::new()),
                fd: Default::default(),
                lost: RefCell::new(Vec::new()),
                connect_error: RefCell::new(None),
                breaker: RefCell::new(Breaker::new(cfg.breaker_threshold, cfg.cool_down)),
            });
            let (tx, rx) = mpsc::channel(cfg.queue);
            let task = overlap::spawn(supervise(
                shared.clone(),
                rx,
                cfg.clone(),
                node_seed(cfg.seed, addr),
                self.inner.stop.child_token(),
            ));
            self.inner.tasks.borrow_mut().push(task);
            NodeEntry { shared, jobs: tx }
        });
        (e.shared.clone(), e.jobs.clone())
    }

    /// Stops every node's supervisor (requests still out fail with `ShutDown`) and waits
    /// for them to end, their connections closed.
    pub async fn shutdown(&self) {
        self.inner.stop.cancel();
        self.inner.nodes.borrow_mut().clear();
        let tasks: Vec<_> = self.inner.tasks.borrow_mut().drain(..).collect();
        for t in tasks {
            t.await.expect("a node supervisor panicked");
        }
    }
}

/// A node's backoff seed: the client's, mixed with the node's port (never zero).
pub fn node_seed(seed: u64, addr: SocketAddr) -> u64 {
    (seed ^ (u64::from(addr.port()) << 32)) | 1
}
