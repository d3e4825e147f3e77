//! The service: one task receiving through a `UdpFramed` over an `Rc<UdpSocket>`, the
//! sending half (a second `UdpFramed` over the same socket) behind a `Mutex` for the
//! tasks that answer later. Its resources: `hello`, `echo`, `count`, `slow` and
//! `wait/<ms>` (separate responses: an empty ACK now, a CON response later), `big`
//! (Block2) and `obs` (observable). CON requests are deduplicated by (peer, message id) for
//! the exchange lifetime, the cached ACK sent again and the handler not run; a CON ping,
//! and a malformed CON whose header parsed, are answered with RST; an RST to a
//! notification, or a CON notification never acknowledged, removes its observer.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use overlap::net::UdpSocket;
use overlap::sink::SinkExt;
use overlap::stream::StreamExt;
use overlap::sync::{oneshot, Mutex};
use overlap::task::{JoinHandle, JoinSet};
use overlap::time::{self, Instant};
use overlap::udp::UdpFramed;

use super::codec::{FormatError, Reporting};
use super::message::{code, opt, Block, Message, Type};
use super::transmission::{Prng, Transmission};

#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The `big` resource, served in 1 KiB blocks.
    pub big: Rc<Vec<u8>>,
    /// How long `slow` takes before its separate response.
    pub separate_delay: Duration,
    /// How long a CON's message id is remembered (`EXCHANGE_LIFETIME`).
    pub lifetime: Duration,
    pub tx: Transmission,
    pub seed: u64,
    pub max_observers: usize,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        let tx = Transmission::default();
        ServerConfig {
            big: Rc::new(Vec::new()),
            separate_delay: Duration::from_secs(5),
            lifetime: tx.exchange_lifetime(),
            tx,
            seed: 16,
            max_observers: 4,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct ServerStats {
    /// Handler runs, by path.
    pub runs: BTreeMap<String, u64>,
    /// CON requests seen again within the lifetime, answered from the cache.
    pub duplicates: u64,
    pub malformed: Vec<(SocketAddr, FormatError)>,
    pub rsts_sent: u64,
    /// RSTs that ended an observation.
    pub deregistered: u64,
    /// An ACK or RST for no message of ours.
    pub unmatched: u64,
    pub separate_acked: u64,
    pub separate_reset: u64,
    pub separate_timed_out: u64,
    pub max_separate_pending: usize,
    pub notifications: u64,
}

/// How a CON of ours ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Confirmed {
    Acked,
    Reset,
    TimedOut,
}

type Outbox = UdpFramed<Reporting, Rc<UdpSocket>>;

struct State {
    stats: ServerStats,
    /// (peer, mid) of a CON request: the ACK it got, and when it is forgotten.
    cache: HashMap<(SocketAddr, u16), (Message, Instant)>,
    /// Our CONs waiting for their ACK or RST.
    waiting: HashMap<(SocketAddr, u16), oneshot::Sender<Type>>,
    /// NON notifications sent: an RST with one of these ids ends that observation.
    notified: HashMap<(SocketAddr, u16), Vec<u8>>,
    observers: Vec<(SocketAddr, Vec<u8>)>,
    obs_seq: u32,
    obs_value: Vec<u8>,
    counter: u64,
    next_mid: u16,
    rng: Prng,
    separate_pending: usize,
}

struct Shared {
    out: Mutex<Outbox>,
    cfg: ServerConfig,
    st: RefCell<State>,
}

pub struct Server {
    pub addr: SocketAddr,
    shared: Rc<Shared>,
    task: JoinHandle<()>,
}

enum Outcome {
    Now(Message),
    Later(Message, Duration),
}

