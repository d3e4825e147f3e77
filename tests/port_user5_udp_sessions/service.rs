//! The session service: a dispatcher per socket, a task per peer, a stats task, and in one
//! design a reaper task for idle sessions.

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use overlap::future::FutureExt;
use overlap::net::UdpSocket;
use overlap::sync::{mpsc, watch, Notify};
use overlap::task::{JoinHandle, JoinSet};
use overlap::time::{self, sleep, Instant, MissedTickBehavior};

/// A deadline that never comes in a test's life.
const FAR: Duration = Duration::from_secs(86_400 * 365);

use super::wire::*;

/// The service's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// A session with no datagram for this long is dropped.
    pub idle: Duration,
    /// The first retransmission of unacknowledged data comes this long after the send; each
    /// later one waits twice as long as the one before.
    pub rto: Duration,
    /// Retransmissions of one message before it is given up.
    pub max_retries: u32,
    /// Token bucket per peer: at most `burst` datagrams at once, `rate` per second on average.
    pub burst: f64,
    /// See `burst`.
    pub rate: f64,
    /// How often the stats task takes a snapshot.
    pub stats_every: Duration,
    /// Events queued per peer before the dispatcher drops that peer's datagrams.
    pub queue: usize,
    /// The design of the idle timer (see the port's module docs).
    pub idle_design: IdleDesign,
}

/// How a peer task waits out its idle time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdleDesign {
    /// One pinned `Sleep`, `reset` by every datagram.
    ResetSleep,
    /// `timeout(idle, rx.recv())` made anew for every event.
    TimeoutPerRecv,
    /// No idle timer per session: the dispatcher notes each datagram's time, and one reaper
    /// task keeps a heap of deadlines (tokio-util's `DelayQueue`, by hand) behind one
    /// `Sleep`, checking a due session's last datagram before it drops the session.
    SharedTimer,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            idle: Duration::from_secs(30),
            rto: Duration::from_millis(200),
            max_retries: 4,
            burst: 20.0,
            rate: 100.0,
            stats_every: Duration::from_secs(1),
            queue: 64,
            idle_design: IdleDesign::ResetSleep,
        }
    }
}

/// Counters, all since the start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub datagrams: u64,
    pub sessions_opened: u64,
    pub sessions_now: u64,
    pub expired: u64,
    pub closed: u64,
    pub unknown_peer: u64,
    pub malformed: u64,
    pub oversized: u64,
    pub rate_limited: u64,
    pub queue_full: u64,
    pub retransmits: u64,
    pub given_up: u64,
    pub relayed: u64,
    pub send_errors: u64,
    pub recv_errors: u64,
}

/// What the dispatcher hands a peer's task (`Retransmit` is the task's own timer).
enum Step {
    /// A datagram from the peer, already checked for a header.
    Datagram(u8, u32, Vec<u8>),
    /// Data a paired session's peer sent, to deliver reliably to this one's.
    Relay(Vec<u8>),
    /// The session is now paired with session `id` (or unpaired, with `None`).
    Partner(Option<u32>),
    /// The retransmission timer fired.
    Retransmit,
}

/// A session as the dispatcher sees it.
struct Entry {
    id: u32,
    tx: mpsc::Sender<Step>,
    /// Token bucket: tokens left, and when they were counted.
    tokens: f64,
    counted: Instant,
    /// When the last datagram came (for the shared-timer design's reaper).
    last_seen: Instant,
}

/// How a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Idle,
    Bye,
    Shutdown,
}

/// State shared by the service's tasks (all on one runtime: `Rc`, `Cell`).
pub struct Service {
    config: Config,
    sessions: RefCell<HashMap<SocketAddr, Entry>>,
    by_id: RefCell<HashMap<u32, SocketAddr>>,
    next_id: Cell<u32>,
    stats: Cell<Stats>,
    /// The stats task's snapshots, newest last (at most 64).
    pub history: RefCell<Vec<Stats>>,
    /// How each session ended, by id.
    pub ended: RefCell<HashMap<u32, End>>,
    peers: RefCell<JoinSet<()>>,
    shutdown: watch::Sender<bool>,
    /// The shared-timer design's deadlines (session id, due then unless a datagram came).
    reap: RefCell<BinaryHeap<Reverse<(Instant, u32)>>>,
    reap_new: Notify,
}

