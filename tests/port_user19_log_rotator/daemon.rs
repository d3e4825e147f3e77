//! The daemon: its settings, the shared stats, and the tasks. A Unix stream listener
//! (a task per client, lines framed by `LogLineCodec`), a UDP socket (one line per
//! datagram), `SIGHUP` and an optional interval all feed one bounded channel that a single
//! writer task drains into `current` (so a rotation asked for comes after every line queued
//! before it, and a full queue holds the clients back); the compressor task runs beside it.
//!
//! Shutdown: the listener stops (the clients still in its backlog are accepted), the
//! clients get `grace` to finish their lines (then they are cut off), the UDP socket is
//! drained of what it holds, the writer writes the
//! queue out, flushes and syncs, and the compressor gets `grace` for its last pass before
//! it is cancelled (its child killed and reaped; `kill_on_drop` covers a daemon dropped
//! without a shutdown).

use std::cell::{Cell, RefCell};
use std::ffi::OsString;
use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use overlap::codec::FramedRead;
use overlap::net::{UdpSocket, UnixListener, UnixStream};
use overlap::signal::{signal, SignalKind};
use overlap::stream::StreamExt;
use overlap::sync::{mpsc, oneshot, CancellationToken, Notify};
use overlap::task::JoinSet;
use overlap::time::{interval_at, timeout, Instant};
use overlap::JoinHandle;

use super::current::CurrentFile;
use super::line_codec::LogLineCodec;

/// The daemon's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where `current` and the rotated files live; the socket `log.sock` too.
    pub dir: PathBuf,
    /// `current` is rotated before a line would take it past this many bytes.
    pub max_size: u64,
    /// Lines (and datagrams) are cut at this many bytes.
    pub max_line: usize,
    /// How many rotated files are kept.
    pub keep: usize,
    /// Rotation on a timer (skipped while `current` is empty).
    pub every: Option<Duration>,
    /// Whether `SIGHUP` rotates.
    pub hup: bool,
    /// The compressor's argv: it reads stdin, writes stdout.
    pub compressor: Vec<OsString>,
    /// Lines queued for the writer at most.
    pub queue: usize,
    /// How long shutdown waits for clients and for the compressor.
    pub grace: Duration,
}

impl Config {
    /// The defaults for `dir`: 64 KiB files, 4 KiB lines, 10 kept, `gzip -c`.
    pub fn new(dir: impl Into<PathBuf>) -> Config {
        Config {
            dir: dir.into(),
            max_size: 64 * 1024,
            max_line: 4096,
            keep: 10,
            every: None,
            hup: false,
            compressor: vec!["gzip".into(), "-c".into()],
            queue: 256,
            grace: Duration::from_secs(5),
        }
    }
}

/// Why `current` was rotated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// It would have passed `max_size`.
    Size,
    /// `SIGHUP`.
    Signal,
    /// The interval.
    Timer,
    /// [`Daemon::rotate`].
    Asked,
}

/// One rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The rotated file's sequence number.
    pub seq: u64,
    /// Why.
    pub reason: Reason,
    /// When, on overlap's clock, since the daemon started.
    pub at: Duration,
}

/// What the daemon did.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Lines flushed to `current`.
    pub lines_written: u64,
    /// Lines dropped because their write failed.
    pub lines_dropped: u64,
    /// Lines cut at `max_line`.
    pub lines_cut: u64,
    /// Empty datagrams ignored.
    pub empty_datagrams: u64,
    /// Unix clients accepted.
    pub clients: u64,
    /// Every rotation, in order.
    pub rotations: Vec<Rotation>,
    /// Sequence numbers compressed, in order.
    pub compressed: Vec<u64>,
    /// Sequence numbers removed by retention.
    pub deleted: Vec<u64>,
    /// Failed compressions, each with its reason.
    pub compress_failures: Vec<String>,
    /// Failed writes, each with its kind and message.
    pub write_errors: Vec<(ErrorKind, String)>,
    /// The most compressors that ran at once.
    pub max_compressors: i32,
}

/// What the tasks share.
pub struct Shared {
    /// The stats.
    pub stats: RefCell<Stats>,
    /// Wakes the compressor.
    pub compress: Notify,
    /// Set at shutdown: the compressor ends after its next pass.
    pub stopping: Cell<bool>,
    /// The compressor's argv (a reload may change it).
    pub compressor: RefCell<Vec<OsString>>,
    /// Cancelled when shutdown stops waiting for the compressor.
    pub cancel: CancellationToken,
    running: Cell<i32>,
}

impl Shared {
    /// Records (and prints) a failed write.
    pub fn report_write_error(&self, kind: ErrorKind, msg: String) {
        eprintln!("log_rotator: {msg}");
        self.stats.borrow_mut().write_errors.push((kind, msg));
    }

    /// Records (and prints) a failed compression.
    pub fn report_compress_failure(&self, msg: String) {
        eprintln!("log_rotator: {msg}");
        self.stats.borrow_mut().compress_failures.push(msg);
    }