impl Server {
    /// Serves on `addr` (port 0 for any).
    pub async fn start(addr: SocketAddr, cfg: ServerConfig) -> io::Result<Server> {
        let socket = Rc::new(UdpSocket::bind(addr).await?);
        let addr = socket.local_addr()?;
        let rng = Prng::new(cfg.seed);
        let shared = Rc::new(Shared {
            out: Mutex::new(UdpFramed::new(socket.clone(), Reporting)),
            st: RefCell::new(State {
                stats: ServerStats::default(),
                cache: HashMap::new(),
                waiting: HashMap::new(),
                notified: HashMap::new(),
                observers: Vec::new(),
                obs_seq: 1,
                obs_value: b"initial".to_vec(),
                counter: 0,
                next_mid: (cfg.seed as u16).wrapping_mul(7919),
                rng,
                separate_pending: 0,
            }),
            cfg,
        });
        let inbox = UdpFramed::new(socket, Reporting);
        let task = overlap::spawn(serve(shared.clone(), inbox));
        Ok(Server { addr, shared, task })
    }

    pub fn stats(&self) -> ServerStats {
        self.shared.st.borrow().stats.clone()
    }

    pub fn observers(&self) -> usize {
        self.shared.st.borrow().observers.len()
    }

    /// Remembered CON message ids.
    pub fn cached(&self) -> usize {
        self.shared.st.borrow().cache.len()
    }

    /// Sets `obs` and notifies every observer (CON or NON); how each CON notification
    /// ended, in observer order.
    pub async fn notify(&self, value: &[u8], confirmable: bool) -> Vec<Confirmed> {
        let (seq, observers) = {
            let mut st = self.shared.st.borrow_mut();
            st.obs_seq += 1;
            st.obs_value = value.to_vec();
            (st.obs_seq, st.observers.clone())
        };
        let mut ends = Vec::new();
        for (peer, token) in observers {
            let mtype = if confirmable { Type::Con } else { Type::Non };
            let mut msg = Message::new(mtype, code::CONTENT, 0, &token)
                .with_uint(opt::OBSERVE, seq)
                .with_payload(value);
            msg.mid = self.shared.mid();
            self.shared.st.borrow_mut().stats.notifications += 1;
            if confirmable {
                let end = self.shared.confirm(peer, msg).await;
                if end != Confirmed::Acked {
                    self.shared.forget_observer(peer, &token);
                }
                ends.push(end);
            } else {
                let key = (peer, msg.mid);
                self.shared.st.borrow_mut().notified.insert(key, token);
                self.shared.send(msg, peer).await;
            }
        }
        ends
    }

    /// Stops serving: the task and its pending separate responses end, the socket closes.
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
        while Rc::strong_count(&self.shared) > 1 {
            overlap::yield_now().await;
        }
    }
}

async fn serve(shared: Rc<Shared>, mut inbox: Outbox) {
    // Dropped with this task: aborts the separate responses still pending.
    let mut later: JoinSet<()> = JoinSet::new();
    loop {
        overlap::select! {
            Some(got) = inbox.next() => match got {
                Ok((Ok(msg), peer)) => shared.handle(msg, peer, &mut later).await,
                Ok((Err(bad), peer)) => shared.malformed(bad, peer).await,
                // A socket error (none is expected on an unconnected socket): go on.
                Err(_) => {}
            },
            Some(_) = later.join_next() => {}
        }
    }
}

impl Shared {
    fn mid(&self) -> u16 {
        let mut st = self.st.borrow_mut();
        st.next_mid = st.next_mid.wrapping_add(1);
        st.next_mid
    }

    async fn send(&self, msg: Message, to: SocketAddr) {
        // A refused send (the peer's family, say) loses this datagram only: UDP.
        let _ = self.out.lock().await.send((msg, to)).await;
    }

    async fn rst(&self, mid: u16, to: SocketAddr) {
        self.st.borrow_mut().stats.rsts_sent += 1;
        self.send(Message::empty(Type::Rst, mid), to).await;
    }

    async fn malformed(&self, bad: FormatError, peer: SocketAddr) {
        self.st.borrow_mut().stats.malformed.push((peer, bad));
        if let Some((Type::Con, mid)) = bad.header {
            self.rst(mid, peer).await;
        }
    }

