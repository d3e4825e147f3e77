//! The server: its settings and counters, the accept loops (Unix socket and TCP), and a
//! session: a reader that takes a permit per request (at most `max_in_flight` at once,
//! so a client that sends faster than it reads makes the server stop reading), frames the
//! packets and spawns a task for each; a writer that sends the replies in the order they
//! are done, not the order asked. A session's end aborts its requests and closes every
//! handle it had open.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use overlap::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use overlap::net::{TcpListener, UnixListener};
use overlap::sync::{mpsc, Semaphore};
use overlap::task::JoinSet;

use super::jail::Jail;
use super::ops::{self, Handle};
use super::proto::{encode_reply, Status, BAD_MESSAGE};

#[derive(Debug, Clone, Copy)]
pub struct Config {
    pub max_handles: usize,
    /// The largest packet length accepted (what follows the length field).
    pub max_packet: u32,
    pub max_in_flight: usize,
    /// Names per READDIR reply at most.
    pub readdir_batch: usize,
    /// A session with no request in flight and none arriving for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_handles: 32,
            max_packet: 256 * 1024 + 64,
            max_in_flight: 64,
            readdir_batch: 64,
            idle_timeout: Duration::from_secs(300),
        }
    }
}

/// Counters across sessions, for the tests.
#[derive(Default)]
pub struct Stats {
    pub sessions: Cell<usize>,
    pub open_handles: Cell<usize>,
    pub in_flight: Cell<usize>,
    pub peak_in_flight: Cell<usize>,
    /// Request packets read, in every session.
    pub requests: Cell<u64>,
    /// How each finished session ended, in order.
    pub ends: RefCell<Vec<End>>,
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The client closed between packets.
    Eof,
    /// The client closed in the middle of a packet.
    Truncated,
    /// A length over the limit (or too short to hold a type and id): BAD_MESSAGE sent.
    BadLength(u32),
    /// Nothing asked for `idle_timeout`.
    Idle,
    Io(String),
}

/// What every session shares.
pub struct Shared {
    pub jail: Jail,
    pub cfg: Config,
    pub stats: Stats,
}

/// One session's open handles.
#[derive(Default)]
pub struct Session {
    pub handles: RefCell<HashMap<u32, Handle>>,
    /// Handles open plus opens in progress, for the limit.
    pub reserved: Cell<usize>,
    pub next_handle: Cell<u32>,
}

pub struct Server {
    pub shared: Rc<Shared>,
    sessions: Rc<RefCell<JoinSet<()>>>,
    listeners: JoinSet<()>,
}

impl Server {
    pub async fn new(root: &Path, cfg: Config) -> io::Result<Server> {
        let shared = Rc::new(Shared {
            jail: Jail::new(root).await?,
            cfg,
            stats: Stats::default(),
        });
        Ok(Server {
            shared,
            sessions: Rc::default(),
            listeners: JoinSet::new(),
        })
    }

    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    pub fn serve_unix(&mut self, listener: UnixListener) {
        let (shared, sessions) = (self.shared.clone(), self.sessions.clone());
        self.listeners.spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                sessions.borrow_mut().spawn(session(s, shared.clone()));
            }
        });
    }

    pub fn serve_tcp(&mut self, listener: TcpListener) {
        let (shared, sessions) = (self.shared.clone(), self.sessions.clone());
        self.listeners.spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                sessions.borrow_mut().spawn(session(s, shared.clone()));
            }
        });
    }

    /// Stops accepting and ends every session (their handles closed).
    pub async fn shutdown(mut self) {
        self.listeners.shutdown().await;
        let mut sessions = std::mem::take(&mut *self.sessions.borrow_mut());
        sessions.shutdown().await;
    }
}

/// Counts a request in flight until dropped (a request task aborted included).
struct InFlight(Rc<Shared>);

