//! A session: one TCP connection, its reader, writer and keepalive tasks, and the state
//! of every logical stream they share with the `Stream` objects.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::io;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use overlap::future::FutureExt;
use overlap::io::{AsyncWrite, AsyncWriteExt, BufReader, IoSlice};
use overlap::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use overlap::net::TcpStream;
use overlap::stream::StreamExt;
use overlap::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use overlap::sync::Semaphore;
use overlap::task::AbortHandle;
use overlap::time::delay_queue::Key;
use overlap::time::{self, DelayQueue};

use super::frame::{self, Frame};
use super::stream::Stream;

/// A session's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Each stream's receive window: what the peer may send before we read it.
    pub window: u32,
    /// Streams open at once (either side's), past which `open` waits and a peer's SYN is
    /// refused with RST.
    pub max_streams: usize,
    /// Time between pings; `None` for no keepalive.
    pub ping_every: Option<Duration>,
    /// How long a ping may go unanswered before the session is torn down.
    pub ping_timeout: Duration,
    /// A stream with no frame either way for this long is reset; `None` for no limit.
    pub idle_timeout: Option<Duration>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            window: 256 * 1024,
            max_streams: 256,
            ping_every: Some(Duration::from_secs(10)),
            ping_timeout: Duration::from_secs(5),
            idle_timeout: None,
        }
    }
}

/// One logical stream's state, kept while its `Stream` lives.
#[derive(Debug, Default)]
pub struct StreamState {
    pub recv: VecDeque<u8>,
    /// What the peer may still send before our next window update.
    pub recv_credit: u32,
    /// Read by the application, not yet credited back to the peer.
    pub consumed: u32,
    /// What we may still send.
    pub send_credit: u32,
    pub local_fin: bool,
    pub remote_fin: bool,
    pub reset: bool,
    /// By whom, for the error.
    pub reset_why: &'static str,
    pub read_waker: Option<Waker>,
    pub write_waker: Option<Waker>,
    /// Its entry in the session's idle queue, moved on at each frame either way.
    pub idle_key: Option<Key>,
}

impl StreamState {
    fn wake(&mut self) {
        for w in [self.read_waker.take(), self.write_waker.take()]
            .into_iter()
            .flatten()
        {
            w.wake();
        }
    }
}

/// What the tasks and streams of a session share.
#[derive(Debug)]
pub struct Shared {
    pub config: Config,
    pub streams: RefCell<HashMap<u32, StreamState>>,
    /// The writer's queue; taken when the session ends, so the writer drains and stops.
    tx: RefCell<Option<UnboundedSender<Frame>>>,
    /// Why the session ended, once it did.
    dead: RefCell<Option<(io::ErrorKind, String)>>,
    next_id: Cell<u32>,
    pub go_away_sent: Cell<bool>,
    pub go_away_received: Cell<bool>,
    /// Set by `close` once every stream is done: the writer then shuts the connection's
    /// write side down, where an abort (a drop, an error) just drops it.
    graceful: Cell<bool>,
    accept_queue: RefCell<VecDeque<(u32, overlap::sync::OwnedSemaphorePermit)>>,
    accept_waker: RefCell<Option<Waker>>,
    /// Woken as streams go and as the session ends (`close` waits on it).
    idle_waker: RefCell<Option<Waker>>,
    pub slots: Rc<Semaphore>,
    pings: RefCell<DelayQueue<u32>>,
    /// The streams by the time they go idle (see `Config::idle_timeout`).
    idle: RefCell<DelayQueue<u32>>,
    ping_keys: RefCell<HashMap<u32, Key>>,
    tasks: RefCell<Vec<AbortHandle>>,
    /// Times a writer found the peer's window used up.
    pub window_waits: Cell<u64>,
}

impl Shared {
    /// Queues a frame for the writer; false once the session is over.
    pub fn send(&self, f: Frame) -> bool {
        match &*self.tx.borrow() {
            Some(tx) => tx.send(f).is_ok(),
            None => false,
        }
    }

    /// The error every stream operation gets once the session is over.
    pub fn dead_error(&self) -> Option<io::Error> {
        self.dead
            .borrow()
            .as_ref()
            .map(|(k, why)| io::Error::new(*k, why.clone()))
    }

