//! The broker: TCP on 127.0.0.1, one task per connection. Every message either way is a
//! frame, a `u32` LE length and that many bytes, the first of them its kind:
//!
//! - `P payload`: publish; answered `A offset` (u64 LE) once synced, in order;
//! - `S from group`: subscribe from offset `from` (u64 LE; `u64::MAX` for the group's
//!   committed offset), the rest of the frame the group's name (empty: no group); the
//!   broker then streams `R offset payload` frames, and the consumer sends
//!   `C offset` frames to commit the next offset its group will read;
//! - `E text`: what was wrong, the broker's last frame before it closes the connection.
//!
//! A frame started must be finished within the frame timeout; a connection may sit idle
//! between frames for as long as it likes.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{OwnedReadHalf, OwnedWriteHalf, TcpSocket, TcpStream};
use overlap::sync::{mpsc, oneshot, CancellationToken};
use overlap::task::{JoinHandle, TaskTracker};

use super::spool::Spool;

/// The broker's limits.
#[derive(Clone)]
pub struct Config {
    /// The longest frame a client may send.
    pub max_frame: usize,
    /// How long a frame may take once its first byte came.
    pub frame_timeout: Duration,
    /// Publishes of one producer waiting for their acks at most; it is read no further
    /// until the oldest is acked.
    pub in_flight: usize,
    /// `SO_SNDBUF` of the connections (the kernel's autotuning when `None`).
    pub send_buffer: Option<u32>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_frame: 64 << 10,
            frame_timeout: Duration::from_secs(10),
            in_flight: 256,
            send_buffer: None,
        }
    }
}

/// What the broker's connections did, counted.
#[derive(Default)]
pub struct Stats {
    /// Consumer sessions streaming now.
    pub sessions: Cell<usize>,
    /// Records written to consumers.
    pub delivered: Cell<u64>,
    /// Bytes read from a segment and not yet written to the consumer, all sessions.
    pub held: Cell<usize>,
    /// The most `held` ever was.
    pub max_held: Cell<usize>,
    /// Error frames sent.
    pub errors: Cell<u64>,
}

/// A running broker.
pub struct Broker {
    pub addr: SocketAddr,
    pub spool: Rc<Spool>,
    pub stats: Rc<Stats>,
    stop: CancellationToken,
    tracker: TaskTracker,
    accept: JoinHandle<()>,
}

impl Broker {
    /// Listens on 127.0.0.1 (a free port) and serves `spool`.
    pub async fn start(spool: Rc<Spool>, config: Config) -> io::Result<Broker> {
        let socket = TcpSocket::new_v4()?;
        if let Some(size) = config.send_buffer {
            socket.set_send_buffer_size(size)?;
        }
        socket.bind("127.0.0.1:0".parse().unwrap())?;
        let listener = socket.listen(128)?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let tracker = TaskTracker::new();
        let stats = Rc::new(Stats::default());
        let conn = Conn {
            spool: spool.clone(),
            config: Rc::new(config),
            stats: stats.clone(),
            stop: stop.clone(),
        };
        let (token, tasks) = (stop.clone(), tracker.clone());
        let accept = overlap::spawn(async move {
            loop {
                let accepted = overlap::select! {
                    _ = token.cancelled() => return,
                    r = listener.accept() => r,
                };
                match accepted {
                    Ok((stream, _)) => {
                        tasks.spawn(conn.clone().serve(stream));
                    }
                    // Out of fds, say: the next accept tries again.
                    Err(e) => eprintln!("broker: accept: {e}"),
                }
            }
        });
        Ok(Broker {
            addr,
            spool,
            stats,
            stop,
            tracker,
            accept,
        })
    }

    /// Stops accepting, ends every connection, then stops the spool's writer.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.accept.await;
        self.tracker.close();
        self.tracker.wait().await;
        self.spool.close().await;
    }
}

/// Why a frame could not be read.
enum FrameError {
    /// The peer closed between frames.
    Closed,
    /// The connection failed (or closed mid-frame).
    Io,
    /// The peer broke the protocol: said in an error frame.
    Bad(String),
}

/// What one connection task needs.
#[derive(Clone)]
struct Conn {
    spool: Rc<Spool>,
    config: Rc<Config>,
    stats: Rc<Stats>,
    stop: CancellationToken,
}

/// What a producer's reader hands its ack writer, in order.
enum Pending {
    Stored(oneshot::Receiver<io::Result<u64>>),
    Refused(String),
}

impl Conn {
    async fn serve(self, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let (mut rd, wr) = stream.into_split();
        let first = overlap::select! {
            _ = self.stop.cancelled() => return,
            f = self.read_frame(&mut rd) => f,
        };
        match first {
            Ok(frame) if frame[0] == b'S' => self.serve_consumer(frame, rd, wr).await,
            first => self.serve_producer(first, rd, wr).await,
        }
    }

