//! The tests' cluster node: a small in-test server owning slot ranges, with a store, slots
//! moved away (`MOVED`) or being migrated (`ASK` for keys it no longer has, `ASKING`
//! honoured for slots it imports), and the misbehaviours the tests need: never answering,
//! closing in the middle of a reply, answering some requests and then closing, answering
//! with a given line, speaking first. It stops and restarts on the same port
//! (`SO_REUSEADDR`), its connections closed.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::rc::Rc;

use overlap::codec::{FramedRead, LinesCodec};
use overlap::io::AsyncWriteExt;
use overlap::net::{TcpListener, TcpSocket, TcpStream};
use overlap::stream::StreamExt;
use overlap::task::{JoinHandle, JoinSet};

use super::proto::{slot_of, Cmd, Reply, SlotMap};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// Reads requests, answers none.
    Silent,
    /// Writes the first half of its reply, then closes.
    CutMidReply,
    /// Answers the first `answer` requests from when it was set, reads up to `after`, and
    /// closes the connection.
    AnswerThenDie {
        answer: usize,
        after: usize,
    },
    /// Answers every request with this line.
    Garbage(String),
    /// Sends `+OK` as soon as it accepts, then serves normally.
    SpeaksFirst,
}

#[derive(Debug)]
pub struct NodeState {
    pub store: RefCell<HashMap<String, String>>,
    pub owned: RefCell<Vec<RangeInclusive<u16>>>,
    pub moved: RefCell<HashMap<u16, SocketAddr>>,
    pub migrating: RefCell<HashMap<u16, SocketAddr>>,
    pub importing: RefCell<HashSet<u16>>,
    pub slots_reply: RefCell<SlotMap>,
    pub mode: RefCell<Mode>,
    pub accepted: Cell<u32>,
    /// Requests received since the mode was last set.
    pub seen_in_mode: Cell<usize>,
    pub open_conns: Cell<u32>,
    /// Every request line received, in order.
    pub received: RefCell<Vec<String>>,
}

impl NodeState {
    pub fn received_count(&self, prefix: &str) -> usize {
        self.received
            .borrow()
            .iter()
            .filter(|l| l.starts_with(prefix))
            .count()
    }

    fn handle(&self, line: &str, asking: &mut bool) -> Reply {
        let Some(cmd) = Cmd::parse(line) else {
            return Reply::Err(format!("unknown command {line:?}"));
        };
        let was_asking = std::mem::take(asking);
        let key = match &cmd {
            Cmd::Asking => {
                *asking = true;
                return Reply::Ok;
            }
            Cmd::Slots => return Reply::Slots(self.slots_reply.borrow().clone()),
            cmd => cmd.key().unwrap().to_string(),
        };
        let slot = slot_of(&key);
        if let Some(&to) = self.moved.borrow().get(&slot) {
            return Reply::Moved(slot, to);
        }
        if self.owned.borrow().iter().any(|r| r.contains(&slot)) {
            if let Some(&to) = self.migrating.borrow().get(&slot) {
                if !self.store.borrow().contains_key(&key) {
                    return Reply::Ask(slot, to);
                }
            }
        } else if !(was_asking && self.importing.borrow().contains(&slot)) {
            return Reply::Err(format!("slot {slot} not served here"));
        }
        let mut store = self.store.borrow_mut();
        match cmd {
            Cmd::Get(k) => Reply::Value(store.get(&k).cloned()),
            Cmd::Set(k, v) => {
                store.insert(k, v);
                Reply::Ok
            }
            Cmd::Incr(k) => {
                let n = store.get(&k).map_or(Ok(0), |v| v.parse::<i64>());
                match n {
                    Ok(n) => {
                        store.insert(k, (n + 1).to_string());
                        Reply::Int(n + 1)
                    }
                    Err(_) => Reply::Err("not an integer".into()),
                }
            }
            Cmd::Slots | Cmd::Asking => unreachable!(),
        }
    }
}

pub struct Node {
    pub addr: SocketAddr,
    pub state: Rc<NodeState>,
    task: Option<JoinHandle<()>>,
}

/// A listener on `addr`, with `SO_REUSEADDR` so that a restart can take the port back
/// while the old connections linger in `TIME_WAIT`.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    sock.set_reuseaddr(true)?;
    sock.bind(addr)?;
    sock.listen(128)
}