    /// Counts a compressor starting (`1`) or ending (`-1`).
    pub fn running_compressor(&self, delta: i32) {
        self.running.set(self.running.get() + delta);
        let mut stats = self.stats.borrow_mut();
        stats.max_compressors = stats.max_compressors.max(self.running.get());
    }
}

enum Event {
    Line(Vec<u8>),
    Rotate(Reason, Option<oneshot::Sender<Option<u64>>>),
}

/// A running daemon.
pub struct Daemon {
    /// The Unix stream socket clients connect to.
    pub socket_path: PathBuf,
    /// The UDP socket's address (on 127.0.0.1).
    pub udp_addr: SocketAddr,
    shared: Rc<Shared>,
    tx: mpsc::Sender<Event>,
    stop_accepting: oneshot::Sender<()>,
    stop_udp: oneshot::Sender<()>,
    feeders: Vec<JoinHandle<()>>,
    acceptor: JoinHandle<()>,
    udp: JoinHandle<()>,
    writer: JoinHandle<()>,
    compressor: JoinHandle<()>,
    grace: Duration,
}

impl Daemon {
    /// Binds the sockets, opens `current` and starts the tasks.
    pub async fn start(cfg: Config) -> io::Result<Daemon> {
        assert!(
            (cfg.max_line as u64) < cfg.max_size,
            "a line must fit in a file"
        );
        let shared = Rc::new(Shared {
            stats: RefCell::default(),
            compress: Notify::new(),
            stopping: Cell::new(false),
            compressor: RefCell::new(cfg.compressor.clone()),
            cancel: CancellationToken::new(),
            running: Cell::new(0),
        });
        super::compress::remove_partial_outputs(&cfg.dir).await?;
        let socket_path = cfg.dir.join("log.sock");
        let listener = UnixListener::bind(&socket_path)?;
        let udp = UdpSocket::bind("127.0.0.1:0").await?;
        let udp_addr = udp.local_addr()?;
        let current = CurrentFile::open(&cfg.dir, cfg.max_size, shared.clone()).await?;
        let (tx, rx) = mpsc::channel(cfg.queue);
        let mut feeders = Vec::new();
        if cfg.hup {
            let mut hup = signal(SignalKind::hangup())?;
            let tx = tx.clone();
            feeders.push(overlap::spawn(async move {
                while hup.recv().await.is_some() {
                    if tx.send(Event::Rotate(Reason::Signal, None)).await.is_err() {
                        return;
                    }
                }
            }));
        }
        if let Some(every) = cfg.every {
            let tx = tx.clone();
            feeders.push(overlap::spawn(async move {
                let mut tick = interval_at(Instant::now() + every, every);
                loop {
                    tick.tick().await;
                    if tx.send(Event::Rotate(Reason::Timer, None)).await.is_err() {
                        return;
                    }
                }
            }));
        }
        let (stop_accepting, stop_a) = oneshot::channel();
        let (stop_udp, stop_u) = oneshot::channel();
        let acceptor = overlap::spawn(accept(
            listener,
            tx.clone(),
            cfg.max_line,
            cfg.grace,
            shared.clone(),
            stop_a,
        ));
        let udp = overlap::spawn(receive(
            udp,
            tx.clone(),
            cfg.max_line,
            shared.clone(),
            stop_u,
        ));
        let writer = overlap::spawn(write(current, rx));
        let (dir, keep, sh) = (cfg.dir.clone(), cfg.keep, shared.clone());
        let compressor = overlap::spawn(async move { super::compress::run(&dir, keep, sh).await });
        Ok(Daemon {
            socket_path,
            udp_addr,
            shared,
            tx,
            stop_accepting,
            stop_udp,
            feeders,
            acceptor,
            udp,
            writer,
            compressor,
            grace: cfg.grace,
        })
    }

    /// A copy of the stats now.
    pub fn stats(&self) -> Stats {
        self.shared.stats.borrow().clone()
    }

    /// Rotates after every line queued so far (the control socket's `rotate`); `None` if
    /// `current` was empty or the rotation failed.
    pub async fn rotate(&self) -> Option<u64> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Event::Rotate(Reason::Asked, Some(reply)))
            .await
            .ok()?;
        answer.await.ok().flatten()
    }

    /// Changes the compressor from the next file on (a configuration reload).
    pub fn set_compressor(&self, argv: &[&str]) {
        *self.shared.compressor.borrow_mut() = argv.iter().map(OsString::from).collect();
    }

    /// Shuts down (see the module docs) and gives the final stats.
    pub async fn shutdown(self) -> Stats {
        let _ = self.stop_accepting.send(());
        let _ = self.stop_udp.send(());
        let _ = self.acceptor.await;
        let _ = self.udp.await;
        for feeder in self.feeders {
            feeder.abort();
            let _ = feeder.await;
        }
        drop(self.tx);
        let _ = self.writer.await;
        self.shared.stopping.set(true);
        self.shared.compress.notify_one();
        let mut compressor = self.compressor;
        if timeout(self.grace, &mut compressor).await.is_err() {
            self.shared.cancel.cancel();
            let _ = compressor.await;
        }
        let stats = self.shared.stats.borrow().clone();
        stats
    }
}