    /// Ends the session: no more frames queue, every waiter wakes to the error, and the
    /// reader and keepalive stop (the writer sends what is queued, then closes).
    pub fn end(&self, kind: io::ErrorKind, why: String) {
        if self.dead.borrow().is_some() {
            return;
        }
        *self.dead.borrow_mut() = Some((kind, why));
        self.tx.borrow_mut().take();
        let mut streams = std::mem::take(&mut *self.streams.borrow_mut());
        for s in streams.values_mut() {
            s.wake();
        }
        *self.streams.borrow_mut() = streams;
        self.accept_queue.borrow_mut().clear();
        // An `open` waiting for a slot fails now.
        self.slots.close();
        self.pings.borrow_mut().clear();
        self.idle.borrow_mut().clear();
        for w in [
            self.accept_waker.borrow_mut().take(),
            self.idle_waker.borrow_mut().take(),
        ]
        .into_iter()
        .flatten()
        {
            w.wake();
        }
        let mut tasks = std::mem::take(&mut *self.tasks.borrow_mut());
        if self.graceful.get() {
            tasks.pop(); // the writer, last: it drains the queue and closes
        }
        for t in tasks {
            t.abort();
        }
    }

    /// A stream's `Stream` is gone: its state goes, and a `close` waiting for the last
    /// stream wakes.
    pub fn forget(&self, id: u32) {
        let gone = self.streams.borrow_mut().remove(&id);
        if let Some(key) = gone.and_then(|s| s.idle_key) {
            self.idle.borrow_mut().try_remove(&key);
        }
        if let Some(w) = self.idle_waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// A new stream's state; its idle time starts now.
    fn new_stream(&self, id: u32) -> StreamState {
        let idle = self.config.idle_timeout;
        StreamState {
            recv_credit: self.config.window,
            send_credit: self.config.window,
            idle_key: idle.map(|t| self.idle.borrow_mut().insert(id, t)),
            ..StreamState::default()
        }
    }

    /// The stream saw a frame: its idle time starts again.
    pub fn touch(&self, s: &StreamState) {
        if let (Some(key), Some(t)) = (&s.idle_key, self.config.idle_timeout) {
            self.idle.borrow_mut().reset(key, t);
        }
    }
}

/// One end of a multiplexed connection. Dropping it ends the session (streams still held
/// fail from then on).
#[derive(Debug)]
pub struct Session {
    shared: Rc<Shared>,
}

impl Session {
    /// Starts the tasks over `conn`; `client` picks odd stream ids, the server even ones.
    pub fn new(conn: TcpStream, client: bool, config: Config) -> Session {
        conn.set_nodelay(true).unwrap();
        let (rd, wr) = conn.into_split();
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Rc::new(Shared {
            slots: Rc::new(Semaphore::new(config.max_streams)),
            config,
            streams: RefCell::default(),
            tx: RefCell::new(Some(tx)),
            dead: RefCell::default(),
            next_id: Cell::new(if client { 1 } else { 2 }),
            go_away_sent: Cell::default(),
            go_away_received: Cell::default(),
            graceful: Cell::default(),
            accept_queue: RefCell::default(),
            accept_waker: RefCell::default(),
            idle_waker: RefCell::default(),
            pings: RefCell::new(DelayQueue::new()),
            idle: RefCell::new(DelayQueue::new()),
            ping_keys: RefCell::default(),
            tasks: RefCell::default(),
            window_waits: Cell::new(0),
        });
        let reader = overlap::spawn(read_loop(rd, shared.clone()));
        let mut tasks = vec![reader.abort_handle()];
        if let Some(every) = shared.config.ping_every {
            tasks.push(overlap::spawn(keepalive(shared.clone(), every)).abort_handle());
        }
        if shared.config.idle_timeout.is_some() {
            tasks.push(overlap::spawn(reap_idle(shared.clone())).abort_handle());
        }
        // The writer ends when the queue does, after sending what is in it; only an abort
        // (not `close`) stops it sooner, as a peer that reads nothing would hold it for ever.
        tasks.push(overlap::spawn(write_loop(wr, rx, shared.clone())).abort_handle());
        *shared.tasks.borrow_mut() = tasks;
        Session { shared }
    }

