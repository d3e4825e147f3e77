//! The shipper: takes lines from the bounded channel, batches them (up to `batch_max`
//! lines, or what came within `flush_every`), sends each batch as one frame and keeps it
//! until the collector acks it, then moves the checkpoint past its lines. A lost
//! connection is retried with exponential backoff and every unacked batch is sent again
//! (at-least-once; the collector drops what it saw). With `window` batches unacked it stops
//! taking lines, so a dead collector fills the channel and the tailers wait: memory stays
//! bounded.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use overlap::future::{FutureExt, LocalBoxFuture};
use overlap::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use overlap::net::TcpStream;
use overlap::sync::mpsc::Receiver;
use overlap::time::{sleep_until, Instant};

use crate::checkpoint::{Checkpoint, Mark};
use crate::tailer::Line;

pub type Reader = Box<dyn AsyncRead + Unpin>;
pub type Writer = Box<dyn AsyncWrite + Unpin>;
/// Opens a connection to the collector: TCP in most tests, an in-memory duplex on a
/// paused clock.
pub type Connect = Rc<dyn Fn() -> LocalBoxFuture<'static, io::Result<(Reader, Writer)>>>;

pub fn tcp(addr: SocketAddr) -> Connect {
    Rc::new(move || {
        async move {
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let (r, w) = stream.into_split();
            Ok((Box::new(r) as Reader, Box::new(w) as Writer))
        }
        .boxed_local()
    })
}

#[derive(Clone)]
pub struct Config {
    pub batch_max: usize,
    pub flush_every: Duration,
    /// Batches sent and not yet acked, at most.
    pub window: usize,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    pub checkpoint: PathBuf,
}

#[derive(Default)]
pub struct ShipStats {
    /// When each connection attempt started.
    pub attempts: RefCell<Vec<Instant>>,
    pub connects: Cell<u32>,
    /// Batches sealed and not acked, now.
    pub unacked: Cell<usize>,
    /// Lines taken from the channel.
    pub taken: Cell<u64>,
    pub checkpoints: Cell<u64>,
}

struct Batch {
    id: u64,
    lines: Vec<Line>,
    frame: Vec<u8>,
}

fn frame(id: u64, lines: &[Line]) -> Vec<u8> {
    let mut body = format!("{id}\n");
    for l in lines {
        body.push_str(&format!("{}\t{}\t{}\n", l.source, l.seq, l.text));
    }
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body.as_bytes());
    out
}

/// Reads acks, each a big-endian `u64`. Cancel-safe: the bytes of an ack read so far stay
/// here, and a socket read dropped before it completed took nothing.
struct Acks {
    r: Reader,
    buf: [u8; 8],
    have: usize,
}

impl Acks {
    async fn next(&mut self) -> io::Result<u64> {
        loop {
            if self.have == 8 {
                self.have = 0;
                return Ok(u64::from_be_bytes(self.buf));
            }
            let n = self.r.read(&mut self.buf[self.have..]).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.have += n;
        }
    }
}

struct Conn {
    acks: Acks,
    w: Writer,
}

enum Event {
    Ack(io::Result<u64>),
    Line(Option<Line>),
    Flush,
    Retry,
}

/// Ships until the channel is closed and every line in it acked.
pub async fn run(
    mut rx: Receiver<Line>,
    connect: Connect,
    cfg: Config,
    mut ck: Checkpoint,
    stats: Rc<ShipStats>,
) -> io::Result<()> {
    let mut conn: Option<Conn> = None;
    let mut next_attempt = Instant::now();
    let mut backoff = cfg.backoff_min;
    let mut pending_batches: VecDeque<Batch> = VecDeque::new();
    let mut open: Vec<Line> = Vec::new();
    let mut flush_at: Option<Instant> = None;
    let mut rx_closed = false;
    let mut next_id = 0u64;
    loop {
        if conn.is_none() && Instant::now() >= next_attempt {
            stats.attempts.borrow_mut().push(Instant::now());
            match connect().await {
                Ok((r, w)) => {
                    backoff = cfg.backoff_min;
                    stats.connects.set(stats.connects.get() + 1);
                    let mut c = Conn {
                        acks: Acks {
                            r,
                            buf: [0; 8],
                            have: 0,
                        },
                        w,
                    };
                    // Everything unacked goes again, in order, on the new connection.
                    let mut ok = true;
                    for b in &pending_batches {
                        if c.w.write_all(&b.frame).await.is_err() {
                            ok = false;
                            break;
                        }
                    }
                    conn = ok.then_some(c);
                }
                Err(_) => {
                    next_attempt = Instant::now() + backoff;
                    backoff = (backoff * 2).min(cfg.backoff_max);
                }
            }
            continue;
        }
        if rx_closed && open.is_empty() && pending_batches.is_empty() {
            return Ok(());
        }
        let connected = conn.is_some();
        let room = pending_batches.len() < cfg.window && !rx_closed;
        // tokio's `select!` with preconditions, as written for tokio. Every future is
        // made, disabled or not, so the ones that need a value take a stand-in.
        let ev = overlap::select! {
            biased;
            Some(ack) = async { Some(conn.as_mut()?.acks.next().await) } => Event::Ack(ack),
            line = rx.recv(), if room => Event::Line(line),
            () = sleep_until(flush_at.unwrap_or(next_attempt)), if flush_at.is_some() => {
                Event::Flush
            }
            () = sleep_until(next_attempt), if !connected => Event::Retry,
        };
        let mut seal = false;
        match ev {
            Event::Ack(Ok(id)) => {
                let front = pending_batches.pop_front();
                let batch = front.filter(|b| b.id == id).expect("acks come in order");
                for l in &batch.lines {
                    let mark = Mark {
                        inode: l.inode,
                        offset: l.end,
                        seq: l.seq + 1,
                    };
                    ck.marks.insert(l.source.to_string(), mark);
                }
                ck.save(&cfg.checkpoint).await?;
                stats.checkpoints.set(stats.checkpoints.get() + 1);
            }
            Event::Ack(Err(_)) => {
                conn = None;
                next_attempt = Instant::now() + backoff;
            }
            Event::Line(Some(l)) => {
                stats.taken.set(stats.taken.get() + 1);
                if open.is_empty() {
                    flush_at = Some(Instant::now() + cfg.flush_every);
                }
                open.push(l);
                seal = open.len() >= cfg.batch_max;
            }
            Event::Line(None) => {
                rx_closed = true;
                seal = !open.is_empty();
            }
            Event::Flush => seal = true,
            Event::Retry => {}
        }
        if seal {
            let lines = std::mem::take(&mut open);
            let batch = Batch {
                id: next_id,
                frame: frame(next_id, &lines),
                lines,
            };
            next_id += 1;
            flush_at = None;
            if let Some(c) = conn.as_mut() {
                if c.w.write_all(&batch.frame).await.is_err() {
                    conn = None;
                    next_attempt = Instant::now() + backoff;
                }
            }
            pending_batches.push_back(batch);
        }
        stats.unacked.set(pending_batches.len());
    }
}