/// The writer: lines and rotations in queue order; the final flush when the queue closes.
async fn write(mut current: CurrentFile, mut rx: mpsc::Receiver<Event>) {
    let mut events = Vec::new();
    while rx.recv_many(&mut events, 256).await > 0 {
        let mut lines = Vec::new();
        for event in events.drain(..) {
            match event {
                Event::Line(line) => lines.push(line),
                Event::Rotate(reason, reply) => {
                    current.append(std::mem::take(&mut lines)).await;
                    let seq = current.rotate(reason).await;
                    if let Some(reply) = reply {
                        let _ = reply.send(seq);
                    }
                }
            }
        }
        current.append(lines).await;
    }
    current.close().await;
}

async fn accept(
    listener: UnixListener,
    tx: mpsc::Sender<Event>,
    max_line: usize,
    grace: Duration,
    shared: Rc<Shared>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut clients = JoinSet::new();
    loop {
        overlap::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    shared.stats.borrow_mut().clients += 1;
                    clients.spawn(read_client(stream, tx.clone(), max_line, shared.clone()));
                }
                Err(e) => {
                    // EMFILE and the like: say so, breathe, go on.
                    eprintln!("log_rotator: accept: {e}");
                    overlap::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = clients.join_next() => {}
            _ = &mut stop => break,
        }
    }
    // Clients that connected before the stop and were not accepted yet sit in the
    // backlog: they are served too (std's accept, for the UDP drain's reason).
    match listener.into_std() {
        Ok(listener) => {
            while let Ok((stream, _)) = listener.accept() {
                match UnixStream::from_std(stream) {
                    Ok(stream) => {
                        shared.stats.borrow_mut().clients += 1;
                        clients.spawn(read_client(stream, tx.clone(), max_line, shared.clone()));
                    }
                    Err(e) => eprintln!("log_rotator: accept: {e}"),
                }
            }
        }
        Err(e) => eprintln!("log_rotator: accept: {e}"),
    }
    let _ = timeout(grace, async {
        while clients.join_next().await.is_some() {}
    })
    .await;
    // Clients still connected are cut off as `clients` drops.
}

async fn read_client(stream: UnixStream, tx: mpsc::Sender<Event>, max: usize, shared: Rc<Shared>) {
    let mut lines = FramedRead::new(stream, LogLineCodec::new(max));
    while let Some(line) = lines.next().await {
        match line {
            Ok(line) => {
                if line.cut {
                    shared.stats.borrow_mut().lines_cut += 1;
                }
                if tx.send(Event::Line(line.bytes)).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                eprintln!("log_rotator: client: {e}");
                return;
            }
        }
    }
}

/// One datagram as a line: a trailing newline dropped, newlines inside turned to spaces
/// (a datagram never makes two lines), cut at `max`.
fn datagram_line(datagram: &[u8], max: usize, shared: &Shared) -> Option<Vec<u8>> {
    let body = datagram.strip_suffix(b"\n").unwrap_or(datagram);
    if body.is_empty() {
        shared.stats.borrow_mut().empty_datagrams += 1;
        return None;
    }
    let mut line: Vec<u8> = body
        .iter()
        .map(|&b| if b == b'\n' { b' ' } else { b })
        .collect();
    if line.len() > max {
        line.truncate(max);
        shared.stats.borrow_mut().lines_cut += 1;
    }
    Some(line)
}

async fn receive(
    socket: UdpSocket,
    tx: mpsc::Sender<Event>,
    max: usize,
    shared: Rc<Shared>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut buf = vec![0u8; 65536];
    loop {
        overlap::select! {
            got = socket.recv_from(&mut buf) => match got {
                Ok((n, _)) => {
                    if let Some(line) = datagram_line(&buf[..n], max, &shared) {
                        if tx.send(Event::Line(line)).await.is_err() {
                            return;
                        }
                    }
                }
                Err(e) => eprintln!("log_rotator: udp: {e}"),
            },
            _ = &mut stop => break,
        }
    }
    // What the socket holds was sent before the shutdown: it is written too. Not with
    // `try_recv_from`: as tokio's, it reads only while the reactor knows the socket to be
    // readable, and datagrams that came after the last `recv_from` are not known yet. The
    // std socket (still non-blocking) reads what the kernel holds, until `WouldBlock`.
    let socket = match socket.into_std() {
        Ok(socket) => socket,
        Err(e) => return eprintln!("log_rotator: udp: {e}"),
    };
    while let Ok((n, _)) = socket.recv_from(&mut buf) {
        if let Some(line) = datagram_line(&buf[..n], max, &shared) {
            if tx.send(Event::Line(line)).await.is_err() {
                return;
            }
        }
    }
}