    fn forget_observer(&self, peer: SocketAddr, token: &[u8]) {
        let mut st = self.st.borrow_mut();
        st.observers.retain(|(p, t)| !(*p == peer && t == token));
        st.notified.retain(|(p, _), t| !(*p == peer && t == token));
    }

    async fn handle(self: &Rc<Self>, msg: Message, peer: SocketAddr, later: &mut JoinSet<()>) {
        let key = (peer, msg.mid);
        match msg.mtype {
            Type::Ack | Type::Rst => {
                let waiter = self.st.borrow_mut().waiting.remove(&key);
                if let Some(waiter) = waiter {
                    let _ = waiter.send(msg.mtype);
                    return;
                }
                let token = self.st.borrow_mut().notified.remove(&key);
                match token {
                    Some(token) if msg.mtype == Type::Rst => {
                        self.forget_observer(peer, &token);
                        self.st.borrow_mut().stats.deregistered += 1;
                    }
                    _ => self.st.borrow_mut().stats.unmatched += 1,
                }
            }
            Type::Con | Type::Non if !code::is_request(msg.code) => {
                // A ping (an empty CON), or a response sent to a server: reset.
                if msg.mtype == Type::Con {
                    self.rst(msg.mid, peer).await;
                }
            }
            Type::Con => {
                let cached = {
                    let mut st = self.st.borrow_mut();
                    let now = time::now();
                    st.cache.retain(|_, (_, until)| *until > now);
                    let hit = st.cache.get(&key).map(|(ack, _)| ack.clone());
                    if hit.is_some() {
                        st.stats.duplicates += 1;
                    }
                    hit
                };
                if let Some(ack) = cached {
                    return self.send(ack, peer).await;
                }
                let ack = match self.route(&msg, peer) {
                    Outcome::Now(mut resp) => {
                        resp.mtype = Type::Ack;
                        resp.mid = msg.mid;
                        resp
                    }
                    Outcome::Later(mut resp, delay) => {
                        resp.mtype = Type::Con;
                        later.spawn(self.clone().respond_later(resp, delay, peer));
                        Message::empty(Type::Ack, msg.mid)
                    }
                };
                let until = time::now() + self.cfg.lifetime;
                self.st.borrow_mut().cache.insert(key, (ack.clone(), until));
                self.send(ack, peer).await;
            }
            Type::Non => match self.route(&msg, peer) {
                Outcome::Now(mut resp) => {
                    resp.mtype = Type::Non;
                    resp.mid = self.mid();
                    self.send(resp, peer).await;
                }
                Outcome::Later(mut resp, delay) => {
                    resp.mtype = Type::Non;
                    later.spawn(self.clone().respond_later(resp, delay, peer));
                }
            },
        }
    }

    /// A separate response: after `delay`, a CON retransmitted until ACK or RST (or a
    /// NON, sent once).
    async fn respond_later(self: Rc<Self>, mut resp: Message, delay: Duration, peer: SocketAddr) {
        {
            let mut st = self.st.borrow_mut();
            st.separate_pending += 1;
            st.stats.max_separate_pending = st.stats.max_separate_pending.max(st.separate_pending);
        }
        time::sleep(delay).await;
        resp.mid = self.mid();
        if resp.mtype == Type::Non {
            self.send(resp, peer).await;
        } else {
            let end = self.confirm(peer, resp).await;
            let mut st = self.st.borrow_mut();
            match end {
                Confirmed::Acked => st.stats.separate_acked += 1,
                Confirmed::Reset => st.stats.separate_reset += 1,
                Confirmed::TimedOut => st.stats.separate_timed_out += 1,
            }
        }
        self.st.borrow_mut().separate_pending -= 1;
    }

