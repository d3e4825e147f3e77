//! The lossy relay: a task on its own 127.0.0.1 (or ::1) UDP socket between the two
//! endpoints, dropping, duplicating and delaying (so reordering) what passes through as
//! its rule says, with a seeded generator, so that what it does is the same for a seed.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use overlap::net::UdpSocket;
use overlap::stream::StreamExt;
use overlap::task::JoinHandle;
use overlap::time::DelayQueue;

use super::proto::{peek, Kind};

/// splitmix64: a seeded generator, its sequence fixed by the seed.
pub struct Prng(u64);

impl Prng {
    pub fn new(seed: u64) -> Prng {
        Prng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True `pct` times in a hundred.
    pub fn percent(&mut self, pct: u64) -> bool {
        self.next() % 100 < pct
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What to do with one datagram.
pub enum Action {
    Drop,
    /// Forward `copies` times, each after `delay`.
    Pass {
        copies: u8,
        delay: Duration,
    },
}

pub const PASS: Action = Action::Pass {
    copies: 1,
    delay: Duration::ZERO,
};

/// What the relay sees of a datagram: its direction (`true` from the first endpoint to
/// the second), its kind and seq (if it parses), and whether that DATA/FIN seq has passed
/// this way before (a retransmission).
pub struct Seen {
    pub forward: bool,
    pub kind: Option<Kind>,
    pub seq: u32,
    pub again: bool,
}

pub type Rule = Box<dyn FnMut(&mut Prng, &Seen) -> Action>;

/// Drops `loss`%, duplicates `dup`%, delays each by up to `jitter` (reordering), both
/// directions.
pub fn lossy(loss: u64, dup: u64, jitter: Duration) -> Rule {
    Box::new(move |rng, _| {
        if rng.percent(loss) {
            return Action::Drop;
        }
        let copies = if rng.percent(dup) { 2 } else { 1 };
        let ms = jitter.as_millis() as u64;
        let delay = Duration::from_millis(if ms == 0 { 0 } else { rng.below(ms + 1) });
        Action::Pass { copies, delay }
    })
}

/// Drops `pct`% of the first sendings of DATA from the first endpoint; nothing else.
pub fn drop_first_data(pct: u64) -> Rule {
    Box::new(move |rng, s| {
        if s.forward && s.kind == Some(Kind::Data) && !s.again && rng.percent(pct) {
            Action::Drop
        } else {
            PASS
        }
    })
}

/// Drops the first sending of each DATA seq in `seqs` from the first endpoint.
pub fn drop_seqs_once(seqs: Vec<u32>) -> Rule {
    Box::new(move |_, s| {
        if s.forward && s.kind == Some(Kind::Data) && !s.again && seqs.contains(&s.seq) {
            Action::Drop
        } else {
            PASS
        }
    })
}

/// Delays every datagram by `d`, both ways.
pub fn fixed_delay(d: Duration) -> Rule {
    Box::new(move |_, _| Action::Pass {
        copies: 1,
        delay: d,
    })
}

#[derive(Default, Debug, Clone)]
pub struct RelayStats {
    pub forwarded: u64,
    pub dropped: u64,
    pub duplicated: u64,
    /// (direction, seq) of each DATA dropped.
    pub dropped_data: Vec<(bool, u32)>,
}

pub struct Relay {
    pub addr: SocketAddr,
    /// The relay's socket, for the tests to send from it as if relayed.
    pub socket: Rc<UdpSocket>,
    pub stats: Rc<RefCell<RelayStats>>,
    /// While set, everything is dropped (the peer gone silent).
    pub blackhole: Rc<Cell<bool>>,
    task: JoinHandle<()>,
}

impl Relay {
    /// Relays between `a` and `b` on `socket`.
    pub fn start(socket: UdpSocket, a: SocketAddr, b: SocketAddr, seed: u64, rule: Rule) -> Relay {
        let addr = socket.local_addr().unwrap();
        let socket = Rc::new(socket);
        let stats = Rc::new(RefCell::new(RelayStats::default()));
        let blackhole = Rc::new(Cell::new(false));
        let task = overlap::spawn(run(
            socket.clone(),
            (a, b),
            Prng::new(seed),
            rule,
            stats.clone(),
            blackhole.clone(),
        ));
        Relay {
            addr,
            socket,
            stats,
            blackhole,
            task,
        }
    }

    pub fn stats(&self) -> RelayStats {
        self.stats.borrow().clone()
    }

    /// Ends the relay's task and closes its socket.
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn run(
    sock: Rc<UdpSocket>,
    (a, b): (SocketAddr, SocketAddr),
    mut rng: Prng,
    mut rule: Rule,
    stats: Rc<RefCell<RelayStats>>,
    blackhole: Rc<Cell<bool>>,
) {
    let mut buf = vec![0u8; 65536];
    let mut later: DelayQueue<(SocketAddr, Vec<u8>)> = DelayQueue::new();
    let mut seen: HashSet<(bool, u32)> = HashSet::new();
    loop {
        let got = overlap::select! {
            r = sock.recv_from(&mut buf) => r.ok(),
            Some(e) = later.next() => {
                let (to, bytes) = e.into_inner();
                let _ = sock.send_to(&bytes, to).await;
                None
            }
        };
        let Some((n, from)) = got else { continue };
        let forward = from == a;
        if !forward && from != b {
            continue;
        }
        let to = if forward { b } else { a };
        let bytes = buf[..n].to_vec();
        let (kind, seq) = match peek(&bytes) {
            Some((k, s)) => (Some(k), s),
            None => (None, 0),
        };
        let again = matches!(kind, Some(Kind::Data | Kind::Fin)) && !seen.insert((forward, seq));
        let action = if blackhole.get() {
            Action::Drop
        } else {
            rule(
                &mut rng,
                &Seen {
                    forward,
                    kind,
                    seq,
                    again,
                },
            )
        };
        match action {
            Action::Drop => {
                let mut st = stats.borrow_mut();
                st.dropped += 1;
                if kind == Some(Kind::Data) {
                    st.dropped_data.push((forward, seq));
                }
            }
            Action::Pass { copies, delay } => {
                {
                    let mut st = stats.borrow_mut();
                    st.forwarded += 1;
                    st.duplicated += u64::from(copies - 1);
                }
                for _ in 0..copies {
                    if delay.is_zero() {
                        let _ = sock.send_to(&bytes, to).await;
                    } else {
                        later.insert((to, bytes.clone()), delay);
                    }
                }
            }
        }
    }
}
