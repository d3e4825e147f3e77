//! The broker's state: sessions by client id (their subscriptions, the QoS 1 messages in
//! flight and those queued while the client is away, the link to its connection when it
//! is online), the retained messages, and the routing of a PUBLISH to every matching
//! session. Nothing here awaits: a session's connection takes its packets through a
//! bounded channel with `try_send`, so a slow reader never holds the others up; when its
//! channel is full the broker disconnects it.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use overlap::sync::mpsc::{self, error::TrySendError};
use overlap::sync::CancellationToken;

use super::packet::{Packet, Publish};
use super::topic::matches;

#[derive(Clone, Debug)]
pub struct Config {
    pub addr: SocketAddr,
    /// The largest remaining length taken; a longer packet closes its connection.
    pub max_packet: usize,
    /// How long a new connection has to send its CONNECT.
    pub connect_timeout: Duration,
    /// Packets waiting for one connection's socket; one more disconnects it.
    pub outbound_queue: usize,
    /// QoS 1 messages a session holds unacknowledged or queued while offline; more are
    /// dropped (and counted).
    pub session_queue: usize,
    /// `SO_SNDBUF` of the accepted connections (set on the listener, which they inherit).
    pub send_buffer: Option<u32>,
    /// How long a closing connection's writer may take to send what is queued, and the
    /// shutdown to see every task end.
    pub drain: Duration,
    /// Where the retained messages and persistent sessions are kept across restarts.
    pub persist: Option<PathBuf>,
}

impl Config {
    pub fn new(addr: &str) -> Config {
        Config {
            addr: addr.parse().unwrap(),
            max_packet: 64 * 1024,
            connect_timeout: Duration::from_secs(10),
            outbound_queue: 64,
            session_queue: 100,
            send_buffer: None,
            drain: Duration::from_secs(5),
            persist: None,
        }
    }
}

#[derive(Default, Debug)]
pub struct Stats {
    pub connections: Cell<u64>,
    pub published: Cell<u64>,
    pub delivered: Cell<u64>,
    pub protocol_errors: Cell<u64>,
    pub last_error: RefCell<String>,
    pub connect_timeouts: Cell<u64>,
    pub keepalive_timeouts: Cell<u64>,
    pub wills: Cell<u64>,
    pub takeovers: Cell<u64>,
    pub slow_disconnects: Cell<u64>,
    pub queue_dropped: Cell<u64>,
}

pub fn bump(c: &Cell<u64>) {
    c.set(c.get() + 1);
}

/// Why the broker ended a connection from outside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kick {
    SlowReader,
    TakenOver,
}

/// An online session's connection.
pub struct Link {
    pub id: u64,
    pub tx: mpsc::Sender<Packet>,
    pub kick: CancellationToken,
    pub why: Rc<Cell<Option<Kick>>>,
}

impl Link {
    fn kick(&self, why: Kick) {
        if !self.kick.is_cancelled() {
            self.why.set(Some(why));
            self.kick.cancel();
        }
    }
}

#[derive(Default)]
pub struct Session {
    pub clean: bool,
    /// Filters with their granted QoS, in the order first subscribed.
    pub subs: Vec<(String, u8)>,
    pub link: Option<Link>,
    /// QoS 1 messages sent and not yet acknowledged, oldest first.
    pub inflight: VecDeque<Publish>,
    /// QoS 1 messages that came while the client was away, oldest first.
    pub queued: VecDeque<Publish>,
    next_pid: u16,
}

impl Session {
    fn pid(&mut self) -> u16 {
        loop {
            self.next_pid = self.next_pid.wrapping_add(1);
            let pid = self.next_pid;
            if pid != 0 && !self.inflight.iter().any(|p| p.pid == Some(pid)) {
                return pid;
            }
        }
    }

    fn online(&self) -> Option<&Link> {
        self.link.as_ref().filter(|l| !l.kick.is_cancelled())
    }

    /// Gives `p` to the connection; false (and the link kicked) if its queue is full.
    fn push(&self, p: Packet, stats: &Stats) -> bool {
        let Some(link) = self.online() else {
            return false;
        };
        match link.tx.try_send(p) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                bump(&stats.slow_disconnects);
                link.kick(Kick::SlowReader);
                false
            }
            Err(TrySendError::Closed(_)) => false,
        }
    }

    /// Delivers `msg` at `qos` (already the lower of the message's and the grant), its
    /// retain flag as given.
    fn deliver(&mut self, mut msg: Publish, qos: u8, max_held: usize, stats: &Stats) {
        msg.qos = qos;
        msg.dup = false;
        msg.pid = None;
        if qos == 0 {
            if self.push(Packet::Publish(msg), stats) {
                bump(&stats.delivered);
            }
            return;
        }
        if self.inflight.len() + self.queued.len() >= max_held {
            bump(&stats.queue_dropped);
            return;
        }
        if self.online().is_none() {
            self.queued.push_back(msg);
            return;
        }
        msg.pid = Some(self.pid());
        self.inflight.push_back(msg.clone());
        if self.push(Packet::Publish(msg), stats) {
            bump(&stats.delivered);
        }
    }
}