impl Service {
    /// Starts serving on `sockets`; the handle ends once [`shut_down`](Self::shut_down) has
    /// let every session say goodbye.
    pub fn start(sockets: Vec<UdpSocket>, config: Config) -> (Rc<Service>, JoinHandle<()>) {
        let (shutdown, _) = watch::channel(false);
        let svc = Rc::new(Service {
            config,
            sessions: RefCell::default(),
            by_id: RefCell::default(),
            next_id: Cell::new(1),
            stats: Cell::default(),
            history: RefCell::default(),
            ended: RefCell::default(),
            peers: RefCell::new(JoinSet::new()),
            shutdown,
            reap: RefCell::default(),
            reap_new: Notify::new(),
        });
        let main = overlap::spawn(svc.clone().run(sockets));
        (svc, main)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats.get();
        s.sessions_now = self.sessions.borrow().len() as u64;
        s
    }

    /// The id of the session of the peer at `addr`, if it has one.
    pub fn session_of(&self, addr: SocketAddr) -> Option<u32> {
        self.sessions.borrow().get(&addr).map(|e| e.id)
    }

    /// Starts a graceful shutdown: the dispatchers stop reading, every session sends `BYE`.
    pub fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    fn count(&self, f: impl FnOnce(&mut Stats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }

    async fn run(self: Rc<Self>, sockets: Vec<UdpSocket>) {
        let mut tasks = JoinSet::new();
        for sock in sockets {
            tasks.spawn(self.clone().dispatch(Rc::new(sock)));
        }
        tasks.spawn(self.clone().stats_task());
        if self.config.idle_design == IdleDesign::SharedTimer {
            tasks.spawn(self.clone().reaper());
        }
        tasks.join_all().await;
        // The dispatchers are gone: no new session. Wait for the sessions' goodbyes.
        let mut peers = std::mem::take(&mut *self.peers.borrow_mut());
        while peers.join_next().await.is_some() {}
    }

    async fn stats_task(self: Rc<Self>) {
        let mut every = time::interval(self.config.stats_every);
        every.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut stop = self.shutdown.subscribe();
        loop {
            overlap::select! {
                _ = every.tick().fuse() => {
                    let mut h = self.history.borrow_mut();
                    if h.len() == 64 {
                        h.remove(0);
                    }
                    h.push(self.stats());
                }
                _ = stop.wait_for(|s| *s).fuse() => return,
            }
        }
    }

    /// The shared-timer design: drops the sessions whose last datagram is `idle` old. Every
    /// deadline is `idle` after an event, so a new one is never earlier than those queued:
    /// the one `Sleep` only waits for the head (or, with none, for a new session).
    async fn reaper(self: Rc<Self>) {
        let mut stop = self.shutdown.subscribe();
        let wake = sleep(Duration::MAX);
        overlap::pin_mut!(wake);
        loop {
            // With nothing queued, a far deadline: a fired `Sleep` left as it is stays ready.
            let head = self.reap.borrow().peek().map(|r| r.0 .0);
            wake.as_mut()
                .reset(head.unwrap_or_else(|| time::now() + FAR));
            overlap::select_biased! {
                _ = stop.wait_for(|s| *s).fuse() => return,
                _ = self.reap_new.notified().fuse() => continue,
                _ = wake.as_mut().fuse() => {}
            }
            let now = time::now();
            loop {
                let mut heap = self.reap.borrow_mut();
                let Some(&Reverse((due, id))) = heap.peek() else {
                    break;
                };
                if due > now {
                    break;
                }
                heap.pop();
                let Some(addr) = self.by_id.borrow().get(&id).copied() else {
                    continue;
                };
                let mut sessions = self.sessions.borrow_mut();
                let Some(entry) = sessions.get(&addr) else {
                    continue;
                };
                let next = entry.last_seen + self.config.idle;
                if next > now {
                    heap.push(Reverse((next, id)));
                } else {
                    // Its task sees the channel closed and ends as idle.
                    sessions.remove(&addr);
                    self.by_id.borrow_mut().remove(&id);
                }
            }
        }
    }

    /// Reads datagrams and hands each to its session's task, opening sessions on `HELLO`.
    async fn dispatch(self: Rc<Self>, sock: Rc<UdpSocket>) {
        let mut buf = vec![0u8; MAX_DATAGRAM + 1];
        let mut stop = self.shutdown.subscribe();
        loop {
            let (n, from) = overlap::select! {
                r = sock.recv_from(&mut buf).fuse() => match r {
                    Ok(got) => got,
                    // An unconnected socket gets no ICMP errors on Linux; count anything
                    // else and read on, as a long-running service must.
                    Err(_) => {
                        self.count(|s| s.recv_errors += 1);
                        continue;
                    }
                },
                _ = stop.wait_for(|s| *s).fuse() => return,
            };
            self.count(|s| s.datagrams += 1);
            if n > MAX_DATAGRAM {
                self.count(|s| s.oversized += 1);
                continue;
            }
            let Some((kind, num, payload)) = decode(&buf[..n]) else {
                self.count(|s| s.malformed += 1);
                continue;
            };
            self.route(&sock, from, kind, num, payload);
        }
    }

    fn route(
        self: &Rc<Self>,
        sock: &Rc<UdpSocket>,
        from: SocketAddr,
        kind: u8,
        num: u32,
        payload: &[u8],
    ) {
        let mut sessions = self.sessions.borrow_mut();
        let entry = match sessions.get_mut(&from) {
            Some(e) => e,
            None if kind == HELLO => {
                let id = self.next_id.get();
                self.next_id.set(id + 1);
                let (tx, rx) = mpsc::channel(self.config.queue);
                let entry = Entry {
                    id,
                    tx,
                    tokens: self.config.burst,
                    counted: time::now(),
                    last_seen: time::now(),
                };
                sessions.insert(from, entry);
                self.by_id.borrow_mut().insert(id, from);
                self.count(|s| s.sessions_opened += 1);
                self.reap
                    .borrow_mut()
                    .push(Reverse((time::now() + self.config.idle, id)));
                self.reap_new.notify_one();
                let task = peer_task(self.clone(), sock.clone(), from, id, rx);
                // The task's first act is the `WELCOME`.
                self.peers.borrow_mut().spawn(task);
                return;
            }
            None => {
                self.count(|s| s.unknown_peer += 1);
                if kind == BYE {
                    // A repeated `BYE` whose answer was lost: answer again, if it can go now.
                    let _ = sock.try_send_to(&encode(BYE, 0, b""), from);
                }
                return;
            }
        };
        // Token bucket on the runtime's clock.
        let now = time::now();
        entry.last_seen = now;
        let elapsed = now.duration_since(entry.counted).as_secs_f64();
        entry.tokens = (entry.tokens + elapsed * self.config.rate).min(self.config.burst);
        entry.counted = now;
        if entry.tokens < 1.0 {
            self.count(|s| s.rate_limited += 1);
            return;
        }
        entry.tokens -= 1.0;
        if entry
            .tx
            .try_send(Step::Datagram(kind, num, payload.to_vec()))
            .is_err()
        {
            self.count(|s| s.queue_full += 1);
        }
    }

    /// Hands `event` to the task of session `id`; false if it has none or it is busy.
    fn tell(&self, id: u32, event: Step) -> bool {
        let Some(addr) = self.by_id.borrow().get(&id).copied() else {
            return false;
        };
        let sessions = self.sessions.borrow();
        sessions
            .get(&addr)
            .is_some_and(|e| e.tx.try_send(event).is_ok())
    }

    /// Removes session `id` of `addr` from the tables (a new session of the same peer
    /// stays).
    fn forget(&self, addr: SocketAddr, id: u32) {
        let mut sessions = self.sessions.borrow_mut();
        if sessions.get(&addr).is_some_and(|e| e.id == id) {
            sessions.remove(&addr);
        }
        self.by_id.borrow_mut().remove(&id);
    }
}

/// A message sent reliably, waiting for its `ACK`.
struct Pending {
    datagram: Vec<u8>,
    retries: u32,
    due: Instant,
    wait: Duration,
}

/// One session: answers its peer, keeps its idle deadline, retransmits until acknowledged.
async fn peer_task(
    svc: Rc<Service>,
    sock: Rc<UdpSocket>,
    addr: SocketAddr,
    id: u32,
    mut rx: mpsc::Receiver<Step>,
) {
    let mut peer = Peer {
        svc: svc.clone(),
        sock,
        addr,
        id,
        partner: None,
        next_seq: 1,
        expected: 1,
        unacked: BTreeMap::new(),
    };
    peer.send(encode(WELCOME, id, b"")).await;
    let end = peer.serve(&mut rx).await;
    if end != End::Idle {
        peer.send(encode(BYE, 0, b"")).await;
    }
    svc.forget(addr, id);
    if let Some(partner) = peer.partner {
        svc.tell(partner, Step::Partner(None));
    }
    svc.count(|s| match end {
        End::Idle => s.expired += 1,
        End::Bye | End::Shutdown => s.closed += 1,
    });
    svc.ended.borrow_mut().insert(id, end);
}

struct Peer {
    svc: Rc<Service>,
    sock: Rc<UdpSocket>,
    addr: SocketAddr,
    id: u32,
    partner: Option<u32>,
    /// This side's next sequence number.
    next_seq: u32,
    /// The peer's next sequence number, in order (later ones are dropped unacknowledged).
    expected: u32,
    unacked: BTreeMap<u32, Pending>,
}

impl Peer {
    async fn serve(&mut self, rx: &mut mpsc::Receiver<Step>) -> End {
        let cfg = self.svc.config.clone();
        let mut stop = self.svc.shutdown.subscribe();
        let idle = sleep(cfg.idle);
        let retransmit = sleep(Duration::MAX);
        overlap::pin_mut!(idle, retransmit);
        loop {
            let step = match cfg.idle_design {
                IdleDesign::ResetSleep => overlap::select_biased! {
                    _ = stop.wait_for(|s| *s).fuse() => return End::Shutdown,
                    ev = rx.recv().fuse() => ev,
                    _ = idle => return End::Idle,
                    _ = retransmit => Some(Step::Retransmit),
                },
                IdleDesign::TimeoutPerRecv => overlap::select_biased! {
                    _ = stop.wait_for(|s| *s).fuse() => return End::Shutdown,
                    ev = time::timeout(cfg.idle, rx.recv()).fuse() => match ev {
                        Ok(ev) => ev,
                        Err(_) => return End::Idle,
                    },
                    _ = retransmit => Some(Step::Retransmit),
                },
                IdleDesign::SharedTimer => overlap::select_biased! {
                    _ = stop.wait_for(|s| *s).fuse() => return End::Shutdown,
                    ev = rx.recv().fuse() => ev,
                    _ = retransmit => Some(Step::Retransmit),
                },
            };
            // The sender is dropped only by the shared-timer design's reaper.
            let Some(step) = step else { return End::Idle };
            match step {
                Step::Datagram(kind, num, payload) => {
                    idle.as_mut().reset(time::now() + cfg.idle);
                    if let Some(end) = self.on_datagram(kind, num, payload).await {
                        return end;
                    }
                }
                Step::Relay(payload) => self.send_reliably(&payload).await,
                Step::Partner(p) => {
                    self.partner = p;
                    if let Some(p) = p {
                        self.send(encode(PAIRED, p, b"")).await;
                    }
                }
                Step::Retransmit => self.retransmit().await,
            }
            let next = self.unacked.values().map(|p| p.due).min();
            match next {
                Some(due) if due != retransmit.deadline() => retransmit.as_mut().reset(due),
                Some(_) => {}
                None => retransmit
                    .as_mut()
                    .reset(time::now() + Duration::from_secs(86_400 * 365)),
            }
        }
    }