    /// Sends a CON of ours until its ACK or RST comes, with the exponential backoff.
    async fn confirm(&self, peer: SocketAddr, msg: Message) -> Confirmed {
        let key = (peer, msg.mid);
        let (tx, mut rx) = oneshot::channel();
        let mut wait = {
            let mut st = self.st.borrow_mut();
            st.waiting.insert(key, tx);
            self.cfg.tx.initial_timeout(&mut st.rng)
        };
        for _ in 0..=self.cfg.tx.max_retransmit {
            self.send(msg.clone(), peer).await;
            match time::timeout(wait, &mut rx).await {
                Ok(Ok(Type::Ack)) => return Confirmed::Acked,
                Ok(_) => return Confirmed::Reset,
                Err(_) => wait *= 2,
            }
        }
        self.st.borrow_mut().waiting.remove(&key);
        Confirmed::TimedOut
    }

    /// Runs the handler for `req`'s path.
    fn route(&self, req: &Message, peer: SocketAddr) -> Outcome {
        let path = req.path();
        let mut st = self.st.borrow_mut();
        *st.stats.runs.entry(path.clone()).or_default() += 1;
        let reply =
            |c: u8, payload: &[u8]| Message::new(Type::Ack, c, 0, &req.token).with_payload(payload);
        if let Some((n, _)) = req
            .options
            .iter()
            .find(|(n, _)| opt::is_critical(*n) && !opt::known(*n))
        {
            return Outcome::Now(reply(code::BAD_OPTION, format!("option {n}").as_bytes()));
        }
        let resp = match (req.code, path.as_str()) {
            (code::GET, "hello") => reply(code::CONTENT, b"world"),
            (code::POST, "echo") => reply(code::CONTENT, &req.payload),
            (code::POST, "count") => {
                st.counter += 1;
                reply(code::CHANGED, st.counter.to_string().as_bytes())
            }
            (code::GET, "slow") => {
                let delay = self.cfg.separate_delay;
                return Outcome::Later(reply(code::CONTENT, b"done slowly"), delay);
            }
            (code::POST, p) if p.starts_with("wait/") => match p[5..].parse() {
                Ok(ms) => {
                    let resp = reply(code::CONTENT, &req.payload);
                    return Outcome::Later(resp, Duration::from_millis(ms));
                }
                Err(_) => reply(code::BAD_REQUEST, b"wait/<ms>"),
            },
            (code::GET, "big") => {
                let want = req.block2().unwrap_or(Block {
                    num: 0,
                    more: false,
                    szx: 6,
                });
                let big = &self.cfg.big;
                let size = want.size().min(1024);
                let start = want.num as usize * size;
                if start >= big.len() && !(start == 0 && big.is_empty()) {
                    return Outcome::Now(reply(code::BAD_REQUEST, b"no such block"));
                }
                let end = (start + size).min(big.len());
                let block = Block {
                    num: want.num,
                    more: end < big.len(),
                    szx: if size == 1024 { 6 } else { want.szx },
                };
                let mut resp =
                    reply(code::CONTENT, &big[start..end]).with_uint(opt::BLOCK2, block.to_uint());
                if want.num == 0 {
                    resp = resp.with_uint(opt::SIZE2, big.len() as u32);
                }
                resp
            }
            (code::GET, "obs") => {
                let mut resp = reply(code::CONTENT, &st.obs_value.clone());
                let entry = (peer, req.token.clone());
                match req.uint(opt::OBSERVE) {
                    Some(0) if st.observers.contains(&entry) => {
                        resp = resp.with_uint(opt::OBSERVE, st.obs_seq);
                    }
                    Some(0) if st.observers.len() < self.cfg.max_observers => {
                        st.observers.push(entry);
                        resp = resp.with_uint(opt::OBSERVE, st.obs_seq);
                    }
                    Some(1) => st.observers.retain(|o| *o != entry),
                    // Full, or a plain GET: an answer without Observe, nothing registered.
                    _ => {}
                }
                resp
            }
            _ => reply(code::NOT_FOUND, b""),
        };
        Outcome::Now(resp)
    }
}