pub struct Shared {
    pub config: Config,
    pub stats: Stats,
    pub sessions: RefCell<HashMap<String, Session>>,
    pub retained: RefCell<BTreeMap<String, Publish>>,
    next_conn: Cell<u64>,
}

impl Shared {
    pub fn new(config: Config) -> Shared {
        Shared {
            config,
            stats: Stats::default(),
            sessions: RefCell::default(),
            retained: RefCell::default(),
            next_conn: Cell::new(0),
        }
    }

    pub fn next_conn(&self) -> u64 {
        self.next_conn.set(self.next_conn.get() + 1);
        self.next_conn.get()
    }

    /// Attaches a connection to `client_id`'s session, taking it over from a connection
    /// still attached; queues the CONNACK, then the unacknowledged messages again with
    /// DUP, then what was queued while away. Whether a session was present.
    pub fn attach(&self, client_id: &str, clean: bool, link: Link) -> bool {
        let mut sessions = self.sessions.borrow_mut();
        if let Some(old) = sessions.get(client_id).and_then(|s| s.link.as_ref()) {
            bump(&self.stats.takeovers);
            old.kick(Kick::TakenOver);
        }
        let keep = !clean && sessions.get(client_id).is_some_and(|s| !s.clean);
        if !keep {
            sessions.insert(client_id.to_string(), Session::default());
        }
        let s = sessions.get_mut(client_id).unwrap();
        s.clean = clean;
        s.link = Some(link);
        let ack = Packet::ConnAck {
            session_present: keep,
            code: 0,
        };
        s.push(ack, &self.stats);
        for p in s.inflight.clone() {
            let again = Publish { dup: true, ..p };
            s.push(Packet::Publish(again), &self.stats);
        }
        let max = self.config.session_queue;
        while let Some(msg) = s.queued.pop_front() {
            let qos = msg.qos;
            s.deliver(msg, qos, max, &self.stats);
        }
        keep
    }

    /// Detaches connection `conn` from `client_id`'s session (unless another took it
    /// over), dropping a clean session.
    pub fn detach(&self, client_id: &str, conn: u64) {
        let mut sessions = self.sessions.borrow_mut();
        let Some(s) = sessions.get_mut(client_id) else {
            return;
        };
        if s.link.as_ref().map(|l| l.id) != Some(conn) {
            return;
        }
        s.link = None;
        if s.clean {
            sessions.remove(client_id);
        }
    }

    pub fn link_of(&self, client_id: &str, conn: u64) -> Option<mpsc::Sender<Packet>> {
        let sessions = self.sessions.borrow();
        let link = sessions.get(client_id)?.link.as_ref()?;
        (link.id == conn).then(|| link.tx.clone())
    }

    /// A PUBLISH from a client (or a will): kept if retained, delivered to every session
    /// with a matching filter once, at the highest QoS granted among them.
    pub fn publish(&self, msg: Publish) {
        if msg.retain {
            let mut retained = self.retained.borrow_mut();
            if msg.payload.is_empty() {
                retained.remove(&msg.topic);
            } else {
                retained.insert(msg.topic.clone(), msg.clone());
            }
        }
        let live = Publish {
            retain: false,
            ..msg
        };
        let max = self.config.session_queue;
        for s in self.sessions.borrow_mut().values_mut() {
            let granted = s
                .subs
                .iter()
                .filter(|(f, _)| matches(f, &live.topic))
                .map(|&(_, q)| q)
                .max();
            if let Some(g) = granted {
                s.deliver(live.clone(), g.min(live.qos), max, &self.stats);
            }
        }
    }

    /// Subscribes `client_id` to `filters` (valid ones, with their grants), then delivers
    /// the retained messages they match, flagged as retained.
    pub fn subscribe(&self, client_id: &str, filters: &[(String, u8)]) {
        let mut sessions = self.sessions.borrow_mut();
        let s = sessions.get_mut(client_id).unwrap();
        for (f, q) in filters {
            match s.subs.iter_mut().find(|(g, _)| g == f) {
                Some(sub) => sub.1 = *q,
                None => s.subs.push((f.clone(), *q)),
            }
        }
        let max = self.config.session_queue;
        for msg in self.retained.borrow().values() {
            let granted = filters
                .iter()
                .filter(|(f, _)| matches(f, &msg.topic))
                .map(|&(_, q)| q)
                .max();
            if let Some(g) = granted {
                let m = Publish {
                    retain: true,
                    ..msg.clone()
                };
                s.deliver(m, g.min(msg.qos), max, &self.stats);
            }
        }
    }

    pub fn unsubscribe(&self, client_id: &str, filters: &[String]) {
        if let Some(s) = self.sessions.borrow_mut().get_mut(client_id) {
            s.subs.retain(|(f, _)| !filters.contains(f));
        }
    }

    /// A PUBACK: the message leaves the session's in-flight list.
    pub fn acked(&self, client_id: &str, pid: u16) {
        if let Some(s) = self.sessions.borrow_mut().get_mut(client_id) {
            s.inflight.retain(|p| p.pid != Some(pid));
        }
    }

    pub fn online(&self) -> usize {
        let sessions = self.sessions.borrow();
        sessions.values().filter(|s| s.link.is_some()).count()
    }
}