    async fn on_datagram(&mut self, kind: u8, num: u32, payload: Vec<u8>) -> Option<End> {
        match kind {
            // A repeated HELLO (the WELCOME was lost): welcome again.
            HELLO => self.send(encode(WELCOME, self.id, b"")).await,
            PING => self.send(encode(PONG, num, b"")).await,
            BYE => return Some(End::Bye),
            ACK => {
                self.unacked.remove(&num);
            }
            PAIR => {
                let other = num;
                if other != self.id && self.svc.tell(other, Step::Partner(Some(self.id))) {
                    self.partner = Some(other);
                    self.send(encode(PAIRED, other, b"")).await;
                }
            }
            DATA if num < self.expected => self.send(encode(ACK, num, b"")).await,
            DATA if num == self.expected => {
                self.expected += 1;
                self.send(encode(ACK, num, b"")).await;
                match self.partner {
                    Some(p) if self.svc.tell(p, Step::Relay(payload.clone())) => {
                        self.svc.count(|s| s.relayed += 1);
                    }
                    _ => {
                        let mut echo = b"echo:".to_vec();
                        echo.extend_from_slice(&payload);
                        self.send_reliably(&echo).await;
                    }
                }
            }
            // Out of order (an earlier one was lost): the peer retransmits it in order.
            DATA => {}
            _ => self.svc.count(|s| s.malformed += 1),
        }
        None
    }