    /// Reads one frame, its first byte without a deadline, the rest within the timeout.
    async fn read_frame(&self, rd: &mut OwnedReadHalf) -> Result<Vec<u8>, FrameError> {
        let mut len = [0u8; 4];
        match rd.read(&mut len[..1]).await {
            Ok(0) => return Err(FrameError::Closed),
            Ok(_) => {}
            Err(_) => return Err(FrameError::Io),
        }
        let max = self.config.max_frame;
        let rest = async {
            rd.read_exact(&mut len[1..]).await?;
            let n = u32::from_le_bytes(len) as usize;
            if n == 0 {
                return Ok(Err("an empty frame".to_string()));
            }
            if n > max {
                return Ok(Err(format!(
                    "a frame of {n} bytes, over the limit of {max}"
                )));
            }
            let mut body = vec![0; n];
            rd.read_exact(&mut body).await?;
            io::Result::Ok(Ok(body))
        };
        let limit = self.config.frame_timeout;
        match overlap::time::timeout(limit, rest).await {
            Ok(Ok(Ok(body))) => Ok(body),
            Ok(Ok(Err(why))) => Err(FrameError::Bad(why)),
            Ok(Err(_)) => Err(FrameError::Io),
            Err(_) => Err(FrameError::Bad(format!(
                "an incomplete frame: nothing more within {limit:?}"
            ))),
        }
    }

    /// A producer: each `P` frame queued for the writer in turn (at most `in_flight`
    /// unacked), the acks written in order by a task of their own.
    async fn serve_producer(
        self,
        first: Result<Vec<u8>, FrameError>,
        mut rd: OwnedReadHalf,
        wr: OwnedWriteHalf,
    ) {
        let (tx, rx) = mpsc::channel(self.config.in_flight);
        let acks = overlap::spawn(write_acks(rx, wr, self.stats.clone(), self.stop.clone()));
        {
            // Every wait (a frame, room in the spool's queue, room for one more unacked
            // publish) ends with the broker's shutdown.
            let mut produce = pin!(async {
                let mut frame = first;
                loop {
                    let pending = match frame {
                        Ok(body) if body[0] == b'P' && body.len() > 1 => {
                            let payload = body[1..].to_vec();
                            match self.spool.publish(payload).await {
                                Ok(stored) => Pending::Stored(stored),
                                Err(e) => Pending::Refused(format!("not stored: {e}")),
                            }
                        }
                        Ok(body) if body[0] == b'P' => Pending::Refused("an empty message".into()),
                        Ok(body) => {
                            Pending::Refused(format!("a frame of unknown kind 0x{:02x}", body[0]))
                        }
                        Err(FrameError::Closed | FrameError::Io) => return,
                        Err(FrameError::Bad(why)) => Pending::Refused(why),
                    };
                    let refused = matches!(pending, Pending::Refused(_));
                    if tx.send(pending).await.is_err() || refused {
                        return;
                    }
                    frame = self.read_frame(&mut rd).await;
                }
            });
            overlap::select! {
                _ = self.stop.cancelled() => {},
                _ = produce => {},
            }
        }
        drop(tx);
        let _ = acks.await;
        self.linger(rd).await;
    }

    /// A consumer: records streamed from its offset on, one at a time (the next is read
    /// from the segment only once the last is written, so a slow consumer holds one record
    /// of the broker's memory), while a task of its own takes its commits.
    async fn serve_consumer(self, body: Vec<u8>, rd: OwnedReadHalf, mut wr: OwnedWriteHalf) {
        let (from, group) = match parse_subscribe(&body) {
            Ok(sub) => sub,
            Err(why) => return self.refuse(&mut wr, rd, &why).await,
        };
        let from = match (from, &group) {
            (u64::MAX, Some(g)) => self.spool.committed(g).await.unwrap_or(self.spool.oldest()),
            (u64::MAX, None) => {
                let why = "no group to take the offset from";
                return self.refuse(&mut wr, rd, why).await;
            }
            (from, _) => from,
        };
        if let Err(e) = self.spool.check_start(from) {
            return self.refuse(&mut wr, rd, &e.to_string()).await;
        }
        if let Some(g) = group.as_deref() {
            if self.spool.committed(g).await.is_none() {
                // The group joins at its start: retention now waits for it too.
                if let Err(e) = self.spool.commit(g, from).await {
                    return self.refuse(&mut wr, rd, &format!("group: {e}")).await;
                }
            }
        }
        let stats = self.stats.clone();
        stats.sessions.set(stats.sessions.get() + 1);
        let mut commits = overlap::spawn(self.clone().take_commits(group, rd));
        let mut end = self.spool.watch_end();
        let mut next = from;
        let failed = loop {
            let last = *end.borrow_and_update();
            if next == last {
                overlap::select! {
                    _ = self.stop.cancelled() => break None,
                    r = end.changed() => if r.is_err() { break None },
                    r = &mut commits => break r.ok().and_then(Result::err),
                }
                continue;
            }
            let payload = match self.spool.read(next).await {
                Ok(p) => p,
                Err(e) => break Some(e.to_string()),
            };
            let frame = frame(b'R', &next.to_le_bytes(), &payload);
            drop(payload);
            stats.held.set(stats.held.get() + frame.len());
            stats
                .max_held
                .set(stats.max_held.get().max(stats.held.get()));
            let written = overlap::select! {
                _ = self.stop.cancelled() => None,
                r = wr.write_all(&frame) => Some(r),
                r = &mut commits => {
                    stats.held.set(stats.held.get() - frame.len());
                    break r.ok().and_then(Result::err);
                }
            };
            stats.held.set(stats.held.get() - frame.len());
            match written {
                Some(Ok(())) => {
                    next += 1;
                    stats.delivered.set(stats.delivered.get() + 1);
                }
                // Gone (reset, or shut down).
                _ => break None,
            }
        };
        commits.abort();
        stats.sessions.set(stats.sessions.get() - 1);
        if let Some(why) = failed {
            stats.errors.set(stats.errors.get() + 1);
            let _ = wr.write_all(&frame(b'E', why.as_bytes(), &[])).await;
        }
        let _ = wr.close().await;
    }

