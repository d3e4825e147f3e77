//! The rendezvous server: one task on one UDP socket. Peers register under a room and its
//! token (the first registrant sets the token); each new member is introduced to every
//! member already there and they to it; members keep themselves alive or expire; a member
//! may have the server relay datagrams to the room's others, within the room's rate and
//! the datagram size limit. Everything it cannot take is dropped and counted.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use overlap::net::UdpSocket;
use overlap::sync::oneshot;
use overlap::time::{self, Instant, MissedTickBehavior};
use overlap::JoinHandle;

use crate::proto::{encode_addr, Bad, Kind, Packet, MAX_DATAGRAM};

#[derive(Clone, Debug)]
pub struct Config {
    /// A member not heard from for this long is dropped.
    pub expiry: Duration,
    /// How often the members are looked over.
    pub sweep: Duration,
    /// Relayed datagrams a room may send each second, on average...
    pub relay_per_sec: u32,
    /// ...and at once.
    pub relay_burst: u32,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            expiry: Duration::from_secs(10),
            sweep: Duration::from_secs(1),
            relay_per_sec: 10,
            relay_burst: 20,
        }
    }
}

/// What the server did and what it refused, by reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub registered: u64,
    pub refreshed: u64,
    pub intros_sent: u64,
    pub keepalives: u64,
    pub expired: u64,
    pub relayed: u64,
    pub rate_limited: u64,
    pub oversized: u64,
    pub malformed: u64,
    pub unknown_kind: u64,
    pub bad_token: u64,
    pub spoofed: u64,
}

struct Member {
    /// Where its datagrams come from (and where the server answers).
    from: SocketAddr,
    /// Where the others reach it directly.
    direct: SocketAddr,
    last_seen: Instant,
}

struct Room {
    token: u32,
    members: Vec<Member>,
    /// The relay's token bucket.
    allowance: f64,
    refilled: Instant,
}

#[derive(Default)]
struct State {
    rooms: HashMap<String, Room>,
    stats: Stats,
}

pub struct Server {
    pub addr: SocketAddr,
    state: Rc<RefCell<State>>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Server {
    pub fn start(socket: UdpSocket, cfg: Config) -> Server {
        let addr = socket.local_addr().unwrap();
        let state = Rc::new(RefCell::new(State::default()));
        let (stop, stopped) = oneshot::channel();
        let task = overlap::spawn(serve(socket, cfg, state.clone(), stopped));
        Server {
            addr,
            state,
            stop: Some(stop),
            task,
        }
    }

    pub fn stats(&self) -> Stats {
        self.state.borrow().stats.clone()
    }

    /// The source addresses of a room's members, in the order they came.
    pub fn members(&self, room: &str) -> Vec<SocketAddr> {
        let state = self.state.borrow();
        state
            .rooms
            .get(room)
            .map_or(vec![], |r| r.members.iter().map(|m| m.from).collect())
    }

    pub fn rooms(&self) -> usize {
        self.state.borrow().rooms.len()
    }

    /// Stops the task, which closes the socket, and gives the last stats.
    pub async fn shutdown(mut self) -> Stats {
        let _ = self.stop.take().unwrap().send(());
        (&mut self.task).await.unwrap();
        self.stats()
    }
}

async fn serve(
    socket: UdpSocket,
    cfg: Config,
    state: Rc<RefCell<State>>,
    mut stopped: oneshot::Receiver<()>,
) {
    // One byte more than the limit: a datagram that fills it was cut, so too large.
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    let mut sweep = time::interval(cfg.sweep);
    sweep.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        overlap::select! {
            _ = &mut stopped => return,
            _ = sweep.tick() => expire(&mut state.borrow_mut(), &cfg),
            r = socket.recv_from(&mut buf) => {
                let Ok((n, from)) = r else { continue };
                let out = handle(&mut state.borrow_mut(), &cfg, &buf[..n], from);
                for (to, datagram) in out {
                    // A peer gone is a datagram lost, as on any UDP path.
                    let _ = socket.send_to(&datagram, to).await;
                }
            }
        }
    }
}

