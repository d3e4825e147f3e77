//! One node's membership view: the members' states and incarnations, SWIM's rules for
//! which update wins, the suspicion deadlines, and the queue of updates to piggyback, each
//! sent at most λ·⌈log2(n+1)⌉ times.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::proto::{State, Update};

/// λ of the retransmit limit.
pub const LAMBDA: u32 = 3;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub addr: SocketAddr,
    pub state: State,
    pub inc: u32,
    /// While suspect: the tick it is confirmed dead at.
    pub deadline: Option<u64>,
}

/// What happened at a node, at a tick: the tests' timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Learned of a member, or of one back from the dead (a higher incarnation).
    Alive(u32, u32),
    /// Its own probe failed.
    Suspected(u32),
    /// Heard another's suspicion.
    HeardSuspect(u32),
    /// Its own suspicion timed out.
    Confirmed(u32),
    HeardDead(u32),
    HeardLeft(u32),
    /// Refuted a suspicion or death of itself, now at this incarnation.
    Refuted(u32),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub pings_sent: u64,
    pub acks_received: u64,
    pub ping_reqs_sent: u64,
    pub indirect_acks_received: u64,
    /// Datagrams that did not decode.
    pub malformed: u64,
    /// Well-formed, but from outside the cluster or not from whom they claim.
    pub strangers: u64,
    /// Dropped by the partition flag, either way.
    pub partitioned: u64,
    pub send_errors: u64,
}

#[derive(Debug)]
pub struct View {
    pub me: u32,
    pub addr: SocketAddr,
    pub inc: u32,
    pub members: BTreeMap<u32, Member>,
    /// Updates to piggyback, with how many more times each goes out.
    pub queue: Vec<(Update, u32)>,
    pub events: Vec<(u64, Event)>,
    pub stats: Stats,
    /// Where each malformed datagram came from (`UdpFramed::last_sender`).
    pub malformed_from: Vec<SocketAddr>,
    pub suspicion_ticks: u64,
    pub now: u64,
}

impl View {
    pub fn new(me: u32, addr: SocketAddr, inc: u32, suspicion_ticks: u64) -> View {
        View {
            me,
            addr,
            inc,
            members: BTreeMap::new(),
            queue: Vec::new(),
            events: Vec::new(),
            stats: Stats::default(),
            malformed_from: Vec::new(),
            suspicion_ticks,
            now: 0,
        }
    }

    pub fn me_alive(&self) -> Update {
        Update {
            state: State::Alive,
            id: self.me,
            inc: self.inc,
            addr: self.addr,
        }
    }

    /// `(id, state, incarnation)` of every member and itself, by id: what must end
    /// identical at every live node.
    pub fn snapshot(&self) -> Vec<(u32, State, u32)> {
        let mut v: Vec<_> = self
            .members
            .iter()
            .map(|(&id, m)| (id, m.state, m.inc))
            .collect();
        v.push((self.me, State::Alive, self.inc));
        v.sort();
        v
    }

    /// The members a probe may go to.
    pub fn probeable(&self) -> Vec<u32> {
        let live = |m: &Member| matches!(m.state, State::Alive | State::Suspect);
        self.members
            .iter()
            .filter(|(_, m)| live(m))
            .map(|(&id, _)| id)
            .collect()
    }

    /// λ·⌈log2(n+1)⌉ for the n nodes known live, itself included.
    pub fn retransmit_limit(&self) -> u32 {
        let n = self.probeable().len() as u32 + 1;
        LAMBDA * (32 - n.leading_zeros())
    }

    /// Queues `u` for piggybacking, replacing what was queued about the same member.
    pub fn gossip(&mut self, u: Update) {
        self.queue.retain(|(q, _)| q.id != u.id);
        let limit = self.retransmit_limit();
        self.queue.push((u, limit));
    }

    /// Up to `max` updates for one message, those sent least first; each sent its limit's
    /// times leaves the queue.
    pub fn piggyback(&mut self, max: usize) -> Vec<Update> {
        self.queue.sort_by_key(|q| std::cmp::Reverse(q.1));
        let n = max.min(self.queue.len());
        let out = self.queue[..n].iter().map(|(u, _)| *u).collect();
        for q in &mut self.queue[..n] {
            q.1 -= 1;
        }
        self.queue.retain(|q| q.1 > 0);
        out
    }

    fn event(&mut self, e: Event) {
        self.events.push((self.now, e));
    }

    /// Applies `u` by SWIM's rules; `true` if it changed the view (and so is gossiped on).
    pub fn apply(&mut self, u: Update) -> bool {
        if u.id == self.me {
            // Said of itself: a suspicion or death at its incarnation or above is refuted.
            if matches!(u.state, State::Suspect | State::Dead) && u.inc >= self.inc {
                self.inc = u.inc + 1;
                self.event(Event::Refuted(self.inc));
                let me = self.me_alive();
                self.gossip(me);
                return true;
            }
            return false;
        }
        let Some(m) = self.members.get_mut(&u.id) else {
            if u.state != State::Alive {
                return false;
            }
            let m = Member {
                addr: u.addr,
                state: State::Alive,
                inc: u.inc,
                deadline: None,
            };
            self.members.insert(u.id, m);
            self.event(Event::Alive(u.id, u.inc));
            self.gossip(u);
            return true;
        };
        let accept = match u.state {
            State::Alive => u.inc > m.inc,
            State::Suspect => {
                (m.state == State::Alive && u.inc >= m.inc)
                    || (m.state == State::Suspect && u.inc > m.inc)
            }
            State::Dead | State::Left => {
                !matches!(m.state, State::Dead | State::Left) && u.inc >= m.inc
            }
        };
        if !accept {
            return false;
        }
        let was_suspect = m.state == State::Suspect;
        m.state = u.state;
        m.inc = u.inc;
        if u.state == State::Alive {
            m.addr = u.addr;
        }
        m.deadline = match u.state {
            State::Suspect if was_suspect => m.deadline,
            State::Suspect => Some(self.now + self.suspicion_ticks),
            _ => None,
        };
        let e = match u.state {
            State::Alive => Event::Alive(u.id, u.inc),
            State::Suspect => Event::HeardSuspect(u.id),
            State::Dead => Event::HeardDead(u.id),
            State::Left => Event::HeardLeft(u.id),
        };
        self.event(e);
        self.gossip(u);
        true
    }

    /// Its own probe of `id` failed: suspect it (if still alive).
    pub fn suspect(&mut self, id: u32) {
        let Some(m) = self.members.get_mut(&id) else {
            return;
        };
        if m.state != State::Alive {
            return;
        }
        m.state = State::Suspect;
        m.deadline = Some(self.now + self.suspicion_ticks);
        let u = Update {
            state: State::Suspect,
            id,
            inc: m.inc,
            addr: m.addr,
        };
        self.event(Event::Suspected(id));
        self.gossip(u);
    }

    /// Suspects whose deadline has come are confirmed dead.
    pub fn expire(&mut self) {
        let now = self.now;
        let due: Vec<u32> = self
            .members
            .iter()
            .filter(|(_, m)| m.state == State::Suspect && m.deadline.is_some_and(|d| d <= now))
            .map(|(&id, _)| id)
            .collect();
        for id in due {
            let m = self.members.get_mut(&id).unwrap();
            m.state = State::Dead;
            m.deadline = None;
            let u = Update {
                state: State::Dead,
                id,
                inc: m.inc,
                addr: m.addr,
            };
            self.event(Event::Confirmed(id));
            self.gossip(u);
        }
    }
}