    /// Opens a stream, waiting for a slot while `max_streams` are open.
    pub async fn open(&self) -> io::Result<Stream> {
        let permit = self
            .shared
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::NotConnected, "the session is closed"))?;
        if let Some(e) = self.shared.dead_error() {
            return Err(e);
        }
        if self.shared.go_away_received.get() || self.shared.go_away_sent.get() {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "the session is going away: no new streams",
            ));
        }
        let id = self.shared.next_id.get();
        self.shared.next_id.set(id + 2);
        self.shared
            .streams
            .borrow_mut()
            .insert(id, self.shared.new_stream(id));
        // The SYN goes with the stream's first frame; an empty data frame opens it now.
        self.shared.send(Frame::data(id, frame::SYN, Vec::new()));
        Ok(Stream::new(self.shared.clone(), id, permit))
    }

    /// The next stream the peer opened; `None` once the session is over.
    pub async fn accept(&self) -> Option<Stream> {
        let (id, permit) = poll_fn(|cx| {
            if let Some(next) = self.shared.accept_queue.borrow_mut().pop_front() {
                return Poll::Ready(Some(next));
            }
            if self.shared.dead.borrow().is_some() {
                return Poll::Ready(None);
            }
            *self.shared.accept_waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await?;
        Some(Stream::new(self.shared.clone(), id, permit))
    }

    /// Graceful shutdown: tells the peer to open no more streams, waits until every open
    /// stream is done (both sides finished, or reset), then ends the session.
    pub async fn close(&self) {
        if !self.shared.go_away_sent.replace(true) {
            self.shared.send(Frame::control(frame::GO_AWAY, 0, 0, 0));
        }
        poll_fn(|cx| {
            if self.shared.streams.borrow().is_empty() || self.shared.dead.borrow().is_some() {
                return Poll::Ready(());
            }
            *self.shared.idle_waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
        self.shared.graceful.set(true);
        self.shared
            .end(io::ErrorKind::NotConnected, "the session was closed".into());
    }

    /// Why the session ended, if it did.
    pub fn ended(&self) -> Option<io::Error> {
        self.shared.dead_error()
    }

    /// Waits for the session to end, and tells why.
    pub async fn wait_ended(&self) -> io::Error {
        poll_fn(|cx| match self.shared.dead_error() {
            Some(e) => Poll::Ready(e),
            None => {
                *self.shared.idle_waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }

    /// The shared state, for the tests' counters.
    pub fn shared(&self) -> &Shared {
        &self.shared
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.shared.end(
            io::ErrorKind::NotConnected,
            "the session was dropped".into(),
        );
    }
}

async fn read_loop(rd: OwnedReadHalf, shared: Rc<Shared>) {
    let mut rd = BufReader::with_capacity(64 * 1024, rd);
    let (kind, why) = loop {
        match frame::Frame::read(&mut rd).await {
            Ok(Some(f)) => {
                if let Err(why) = dispatch(&shared, f) {
                    break (io::ErrorKind::InvalidData, why);
                }
            }
            Ok(None) => {
                break (
                    io::ErrorKind::UnexpectedEof,
                    "the peer closed the connection".into(),
                )
            }
            Err(e) => break (e.kind(), format!("the connection failed: {e}")),
        }
    };
    shared.end(kind, why);
}

/// Applies one frame; `Err` for a protocol violation, which ends the session.
fn dispatch(shared: &Shared, f: Frame) -> Result<(), String> {
    match f.kind {
        frame::PING if f.flags & frame::ACK != 0 => {
            if let Some(key) = shared.ping_keys.borrow_mut().remove(&f.value) {
                shared.pings.borrow_mut().try_remove(&key);
            }
        }
        frame::PING => {
            shared.send(Frame::control(frame::PING, frame::ACK, 0, f.value));
        }
        frame::GO_AWAY => shared.go_away_received.set(true),
        _ => {
            if f.flags & frame::SYN != 0 {
                accept_syn(shared, f.id)?;
            }
            let mut streams = shared.streams.borrow_mut();
            // Frames for a stream already dropped here (and reset) are ignored.
            let Some(s) = streams.get_mut(&f.id) else {
                return Ok(());
            };
            if f.kind == frame::DATA && !f.data.is_empty() {
                let n = f.data.len() as u32;
                if n > s.recv_credit || s.remote_fin {
                    return Err(format!("stream {} sent past its window or FIN", f.id));
                }
                s.recv_credit -= n;
                s.recv.extend(&f.data);
            }
            if f.kind == frame::WINDOW_UPDATE {
                s.send_credit += f.value;
            }
            if f.flags & frame::FIN != 0 {
                s.remote_fin = true;
            }
            if f.flags & frame::RST != 0 {
                s.reset = true;
                s.reset_why = "by the peer";
            }
            shared.touch(s);
            s.wake();
        }
    }
    Ok(())
}

fn accept_syn(shared: &Shared, id: u32) -> Result<(), String> {
    if shared.streams.borrow().contains_key(&id) || id % 2 == shared.next_id.get() % 2 {
        return Err(format!("stream {id} opened twice, or with our parity"));
    }
    let permit = if shared.go_away_sent.get() {
        None
    } else {
        shared.slots.clone().try_acquire_owned().ok()
    };
    let Some(permit) = permit else {
        shared.send(Frame::control(frame::WINDOW_UPDATE, frame::RST, id, 0));
        return Ok(());
    };
    let state = shared.new_stream(id);
    shared.streams.borrow_mut().insert(id, state);
    shared.accept_queue.borrow_mut().push_back((id, permit));
    if let Some(w) = shared.accept_waker.borrow_mut().take() {
        w.wake();
    }
    Ok(())
}

async fn write_loop(mut wr: OwnedWriteHalf, mut rx: UnboundedReceiver<Frame>, shared: Rc<Shared>) {
    let mut batch = Vec::with_capacity(64);
    while rx.recv_many(&mut batch, 64).await > 0 {
        if let Err(e) = write_batch(&mut wr, &batch).await {
            shared.end(e.kind(), format!("the connection failed: {e}"));
            return;
        }
        batch.clear();
    }
    if shared.graceful.get() {
        let _ = wr.close().await;
    }
    // Else dropped: on a zero-linger connection, with the reader gone too, a reset.
}

/// Writes the frames with vectored writes: headers and payloads in one `writev` as far as
/// the socket takes them.
async fn write_batch(wr: &mut OwnedWriteHalf, batch: &[Frame]) -> io::Result<()> {
    let headers: Vec<[u8; frame::HEADER]> = batch.iter().map(Frame::header).collect();
    let mut slices = Vec::with_capacity(batch.len() * 2);
    for (h, f) in headers.iter().zip(batch) {
        slices.push(IoSlice::new(h));
        if !f.data.is_empty() {
            slices.push(IoSlice::new(&f.data));
        }
    }
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        let n = poll_fn(|cx| std::pin::Pin::new(&mut *wr).poll_write_vectored(cx, rest)).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut rest, n);
    }
    wr.flush().await
}

/// Pings every `every`; a ping unanswered for the timeout ends the session.
async fn keepalive(shared: Rc<Shared>, every: Duration) {
    let mut tick = time::interval(every);
    let mut n = 0u32;
    loop {
        // An empty queue ends its stream (`None`): then only the tick can come.
        let expired = poll_fn(|cx| match shared.pings.borrow_mut().poll_expired(cx) {
            Poll::Ready(None) => Poll::Pending,
            other => other,
        });
        overlap::select! {
            _ = tick.next().fuse() => {
                n = n.wrapping_add(1);
                let key = shared.pings.borrow_mut().insert(n, shared.config.ping_timeout);
                shared.ping_keys.borrow_mut().insert(n, key);
                shared.send(Frame::control(frame::PING, 0, 0, n));
            }
            late = expired.fuse() => {
                let late = late.expect("None was mapped to Pending");
                let why = format!(
                    "ping {} unanswered for {:?}",
                    late.get_ref(),
                    shared.config.ping_timeout
                );
                shared.end(io::ErrorKind::TimedOut, why);
                return;
            }
        }
    }
}

/// Resets each stream that saw no frame for the idle timeout. Streams come and go in other
/// tasks (`open`, the reader's `accept_syn`, a `Stream`'s drop), so an empty queue here
/// waits for their insert's wake.
async fn reap_idle(shared: Rc<Shared>) {
    loop {
        let expired = poll_fn(|cx| match shared.idle.borrow_mut().poll_expired(cx) {
            Poll::Ready(None) => Poll::Pending,
            other => other,
        })
        .await;
        let id = expired.expect("None was mapped to Pending").into_inner();
        if let Some(s) = shared.streams.borrow_mut().get_mut(&id) {
            s.idle_key = None;
            s.reset = true;
            s.reset_why = "after its idle timeout";
            s.wake();
        }
        shared.send(Frame::control(frame::WINDOW_UPDATE, frame::RST, id, 0));
    }
}
