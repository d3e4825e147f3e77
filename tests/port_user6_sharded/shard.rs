//! One shard: its part of the key space, its connections, and the inbox through which the
//! other shards (and their blocking jobs) reach it. Everything here lives on the shard's
//! own thread, in `Rc`s and `Cell`s; only the `Directory` (inboxes and `Handle`s) is shared.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::pending;
use std::io;
use std::panic::resume_unwind;
use std::rc::Rc;
use std::sync::Arc;

use overlap::future::FutureExt;
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream};
use overlap::sync::mpsc::cross_thread::{UnboundedReceiver, UnboundedSender};
use overlap::sync::oneshot::cross_thread as oneshot;
use overlap::sync::{watch, Notify};
use overlap::task::JoinSet;
use overlap::Handle;

/// The longest request line a client may send.
const MAX_LINE: usize = 1024;

/// An answer from the shard that owns a key: the key's new value, or why there is none.
pub type Reply = Result<i64, String>;

/// What one shard asks of another, through the other's inbox.
pub enum Forward {
    /// Add `delta` to `key` (which the receiver owns) and answer with the new value.
    Incr {
        key: String,
        delta: i64,
        reply: oneshot::Sender<Reply>,
    },
    /// Answer with `key`'s value.
    Get {
        key: String,
        reply: oneshot::Sender<Reply>,
    },
    /// Serve this connection from now on: it was moved here, with the bytes its last
    /// shard had read but not yet answered.
    Adopt {
        stream: std::net::TcpStream,
        leftover: Vec<u8>,
    },
}

/// What every shard (and the control thread) can reach of the others.
pub struct Directory {
    pub inboxes: Vec<UnboundedSender<Forward>>,
    pub handles: Vec<Handle>,
}

/// The shard that owns `key` (FNV-1a, so every thread agrees).
pub fn owner(key: &str, shards: usize) -> usize {
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    (hash % shards as u64) as usize
}

/// A shard's counters, as the control thread collects them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub shard: usize,
    /// Request lines answered on this shard's connections.
    pub requests: u64,
    /// Requests for keys another shard owns, sent there (by tasks or blocking jobs).
    pub forwarded_out: u64,
    /// Requests other shards sent here.
    pub forwarded_in: u64,
    /// Connections accepted here, and moved here.
    pub accepted: u64,
    pub moved_in: u64,
    pub moved_out: u64,
    /// Connections being served now.
    pub open: u64,
    /// Keys this shard holds.
    pub keys: u64,
    /// At the end of a drain: the runtime's tasks still alive (the drain's own), and
    /// fds still registered (the inbox's none: it is a mutex, not an fd).
    pub tasks: u64,
    pub registered_fds: u64,
}

thread_local! {
    /// The shard of this thread, for the work other threads send with `Handle::spawn_with`.
    static CURRENT: RefCell<Option<Rc<Shard>>> = const { RefCell::new(None) };
}

/// This thread's shard (a `Handle::spawn_with` closure runs on the shard's thread).
pub fn current() -> Rc<Shard> {
    CURRENT
        .with(|c| c.borrow().clone())
        .expect("not on a shard's thread")
}

pub struct Shard {
    pub id: usize,
    store: RefCell<HashMap<String, i64>>,
    dir: RefCell<Option<Arc<Directory>>>,
    stats: Cell<Stats>,
    /// The largest `INCR` a client may ask for (the control thread's setting).
    max_delta: Cell<i64>,
    /// Stop accepting: the start of a graceful shutdown.
    stop: Notify,
    /// Set at the stop: connections end once they have answered what they read.
    closing: watch::Sender<bool>,
    /// Set once stopped and every connection is gone.
    drained: watch::Sender<bool>,
}