fn expire(state: &mut State, cfg: &Config) {
    let now = time::now();
    let mut gone = 0;
    state.rooms.retain(|_, room| {
        let before = room.members.len();
        room.members.retain(|m| now - m.last_seen <= cfg.expiry);
        gone += (before - room.members.len()) as u64;
        !room.members.is_empty()
    });
    state.stats.expired += gone;
}

/// One datagram in; the datagrams to send in answer.
fn handle(
    state: &mut State,
    cfg: &Config,
    datagram: &[u8],
    from: SocketAddr,
) -> Vec<(SocketAddr, Vec<u8>)> {
    let stats = &mut state.stats;
    if datagram.len() > MAX_DATAGRAM {
        stats.oversized += 1;
        return vec![];
    }
    let packet = match Packet::decode(datagram) {
        Ok(p) => p,
        Err(Bad::Malformed) => {
            stats.malformed += 1;
            return vec![];
        }
        Err(Bad::UnknownKind) => {
            stats.unknown_kind += 1;
            return vec![];
        }
    };
    let now = time::now();
    match packet.kind {
        Kind::Register => {
            let port = u16::from_be_bytes([packet.body[0], packet.body[1]]);
            let direct = if port == 0 {
                from
            } else {
                SocketAddr::new(from.ip(), port)
            };
            let room = state
                .rooms
                .entry(packet.room.clone())
                .or_insert_with(|| Room {
                    token: packet.token,
                    members: vec![],
                    allowance: cfg.relay_burst as f64,
                    refilled: now,
                });
            if room.token != packet.token {
                stats.bad_token += 1;
                return vec![];
            }
            let mut out = vec![];
            if let Some(m) = room.members.iter_mut().find(|m| m.from == from) {
                // A retry whose answer was lost: no new introductions.
                m.last_seen = now;
                stats.refreshed += 1;
            } else {
                for other in &room.members {
                    let intro = |addr| {
                        Packet::new(Kind::Intro, room.token, &packet.room, encode_addr(addr))
                    };
                    out.push((other.from, intro(direct).encode()));
                    out.push((from, intro(other.direct).encode()));
                    stats.intros_sent += 2;
                }
                room.members.push(Member {
                    from,
                    direct,
                    last_seen: now,
                });
                stats.registered += 1;
            }
            let count = (room.members.len() as u16).to_be_bytes().to_vec();
            let ack = Packet::new(Kind::Registered, room.token, &packet.room, count);
            // The answer first, then the introductions.
            out.insert(0, (from, ack.encode()));
            out
        }
        Kind::Keepalive | Kind::Relay => {
            let Some(room) = state
                .rooms
                .get_mut(&packet.room)
                .filter(|r| r.token == packet.token)
            else {
                stats.spoofed += 1;
                return vec![];
            };
            let Some(m) = room.members.iter_mut().find(|m| m.from == from) else {
                stats.spoofed += 1;
                return vec![];
            };
            m.last_seen = now;
            if packet.kind == Kind::Keepalive {
                stats.keepalives += 1;
                return vec![];
            }
            let refill = (now - room.refilled).as_secs_f64() * cfg.relay_per_sec as f64;
            room.allowance = (room.allowance + refill).min(cfg.relay_burst as f64);
            room.refilled = now;
            if room.allowance < 1.0 {
                stats.rate_limited += 1;
                return vec![];
            }
            room.allowance -= 1.0;
            let fwd = Packet::new(Kind::Relayed, room.token, &packet.room, packet.body).encode();
            let out: Vec<_> = room
                .members
                .iter()
                .filter(|m| m.from != from)
                .map(|m| (m.from, fwd.clone()))
                .collect();
            stats.relayed += out.len() as u64;
            out
        }
        // What the server sends, coming back to it: not for it to take.
        Kind::Registered | Kind::Intro | Kind::Relayed => {
            stats.spoofed += 1;
            vec![]
        }
    }
}
