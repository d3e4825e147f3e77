//! The node: one task per member on its own UDP socket, receiving through a
//! `UdpFramed<SwimCodec, Rc<UdpSocket>>` and sending through another over the same socket,
//! a `select!` over the next datagram and a tick; the protocol period (randomized
//! round-robin probe, ping-req to k others after the ping timeout, suspicion at the
//! period's end), joining through a seed, and leaving gracefully.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use overlap::net::UdpSocket;
use overlap::sink::SinkExt;
use overlap::stream::StreamExt;
use overlap::task::JoinHandle;
use overlap::udp::UdpFramed;

use super::proto::{Body, Msg, State, SwimCodec, MAX_PIGGYBACK, MAX_SYNC};
use super::view::View;

#[derive(Clone, Debug)]
pub struct Config {
    pub cluster: u32,
    pub tick: Duration,
    pub period_ticks: u64,
    pub ping_timeout_ticks: u64,
    pub suspicion_ticks: u64,
    pub k: usize,
    /// Every this many periods, a pull of a random member's view.
    pub sync_periods: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            cluster: 0x5ca1_ab1e,
            tick: Duration::from_millis(100),
            period_ticks: 10,
            ping_timeout_ticks: 3,
            suspicion_ticks: 60,
            k: 3,
            sync_periods: 5,
        }
    }
}

/// The handle the tests keep.
pub struct Node {
    pub id: u32,
    pub addr: SocketAddr,
    pub view: Rc<RefCell<View>>,
    /// Set: every datagram in or out is dropped (a partition).
    pub partitioned: Rc<Cell<bool>>,
    pub leave: Rc<Cell<bool>>,
    /// Datagrams from these addresses are dropped on arrival (a link cut one way).
    pub blocked: Rc<RefCell<Vec<SocketAddr>>>,
    pub task: JoinHandle<()>,
}

enum Probe {
    Idle,
    Waiting {
        target: u32,
        seq: u32,
        sent: u64,
        asked_others: bool,
    },
}

struct Driver {
    cfg: Config,
    view: Rc<RefCell<View>>,
    partitioned: Rc<Cell<bool>>,
    leave: Rc<Cell<bool>>,
    blocked: Rc<RefCell<Vec<SocketAddr>>>,
    out: UdpFramed<SwimCodec, Rc<UdpSocket>>,
    rng: u64,
    seq: u32,
    probe: Probe,
    order: Vec<u32>,
    /// Pings made for another's ping-req: my seq, the asker and its seq.
    relays: Vec<(u32, SocketAddr, u32)>,
    seed: Option<SocketAddr>,
    joined: bool,
}

impl Node {
    pub fn start(
        sock: UdpSocket,
        id: u32,
        seed: Option<SocketAddr>,
        rng: u64,
        cfg: Config,
    ) -> Node {
        let addr = sock.local_addr().unwrap();
        let view = Rc::new(RefCell::new(View::new(id, addr, 0, cfg.suspicion_ticks)));
        let partitioned = Rc::new(Cell::new(false));
        let leave = Rc::new(Cell::new(false));
        let blocked = Rc::new(RefCell::new(Vec::new()));
        let sock = Rc::new(sock);
        let d = Driver {
            cfg,
            view: view.clone(),
            partitioned: partitioned.clone(),
            leave: leave.clone(),
            blocked: blocked.clone(),
            out: UdpFramed::new(sock.clone(), SwimCodec),
            rng: rng | 1,
            seq: 0,
            probe: Probe::Idle,
            order: Vec::new(),
            relays: Vec::new(),
            seed,
            joined: seed.is_none(),
        };
        let task = overlap::spawn(d.run(UdpFramed::new(sock, SwimCodec)));
        Node {
            id,
            addr,
            view,
            partitioned,
            leave,
            blocked,
            task,
        }
    }
}