/// A listener on a free port below the kernel's ephemeral range: a port 0 listener's port,
/// once it is closed, may be handed to any socket that connects meanwhile (another test's,
/// or the client's own reconnect attempt), and then the restart could not bind it again.
fn listen_below_ephemeral(ip: std::net::IpAddr) -> TcpListener {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let low: u16 = range.split_whitespace().next().unwrap().parse().unwrap();
    assert!(low > 12_000, "an ephemeral range starting at {low}");
    // A start that differs between processes and between calls, then every port in turn.
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let span = u32::from(low) - 10_000;
    let call = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let start = (std::process::id().wrapping_mul(7919) + call.wrapping_mul(104_729)) % span;
    (0..span)
        .map(|i| 10_000 + ((start + i) % span) as u16)
        .find_map(|port| listen(SocketAddr::new(ip, port)).ok())
        .expect("a free port below the ephemeral range")
}

impl Node {
    pub async fn start(host: &str, owned: Vec<RangeInclusive<u16>>) -> Node {
        let listener = listen_below_ephemeral(host.parse().unwrap());
        let state = Rc::new(NodeState {
            store: RefCell::default(),
            owned: RefCell::new(owned),
            moved: RefCell::default(),
            migrating: RefCell::default(),
            importing: RefCell::default(),
            slots_reply: RefCell::default(),
            mode: RefCell::new(Mode::Normal),
            accepted: Cell::new(0),
            seen_in_mode: Cell::new(0),
            open_conns: Cell::new(0),
            received: RefCell::default(),
        });
        let addr = listener.local_addr().unwrap();
        let task = Some(overlap::spawn(accept_loop(listener, state.clone())));
        Node { addr, state, task }
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.state.mode.borrow_mut() = mode;
        self.state.seen_in_mode.set(0);
    }

    /// Closes the listener and every connection, and waits until they are closed.
    pub async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            assert!(task.await.unwrap_err().is_cancelled());
        }
        assert_eq!(self.state.open_conns.get(), 0);
    }

    /// Listens again on the same port, the store kept.
    pub async fn restart(&mut self) {
        assert!(self.task.is_none(), "stop first");
        let listener = listen_again(self.addr).await;
        self.task = Some(overlap::spawn(accept_loop(listener, self.state.clone())));
    }
}

/// `listen(addr)`, tried again for a while if the port is still in use. With
/// `SO_REUSEADDR` the old connections' `TIME_WAIT` is no obstacle, but the old listener
/// is, for as long as a child process spawned meanwhile by any thread (another test's)
/// holds a copy of its fd, between its fork and its exec. The waits are real time, in a
/// blocking job, so a paused clock does not move while they last.
async fn listen_again(addr: SocketAddr) -> TcpListener {
    let mut tries = 0;
    loop {
        match listen(addr) {
            Ok(l) => return l,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && tries < 1000 => {
                tries += 1;
                overlap::spawn_blocking(|| std::thread::sleep(std::time::Duration::from_millis(1)))
                    .await
                    .unwrap();
            }
            Err(e) => panic!("{addr} again: {e}"),
        }
    }
}

async fn accept_loop(listener: TcpListener, state: Rc<NodeState>) {
    // Dropped with this task (on `stop`): every connection task is aborted, its socket closed.
    let mut conns = JoinSet::new();
    loop {
        overlap::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted.unwrap();
                state.accepted.set(state.accepted.get() + 1);
                conns.spawn(serve_conn(stream, state.clone()));
            }
            Some(_) = conns.join_next() => {}
        }
    }
}

struct OpenConn(Rc<NodeState>);

impl Drop for OpenConn {
    fn drop(&mut self) {
        self.0.open_conns.set(self.0.open_conns.get() - 1);
    }
}

async fn serve_conn(stream: TcpStream, state: Rc<NodeState>) {
    state.open_conns.set(state.open_conns.get() + 1);
    let _open = OpenConn(state.clone());
    stream.set_nodelay(true).unwrap();
    let (rd, mut wr) = stream.into_split();
    let mut lines = FramedRead::new(rd, LinesCodec::new_with_max_length(4096));
    let mut asking = false;
    if *state.mode.borrow() == Mode::SpeaksFirst {
        let _ = wr.write_all(b"+OK\n").await;
    }
    while let Some(Ok(line)) = lines.next().await {
        state.received.borrow_mut().push(line.clone());
        let seen = state.seen_in_mode.get() + 1;
        state.seen_in_mode.set(seen);
        let mode = state.mode.borrow().clone();
        let reply = state.handle(&line, &mut asking).encode() + "\n";
        let out = match mode {
            Mode::Normal | Mode::SpeaksFirst => reply,
            Mode::Silent => continue,
            Mode::CutMidReply => {
                let _ = wr.write_all(&reply.as_bytes()[..reply.len() / 2]).await;
                return;
            }
            Mode::AnswerThenDie { answer, after } => {
                if seen <= answer {
                    let _ = wr.write_all(reply.as_bytes()).await;
                }
                if seen >= after {
                    return;
                }
                continue;
            }
            Mode::Garbage(g) => g + "\n",
        };
        if wr.write_all(out.as_bytes()).await.is_err() {
            return;
        }
    }
}