    /// A consumer's `C` frames, each a commit for its group. Ends with `Ok` when the
    /// consumer goes, `Err` with what was wrong otherwise.
    async fn take_commits(
        self,
        group: Option<String>,
        mut rd: OwnedReadHalf,
    ) -> Result<(), String> {
        loop {
            let body = match self.read_frame(&mut rd).await {
                Ok(body) => body,
                Err(FrameError::Closed | FrameError::Io) => return Ok(()),
                Err(FrameError::Bad(why)) => return Err(why),
            };
            if body[0] != b'C' || body.len() != 9 {
                return Err(format!(
                    "a {}-byte frame of kind 0x{:02x} where a commit was due",
                    body.len(),
                    body[0]
                ));
            }
            let Some(g) = group.as_deref() else {
                return Err("a commit without a group".into());
            };
            let offset = u64::from_le_bytes(body[1..9].try_into().unwrap());
            self.spool
                .commit(g, offset)
                .await
                .map_err(|e| e.to_string())?;
        }
    }

    /// Sends `why` as the connection's last frame.
    async fn refuse(&self, wr: &mut OwnedWriteHalf, rd: OwnedReadHalf, why: &str) {
        self.stats.errors.set(self.stats.errors.get() + 1);
        let _ = wr.write_all(&frame(b'E', why.as_bytes(), &[])).await;
        let _ = wr.close().await;
        self.linger(rd).await;
    }

    /// After the last frame, reads what the peer still sends (up to 1 MiB, for one frame
    /// timeout) before closing: closing with unread bytes resets the connection, and a
    /// reset can make the peer drop the error frame it has not read yet.
    async fn linger(&self, mut rd: OwnedReadHalf) {
        let drain = async {
            let mut sink = [0u8; 16 << 10];
            let mut left = 1usize << 20;
            while left > 0 {
                match rd.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => left = left.saturating_sub(n),
                }
            }
        };
        overlap::select! {
            _ = self.stop.cancelled() => {},
            _ = overlap::time::timeout(self.config.frame_timeout, drain) => {},
        }
    }
}

/// A producer's acks, in the order of its publishes; a refusal (or a failed store) is the
/// last frame.
async fn write_acks(
    mut pending: mpsc::Receiver<Pending>,
    mut wr: OwnedWriteHalf,
    stats: Rc<Stats>,
    stop: CancellationToken,
) {
    {
        // A producer that reads no acks fills its socket: the shutdown does not wait for it.
        let mut write = pin!(async {
            while let Some(p) = pending.recv().await {
                let (out, last) = match p {
                    Pending::Stored(stored) => match stored.await {
                        Ok(Ok(offset)) => (frame(b'A', &offset.to_le_bytes(), &[]), false),
                        Ok(Err(e)) => (
                            frame(b'E', format!("not stored: {e}").as_bytes(), &[]),
                            true,
                        ),
                        Err(_) => (frame(b'E', b"not stored: the spool closed", &[]), true),
                    },
                    Pending::Refused(why) => (frame(b'E', why.as_bytes(), &[]), true),
                };
                if last {
                    stats.errors.set(stats.errors.get() + 1);
                }
                if wr.write_all(&out).await.is_err() || last {
                    return;
                }
            }
        });
        overlap::select! {
            _ = stop.cancelled() => {},
            _ = write => {},
        }
    }
    let _ = wr.close().await;
}

/// `S from group`: the offset (`u64::MAX`: the group's) and the group, if named.
fn parse_subscribe(body: &[u8]) -> Result<(u64, Option<String>), String> {
    if body.len() < 9 {
        return Err(format!("a subscribe of {} bytes (9 at least)", body.len()));
    }
    let from = u64::from_le_bytes(body[1..9].try_into().unwrap());
    let group = std::str::from_utf8(&body[9..])
        .map_err(|_| "a group name that is not UTF-8".to_string())?;
    if group.contains(char::is_whitespace) {
        return Err(format!("a group name with white space: {group:?}"));
    }
    Ok((from, (!group.is_empty()).then(|| group.to_string())))
}

/// One frame: length, kind, `head`, `body`.
pub fn frame(kind: u8, head: &[u8], body: &[u8]) -> Vec<u8> {
    let len = 1 + head.len() + body.len();
    let mut out = Vec::with_capacity(4 + len);
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.push(kind);
    out.extend_from_slice(head);
    out.extend_from_slice(body);
    out
}