    async fn send_reliably(&mut self, payload: &[u8]) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let datagram = encode(DATA, seq, payload);
        self.send(datagram.clone()).await;
        let wait = self.svc.config.rto;
        let pending = Pending {
            datagram,
            retries: 0,
            due: time::now() + wait,
            wait,
        };
        self.unacked.insert(seq, pending);
    }

    async fn retransmit(&mut self) {
        let now = time::now();
        let max = self.svc.config.max_retries;
        let due: Vec<u32> = self
            .unacked
            .iter()
            .filter(|(_, p)| p.due <= now)
            .map(|(&seq, _)| seq)
            .collect();
        for seq in due {
            let p = self.unacked.get_mut(&seq).unwrap();
            if p.retries == max {
                self.unacked.remove(&seq);
                self.svc.count(|s| s.given_up += 1);
                continue;
            }
            p.retries += 1;
            p.wait *= 2;
            p.due = now + p.wait;
            let datagram = p.datagram.clone();
            self.svc.count(|s| s.retransmits += 1);
            self.send(datagram).await;
        }
    }

    /// Sends one datagram to the peer; a failure is counted, never fatal.
    async fn send(&self, datagram: Vec<u8>) {
        let res: io::Result<usize> = self.sock.send_to(&datagram, self.addr).await;
        if res.is_err() {
            self.svc.count(|s| s.send_errors += 1);
        }
    }
}