impl Shard {
    /// Makes this thread's shard.
    pub fn install(id: usize) -> Rc<Shard> {
        let shard = Rc::new(Shard {
            id,
            store: RefCell::default(),
            dir: RefCell::new(None),
            stats: Cell::new(Stats {
                shard: id,
                ..Stats::default()
            }),
            max_delta: Cell::new(i64::MAX),
            stop: Notify::new(),
            closing: watch::Sender::new(false),
            drained: watch::Sender::new(false),
        });
        CURRENT.with(|c| *c.borrow_mut() = Some(shard.clone()));
        shard
    }

    /// Forgets this thread's shard.
    pub fn uninstall() {
        CURRENT.with(|c| c.borrow_mut().take());
    }

    pub fn set_directory(&self, dir: Arc<Directory>) {
        *self.dir.borrow_mut() = Some(dir);
    }

    pub fn set_max_delta(&self, max: i64) {
        self.max_delta.set(max);
    }

    pub fn stats(&self) -> Stats {
        Stats {
            keys: self.store.borrow().len() as u64,
            ..self.stats.get()
        }
    }

    fn count(&self, f: impl FnOnce(&mut Stats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }

    fn directory(&self) -> Result<Arc<Directory>, String> {
        self.dir
            .borrow()
            .clone()
            .ok_or_else(|| "ERR shutting down".to_string())
    }

    /// Stops accepting, asks every connection to end, and waits until they have.
    pub async fn drain(&self) -> Stats {
        self.stop.notify_one();
        let mut drained = self.drained.subscribe();
        drained
            .wait_for(|d| *d)
            .await
            .expect("the shard holds the sender");
        let metrics = overlap::metrics();
        Stats {
            tasks: metrics.tasks_alive,
            registered_fds: metrics.registered_fds,
            ..self.stats()
        }
    }

    fn apply_incr(&self, key: String, delta: i64) -> i64 {
        let mut store = self.store.borrow_mut();
        let value = store.entry(key).or_insert(0);
        *value += delta;
        *value
    }

    fn value(&self, key: &str) -> i64 {
        self.store.borrow().get(key).copied().unwrap_or(0)
    }

    /// Adds `delta` to `key`, here or at the shard that owns it.
    async fn incr(&self, key: &str, delta: i64) -> Reply {
        let dir = self.directory()?;
        let owner = owner(key, dir.inboxes.len());
        if owner == self.id {
            return Ok(self.apply_incr(key.to_string(), delta));
        }
        let (reply, answer) = oneshot::channel();
        self.count(|s| s.forwarded_out += 1);
        let ask = Forward::Incr {
            key: key.to_string(),
            delta,
            reply,
        };
        ask_owner(&dir, owner, ask)?;
        drop(dir);
        answer.await.unwrap_or_else(|_| Err(down(owner)))
    }

    async fn get(&self, key: &str) -> Reply {
        let dir = self.directory()?;
        let owner = owner(key, dir.inboxes.len());
        if owner == self.id {
            return Ok(self.value(key));
        }
        let (reply, answer) = oneshot::channel();
        self.count(|s| s.forwarded_out += 1);
        ask_owner(
            &dir,
            owner,
            Forward::Get {
                key: key.to_string(),
                reply,
            },
        )?;
        drop(dir);
        answer.await.unwrap_or_else(|_| Err(down(owner)))
    }
}

fn down(shard: usize) -> String {
    format!("ERR shard {shard} is down")
}

/// Sends `ask` to shard `owner`'s inbox; a shard that is gone has dropped its inbox.
fn ask_owner(dir: &Directory, owner: usize, ask: Forward) -> Result<(), String> {
    dir.inboxes[owner].send(ask).map_err(|_| down(owner))
}

/// The shard's main future: accepts until told to stop, answers its inbox until every
/// sender is gone (the whole cluster is shutting down), and resumes the panic of any of its
/// connections (a shard that panics goes down as a whole, as tokio's `block_on` would with
/// a panic in its main future).
pub async fn run(shard: Rc<Shard>, listener: TcpListener, mut inbox: UnboundedReceiver<Forward>) {
    let mut listener = Some(listener);
    let mut conns: JoinSet<()> = JoinSet::new();
    loop {
        let accept = async {
            match &listener {
                Some(l) => overlap::select_biased! {
                    _ = shard.stop.notified().fuse() => None,
                    res = l.accept().fuse() => Some(res),
                },
                None => pending().await,
            }
        };
        let event = overlap::select_biased! {
            msg = inbox.recv().fuse() => Event::Inbox(msg),
            done = conns.join_next() => Event::Joined(done),
            res = accept.fuse() => Event::Accepted(res),
        };
        match event {
            Event::Inbox(None) => break,
            Event::Inbox(Some(Forward::Adopt { stream, leftover })) => {
                // A connection moved here while stopping is closed: its client reconnects.
                if listener.is_some() {
                    if let Ok(stream) = TcpStream::from_std(stream) {
                        shard.count(|s| s.moved_in += 1);
                        conns.spawn(serve(shard.clone(), stream, leftover));
                    }
                }
            }
            Event::Inbox(Some(Forward::Incr { key, delta, reply })) => {
                shard.count(|s| s.forwarded_in += 1);
                let _ = reply.send(Ok(shard.apply_incr(key, delta)));
            }
            Event::Inbox(Some(Forward::Get { key, reply })) => {
                shard.count(|s| s.forwarded_in += 1);
                let _ = reply.send(Ok(shard.value(&key)));
            }
            Event::Joined(Some(Err(err))) if err.is_panic() => resume_unwind(err.into_panic()),
            Event::Joined(_) => {}
            Event::Accepted(Some(Ok((stream, _)))) => {
                shard.count(|s| s.accepted += 1);
                conns.spawn(serve(shard.clone(), stream, Vec::new()));
            }
            // Out of fds, say: the client is refused, and the shard backs off a little
            // (the backlog stays readable, so accepting again at once would spin).
            Event::Accepted(Some(Err(_))) => {
                overlap::time::sleep(std::time::Duration::from_millis(10)).await
            }
            Event::Accepted(None) => {
                listener = None;
                shard.closing.send_replace(true);
            }
        }
        if listener.is_none() && conns.is_empty() && !*shard.drained.borrow() {
            // Drained: this shard asks nothing of the others any more.
            shard.dir.borrow_mut().take();
            shard.drained.send_replace(true);
        }
    }
}

enum Event {
    Inbox(Option<Forward>),
    Joined(Option<Result<(), overlap::JoinError>>),
    Accepted(Option<io::Result<(TcpStream, std::net::SocketAddr)>>),
}

/// A connection's bytes, read ahead a line at a time; the stream and what was read but not
/// yet answered can be taken back out, to move the connection to another shard.
struct LineConn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl LineConn {
    /// The next request line, `None` at the end of the stream (a partial line is dropped).
    async fn line(&mut self) -> io::Result<Option<String>> {
        loop {
            if let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                let text = String::from_utf8_lossy(&line[..end]);
                return Ok(Some(text.trim_end_matches('\r').to_string()));
            }
            if self.buf.len() > MAX_LINE {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(None);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Serves one connection until its client quits, it is moved away, or the shard stops.
async fn serve(shard: Rc<Shard>, stream: TcpStream, leftover: Vec<u8>) {
    shard.count(|s| s.open += 1);
    let mut conn = LineConn {
        stream,
        buf: leftover,
    };
    let mut closing = shard.closing.subscribe();
    loop {
        // Lines already read are answered even while closing; then the connection ends.
        let has_line = conn.buf.contains(&b'\n');
        let line = if has_line {
            conn.line().await
        } else {
            overlap::select_biased! {
                _ = closing.wait_for(|c| *c).fuse() => break,
                line = conn.line().fuse() => line,
            }
        };
        let Ok(Some(line)) = line else { break };
        let answer = match answer(&shard, &line).await {
            Answer::Text(text) => text,
            Answer::Quit => {
                let _ = conn.stream.write_all(b"BYE\n").await;
                break;
            }
            Answer::Move(to) => match move_to(&shard, conn, to).await {
                Ok(()) => {
                    shard.count(|s| {
                        s.moved_out += 1;
                        s.open -= 1;
                    });
                    return;
                }
                Err(_) => break,
            },
        };
        shard.count(|s| s.requests += 1);
        if conn.stream.write_all(answer.as_bytes()).await.is_err() {
            break;
        }
    }
    shard.count(|s| s.open -= 1);
}

enum Answer {
    Text(String),
    Quit,
    Move(usize),
}

/// Answers one request line.
async fn answer(shard: &Shard, line: &str) -> Answer {
    let words: Vec<&str> = line.split_ascii_whitespace().collect();
    let text = |r: Reply| Answer::Text(r.map_or_else(|e| e + "\n", |v| format!("{v}\n")));
    match words.as_slice() {
        ["GET", key] => text(shard.get(key).await),
        ["INCR", key, delta] => match delta.parse::<i64>() {
            Ok(d) if d > shard.max_delta.get() => Answer::Text(format!(
                "ERR delta {d} over the limit {}\n",
                shard.max_delta.get()
            )),
            Ok(d) => text(shard.incr(key, d).await),
            Err(_) => Answer::Text("ERR bad delta\n".into()),
        },
        ["BULK", key, count] => match count.parse::<i64>() {
            Ok(count) if (0..=1_000_000).contains(&count) => text(bulk(shard, key, count).await),
            _ => Answer::Text("ERR bad count\n".into()),
        },
        ["WHO"] => Answer::Text(format!("{}\n", shard.id)),
        ["MOVE", to] => match to.parse::<usize>() {
            Ok(to)
                if shard
                    .dir
                    .borrow()
                    .as_ref()
                    .is_some_and(|d| to < d.inboxes.len()) =>
            {
                Answer::Move(to)
            }
            _ => Answer::Text("ERR no such shard\n".into()),
        },
        ["PANIC"] => panic!("shard {} told to panic", shard.id),
        ["QUIT"] => Answer::Quit,
        _ => Answer::Text("ERR unknown command\n".into()),
    }
}

/// `BULK key count`: a blocking job sums `1..=count` and hands the sum to `key`'s owner
/// itself, from the pool thread (`blocking_send`, then `blocking_recv` for the answer).
async fn bulk(shard: &Shard, key: &str, count: i64) -> Reply {
    let dir = shard.directory()?;
    let key = key.to_string();
    shard.count(|s| s.forwarded_out += 1);
    let job = overlap::spawn_blocking(move || {
        let sum: i64 = (1..=count).sum();
        let owner = owner(&key, dir.inboxes.len());
        let (reply, answer) = oneshot::channel();
        ask_owner(
            &dir,
            owner,
            Forward::Incr {
                key,
                delta: sum,
                reply,
            },
        )?;
        drop(dir);
        answer.blocking_recv().unwrap_or_else(|_| Err(down(owner)))
    });
    job.await.unwrap_or_else(|e| Err(format!("ERR {e}")))
}

/// Hands the connection to shard `to`: `MOVED` first (from here), then the stream and the
/// bytes read but not answered go through `to`'s inbox, which registers it there.
async fn move_to(shard: &Shard, mut conn: LineConn, to: usize) -> io::Result<()> {
    conn.stream
        .write_all(format!("MOVED {to}\n").as_bytes())
        .await?;
    let dir = shard.directory().map_err(io::Error::other)?;
    let LineConn { stream, buf } = conn;
    let stream = stream.into_std()?;
    let adopt = Forward::Adopt {
        stream,
        leftover: buf,
    };
    ask_owner(&dir, to, adopt).map_err(io::Error::other)
}