impl Driver {
    async fn run(mut self, mut input: UdpFramed<SwimCodec, Rc<UdpSocket>>) {
        let mut tick = overlap::time::interval(self.cfg.tick);
        tick.tick().await;
        if let Some(seed) = self.seed {
            self.join(seed).await;
        }
        loop {
            overlap::select! {
                item = input.next() => match item {
                    Some(Ok((msg, from))) => self.on_msg(msg, from).await,
                    Some(Err(_)) => {
                        let mut v = self.view.borrow_mut();
                        if self.partitioned.get() {
                            v.stats.partitioned += 1;
                        } else if let Some(from) = input.last_sender() {
                            v.stats.malformed += 1;
                            v.malformed_from.push(from);
                        }
                    }
                    None => return,
                },
                _ = tick.tick() => {
                    if self.leave.get() {
                        return self.leave_now().await;
                    }
                    self.on_tick().await;
                }
            }
        }
    }

    fn next_rand(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    async fn send(&mut self, body: Body, to: SocketAddr) {
        if self.partitioned.get() {
            self.view.borrow_mut().stats.partitioned += 1;
            return;
        }
        let msg = {
            let mut v = self.view.borrow_mut();
            let updates = match body {
                Body::Join => vec![v.me_alive()],
                Body::Sync => {
                    let mut all: Vec<_> = v
                        .members
                        .iter()
                        .map(|(&id, m)| super::proto::Update {
                            state: m.state,
                            id,
                            inc: m.inc,
                            addr: m.addr,
                        })
                        .collect();
                    all.insert(0, v.me_alive());
                    all.truncate(MAX_SYNC);
                    all
                }
                // A ping introduces its sender, who may not be known there yet (a relay's
                // ping for a ping-req, a node just joined).
                Body::Ping { .. } => {
                    let mut u = vec![v.me_alive()];
                    u.extend(v.piggyback(MAX_PIGGYBACK - 1));
                    u
                }
                _ => v.piggyback(MAX_PIGGYBACK),
            };
            Msg {
                cluster: self.cfg.cluster,
                from: v.me,
                body,
                updates,
            }
        };
        if self.out.send((msg, to)).await.is_err() {
            self.view.borrow_mut().stats.send_errors += 1;
        }
    }

    async fn join(&mut self, seed: SocketAddr) {
        self.send(Body::Join, seed).await;
    }

    fn addr_of(&self, id: u32) -> Option<SocketAddr> {
        self.view.borrow().members.get(&id).map(|m| m.addr)
    }

    async fn on_msg(&mut self, msg: Msg, from: SocketAddr) {
        if self.partitioned.get() || self.blocked.borrow().contains(&from) {
            self.view.borrow_mut().stats.partitioned += 1;
            return;
        }
        {
            let mut v = self.view.borrow_mut();
            let known = v.members.get(&msg.from).map(|m| m.addr);
            let introduces = msg
                .updates
                .iter()
                .any(|u| u.id == msg.from && u.addr == from && u.state == State::Alive);
            let legit = msg.cluster == self.cfg.cluster
                && msg.from != v.me
                && (known == Some(from) || introduces);
            if !legit {
                v.stats.strangers += 1;
                return;
            }
            for u in &msg.updates {
                v.apply(*u);
            }
        }
        match msg.body {
            Body::Ping { seq } => self.send(Body::Ack { seq }, from).await,
            Body::Ack { seq } => {
                self.view.borrow_mut().stats.acks_received += 1;
                if matches!(self.probe, Probe::Waiting { seq: s, .. } if s == seq) {
                    self.probe = Probe::Idle;
                } else if let Some(i) = self.relays.iter().position(|r| r.0 == seq) {
                    let (_, asker, their) = self.relays.swap_remove(i);
                    self.send(Body::IndirectAck { seq: their }, asker).await;
                }
            }
            Body::PingReq { seq, target } => {
                self.seq += 1;
                let mine = self.seq;
                self.relays.push((mine, from, seq));
                self.send(Body::Ping { seq: mine }, target).await;
            }
            Body::IndirectAck { seq } => {
                self.view.borrow_mut().stats.indirect_acks_received += 1;
                if matches!(self.probe, Probe::Waiting { seq: s, .. } if s == seq) {
                    self.probe = Probe::Idle;
                }
            }
            Body::Join => self.send(Body::Sync, from).await,
            Body::Sync => self.joined = true,
        }
    }

    async fn on_tick(&mut self) {
        let now = {
            let mut v = self.view.borrow_mut();
            v.now += 1;
            v.expire();
            v.now
        };
        let period = self.cfg.period_ticks;
        if let Probe::Waiting {
            target,
            seq,
            sent,
            asked_others,
        } = self.probe
        {
            if now >= sent + period {
                self.view.borrow_mut().suspect(target);
                self.probe = Probe::Idle;
            } else if !asked_others && now >= sent + self.cfg.ping_timeout_ticks {
                self.probe = Probe::Waiting {
                    target,
                    seq,
                    sent,
                    asked_others: true,
                };
                self.ask_others(target, seq).await;
            }
        }
        if now % period != 0 {
            return;
        }
        if !self.joined {
            if let Some(seed) = self.seed {
                self.join(seed).await;
            }
        } else if now % (period * self.cfg.sync_periods) == 0 {
            // Anti-entropy (memberlist's push-pull): a random member's whole view.
            let live = self.view.borrow().probeable();
            if !live.is_empty() {
                let id = live[(self.next_rand() % live.len() as u64) as usize];
                let to = self.addr_of(id).unwrap();
                self.join(to).await;
            }
        }
        if let Probe::Idle = self.probe {
            if let Some(target) = self.next_target() {
                self.seq += 1;
                let seq = self.seq;
                self.probe = Probe::Waiting {
                    target,
                    seq,
                    sent: now,
                    asked_others: false,
                };
                self.view.borrow_mut().stats.pings_sent += 1;
                let to = self.addr_of(target).unwrap();
                self.send(Body::Ping { seq }, to).await;
            }
        }
        self.relays.retain(|r| r.0 + 64 > self.seq);
    }

    /// Randomized round-robin: each round a fresh shuffle of the live members.
    fn next_target(&mut self) -> Option<u32> {
        let live = self.view.borrow().probeable();
        loop {
            match self.order.pop() {
                Some(id) if live.contains(&id) => return Some(id),
                Some(_) => continue,
                None if live.is_empty() => return None,
                None => {
                    self.order = live.clone();
                    for i in (1..self.order.len()).rev() {
                        let j = (self.next_rand() % (i as u64 + 1)) as usize;
                        self.order.swap(i, j);
                    }
                }
            }
        }
    }

    async fn ask_others(&mut self, target: u32, seq: u32) {
        let Some(target_addr) = self.addr_of(target) else {
            return;
        };
        let mut others: Vec<u32> = self
            .view
            .borrow()
            .probeable()
            .into_iter()
            .filter(|&id| id != target)
            .collect();
        for _ in 0..self.cfg.k.min(others.len()) {
            let i = (self.next_rand() % others.len() as u64) as usize;
            let id = others.swap_remove(i);
            let to = self.addr_of(id).unwrap();
            self.view.borrow_mut().stats.ping_reqs_sent += 1;
            self.send(
                Body::PingReq {
                    seq,
                    target: target_addr,
                },
                to,
            )
            .await;
        }
    }

    /// Gossips its own `Left` to every live member, then ends (dropping the socket).
    async fn leave_now(&mut self) {
        let (left, live) = {
            let v = self.view.borrow();
            let mut u = v.me_alive();
            u.state = State::Left;
            (u, v.probeable())
        };
        for id in live {
            self.view.borrow_mut().queue = vec![(left, 1)];
            self.seq += 1;
            let (seq, to) = (self.seq, self.addr_of(id).unwrap());
            self.send(Body::Ping { seq }, to).await;
        }
    }
}