impl InFlight {
    fn new(shared: &Rc<Shared>) -> InFlight {
        let s = &shared.stats;
        s.in_flight.set(s.in_flight.get() + 1);
        s.peak_in_flight
            .set(s.peak_in_flight.get().max(s.in_flight.get()));
        InFlight(shared.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let s = &self.0.stats;
        s.in_flight.set(s.in_flight.get() - 1);
    }
}

/// Closes the session's handles when it ends, however it ends (aborted too).
struct Closer(Rc<Session>, Rc<Shared>);

impl Drop for Closer {
    fn drop(&mut self) {
        let n = self.0.handles.borrow_mut().drain().count();
        let s = &self.1.stats;
        s.open_handles.set(s.open_handles.get() - n);
        s.sessions.set(s.sessions.get() - 1);
    }
}

pub async fn session<S>(stream: S, shared: Rc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let stats = &shared.stats;
    stats.sessions.set(stats.sessions.get() + 1);
    let sess = Rc::new(Session::default());
    let _closer = Closer(sess.clone(), shared.clone());
    let (rd, wr) = overlap::io::split(stream);
    let mut rd = BufReader::new(rd);
    let (tx, rx) = mpsc::channel::<Vec<u8>>(shared.cfg.max_in_flight);
    let writer = overlap::spawn(write_replies(wr, rx));
    let permits = Rc::new(Semaphore::new(shared.cfg.max_in_flight));
    let mut requests = JoinSet::new();
    let last_activity = Rc::new(Cell::new(overlap::time::Instant::now()));
    let end = 'session: loop {
        let permit = permits.clone().acquire_owned().await.unwrap();
        while requests.try_join_next().is_some() {}
        // Wait for the next packet (`fill_buf` keeps what it reads, so the wait can be
        // cut off), closing the session once nothing was asked nor answered for the
        // idle timeout.
        loop {
            let deadline = last_activity.get() + shared.cfg.idle_timeout;
            if overlap::time::timeout_at(deadline, rd.fill_buf())
                .await
                .is_ok()
            {
                break;
            }
            let busy = permits.available_permits() + 1 < shared.cfg.max_in_flight;
            if busy {
                // A request still running counts as activity.
                last_activity.set(overlap::time::Instant::now());
            } else if last_activity.get() + shared.cfg.idle_timeout <= overlap::time::Instant::now()
            {
                break 'session End::Idle;
            }
        }
        let mut head = [0u8; 4];
        let read = rd.read_exact(&mut head).await;
        match read {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break End::Eof,
            Err(e) => break End::Io(e.to_string()),
        }
        let len = u32::from_be_bytes(head);
        if len > shared.cfg.max_packet || len < 5 {
            let max = shared.cfg.max_packet;
            let msg = format!("packet length {len} outside 5..={max}; closing");
            let _ = tx
                .send(encode_reply(0, &Err(Status::new(BAD_MESSAGE, msg))))
                .await;
            break End::BadLength(len);
        }
        let mut body = vec![0; len as usize];
        match rd.read_exact(&mut body).await {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break End::Truncated,
            Err(e) => break End::Io(e.to_string()),
        }
        stats.requests.set(stats.requests.get() + 1);
        last_activity.set(overlap::time::Instant::now());
        let in_flight = InFlight::new(&shared);
        let (tx, sess, shared) = (tx.clone(), sess.clone(), shared.clone());
        let last_activity = last_activity.clone();
        requests.spawn(async move {
            let id = u32::from_be_bytes(body[1..5].try_into().unwrap());
            let reply = ops::handle(body[0], &body[5..], &sess, &shared).await;
            // A client gone: nobody to tell.
            let _ = tx.send(encode_reply(id, &reply)).await;
            last_activity.set(overlap::time::Instant::now());
            drop((in_flight, permit));
        });
    };
    // Whatever was asked and not answered is dropped with the session.
    requests.shutdown().await;
    drop(tx);
    let _ = writer.await;
    stats.ends.borrow_mut().push(end);
}

async fn write_replies<W: AsyncWrite + Unpin>(mut wr: W, mut rx: mpsc::Receiver<Vec<u8>>) {
    while let Some(reply) = rx.recv().await {
        if wr.write_all(&reply).await.is_err() {
            return;
        }
    }
    let _ = wr.close().await;
}
