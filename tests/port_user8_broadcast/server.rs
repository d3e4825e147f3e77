//! The server: an accept loop under the root token, a tracked task per connection with a
//! child token, the broadcast fan-out, the slow-consumer policy, pings and the shutdown.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use overlap::future::FutureExt;
use overlap::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use overlap::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use overlap::net::{TcpListener, TcpStream};
use overlap::sync::{broadcast, oneshot, watch, CancellationToken};
use overlap::task::TaskTracker;
use overlap::time::{sleep, sleep_until, timeout, Instant};

use crate::frame::{self, read_frame, Frame, ReadEnd};

pub struct Config {
    /// How many messages the broadcast channel holds for a receiver behind.
    pub queue: usize,
    /// How long one frame's write may take before the client is cut as too slow.
    pub write_timeout: Duration,
    /// Silence after which a ping goes out, and then the time a pong has to come back.
    pub idle: Duration,
    /// How long the last frame ("going away", a close reason) and the lingering drain after
    /// it may take.
    pub flush_deadline: Duration,
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// A bad request, or a protocol error after the upgrade: the reason sent.
    Refused(String),
    /// The client closed (or went away).
    ClientGone,
    /// The server shut down.
    GoingAway,
    /// Its own token was cancelled: kicked by the admin.
    Kicked,
    PingTimeout,
    /// A frame's write took longer than the write timeout.
    TooSlow,
}

/// One connection's end: its id, why, and how many frames it was sent whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub id: u64,
    pub end: End,
    pub frames: u64,
}

pub struct Server {
    pub token: CancellationToken,
    pub tracker: TaskTracker,
    config: Config,
    tx: broadcast::Sender<Rc<[u8]>>,
    /// Each live connection's own token, by id: the admin's kick.
    clients: RefCell<HashMap<u64, CancellationToken>>,
    next_id: Cell<u64>,
    /// Every connection ended so far, in order.
    pub ended: watch::Sender<Vec<Ended>>,
}

impl Server {
    pub fn new(config: Config) -> Rc<Server> {
        Rc::new(Server {
            token: CancellationToken::new(),
            tracker: TaskTracker::new(),
            tx: broadcast::Sender::new(config.queue),
            config,
            clients: RefCell::default(),
            next_id: Cell::new(1),
            ended: watch::Sender::new(Vec::new()),
        })
    }

    /// Sends `text` to every connection; how many there are.
    pub fn publish(&self, text: &[u8]) -> usize {
        self.tx
            .send(frame::encode(frame::TEXT, text).into())
            .unwrap_or(0)
    }

    /// Cancels one connection's token; whether it was there.
    pub fn kick(&self, id: u64) -> bool {
        let token = self.clients.borrow().get(&id).cloned();
        token.map(|t| t.cancel()).is_some()
    }

    /// The accept loop, until the root token is cancelled; then the tracker is closed.
    pub async fn run(self: Rc<Self>, listener: TcpListener) {
        loop {
            overlap::select! {
                _ = self.token.cancelled() => break,
                accepted = listener.accept().fuse() => match accepted {
                    Ok((stream, _)) => self.start(stream),
                    // EMFILE and friends: a short pause, not a busy loop.
                    Err(_) => overlap::time::sleep(Duration::from_millis(10)).await,
                },
            }
        }
        drop(listener);
        self.tracker.close();
    }

    fn start(self: &Rc<Self>, stream: TcpStream) {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let token = self.token.child_token();
        self.clients.borrow_mut().insert(id, token.clone());
        // Subscribed before the upgrade's answer: a client sees everything published after.
        let rx = self.tx.subscribe();
        let me = self.clone();
        self.tracker.spawn(async move {
            let (end, frames) = me.serve(id, stream, rx, &token).await;
            me.clients.borrow_mut().remove(&id);
            me.ended.send_modify(|v| v.push(Ended { id, end, frames }));
        });
    }

    /// Cancels the root token and waits (up to `limit`) for every connection's task.
    pub async fn shutdown(&self, limit: Duration) -> bool {
        self.token.cancel();
        self.tracker.close();
        timeout(limit, self.tracker.wait()).await.is_ok()
    }

    async fn serve(
        &self,
        id: u64,
        stream: TcpStream,
        rx: broadcast::Receiver<Rc<[u8]>>,
        token: &CancellationToken,
    ) -> (End, u64) {
        let (rd, mut wr) = stream.into_split();
        let mut rd = BufReader::new(rd);
        let head = token
            .run_until_cancelled(timeout(self.config.idle, read_head(&mut rd)))
            .await;
        let refused = match head {
            None => return (End::GoingAway, 0),
            Some(Err(_)) => Some("no request head in time".to_string()),
            Some(Ok(Err(reason))) => Some(reason),
            Some(Ok(Ok(()))) => None,
        };
        if let Some(reason) = refused {
            let answer = format!("HTTP/1.1 400 Bad Request\r\nX-Reason: {reason}\r\n\r\n");
            self.last_words(&mut rd, &mut wr, answer.as_bytes()).await;
            return (End::Refused(reason), 0);
        }
        let answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: overlap-frames\r\n\
             Connection: Upgrade\r\nX-Client-Id: {id}\r\n\r\n"
        );
        let upgraded = timeout(self.config.write_timeout, wr.write_all(answer.as_bytes()));
        if !matches!(upgraded.await, Ok(Ok(()))) {
            return (End::TooSlow, 0);
        }

        // The reader runs beside the writer and tells it how the client's side ended; a
        // frame read is not cancel-safe, so the read loop is never a `select!` branch.
        let heard = Cell::new(Instant::now());
        let (ended_tx, ended_rx) = oneshot::channel();
        let (end, frames, last) = {
            let mut reader = pin!(async {
                let end = read_loop(&mut rd, &self.tx, &heard).await;
                let _ = ended_tx.send(end);
                std::future::pending::<()>().await
            }
            .fuse());
            let mut writer = pin!(self.write_loop(&mut wr, rx, token, &heard, ended_rx).fuse());
            overlap::select! {
                _ = reader => unreachable!("the reader never ends"),
                out = writer => out,
            }
        };
        if let Some(last) = last {
            self.last_words(&mut rd, &mut wr, &last).await;
        }
        (end, frames)
    }

    /// Writes the frames: broadcast messages, lag notices and pings, until something ends
    /// the connection. Each write completes or times out before anything else is looked
    /// at, so a close frame never lands inside another frame. Gives the end, the frames
    /// written whole and the last frame to send, if any.
    async fn write_loop(
        &self,
        wr: &mut OwnedWriteHalf,
        mut rx: broadcast::Receiver<Rc<[u8]>>,
        token: &CancellationToken,
        heard: &Cell<Instant>,
        ended: oneshot::Receiver<Result<(), String>>,
    ) -> (End, u64, Option<Vec<u8>>) {
        let mut ended = ended;
        let mut frames = 0;
        let mut ping_sent: Option<Instant> = None;
        loop {
            let deadline = match ping_sent {
                Some(at) if heard.get() < at => at + self.config.idle,
                _ => heard.get() + self.config.idle,
            };
            let next: Rc<[u8]> = overlap::select! {
                _ = token.cancelled() => {
                    return if self.token.is_cancelled() {
                        (End::GoingAway, frames, Some(frame::close("going away")))
                    } else {
                        (End::Kicked, frames, Some(frame::close("kicked by the admin")))
                    };
                }
                end = ended => return match end {
                    Ok(Err(reason)) => {
                        let last = frame::close(&reason);
                        (End::Refused(reason), frames, Some(last))
                    }
                    _ => (End::ClientGone, frames, None),
                },
                msg = rx.recv().fuse() => match msg {
                    Ok(msg) => msg,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        frame::encode(frame::LAGGED, &n.to_be_bytes()).into()
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        return (End::GoingAway, frames, Some(frame::close("going away")));
                    }
                },
                _ = sleep_until(deadline).fuse() => match ping_sent {
                    Some(at) if heard.get() < at => {
                        return (End::PingTimeout, frames, Some(frame::close("ping timeout")));
                    }
                    _ => {
                        ping_sent = Some(Instant::now());
                        frame::encode(frame::PING, &[]).into()
                    }
                },
            };
            match self.write_frame(wr, &next, token).await {
                Some(Ok(())) => frames += 1,
                // The socket may hold part of a frame: nothing more can be said on it.
                None => return (End::TooSlow, frames, None),
                Some(Err(_)) => return (End::ClientGone, frames, None),
            }
        }
    }

    /// Writes one frame whole, within the write timeout; once the token is cancelled, within
    /// the flush deadline if that comes sooner. `None` when it ran out of time.
    async fn write_frame(
        &self,
        wr: &mut OwnedWriteHalf,
        frame: &[u8],
        token: &CancellationToken,
    ) -> Option<std::io::Result<()>> {
        let mut write = pin!(wr.write_all(frame).fuse());
        let mut limit = pin!(sleep(self.config.write_timeout));
        // `cancelled()` is ready on every poll once cancelled: fused here to be seen once.
        let mut cancelled = pin!(token.cancelled().fuse());
        loop {
            overlap::select! {
                done = write => return Some(done),
                _ = limit => return None,
                _ = cancelled => {
                    let flush_by = Instant::now() + self.config.flush_deadline;
                    if flush_by < limit.deadline() {
                        limit.as_mut().reset(flush_by);
                    }
                }
            }
        }
    }

    /// The last frame, the write side shut, then a lingering drain of what the client still
    /// sends until it closes (a close with unread bytes would reset the connection and could
    /// lose the frame at the client), all within the flush deadline.
    async fn last_words(
        &self,
        rd: &mut BufReader<OwnedReadHalf>,
        wr: &mut OwnedWriteHalf,
        last: &[u8],
    ) {
        let _ = timeout(self.config.flush_deadline, async {
            wr.write_all(last).await?;
            wr.close().await?;
            let mut sink = [0u8; 4096];
            while rd.read(&mut sink).await? > 0 {}
            Ok::<(), std::io::Error>(())
        })
        .await;
    }
}

/// Reads the upgrade request's head: a `GET` line and an `Upgrade: overlap-frames` header,
/// at most 4 KiB of it. An error is the reason the 400 gives.
async fn read_head(rd: &mut BufReader<OwnedReadHalf>) -> Result<(), String> {
    let mut head = Vec::new();
    let mut upgrade = false;
    for n in 0.. {
        let mut line = Vec::new();
        let limit = 4096u64.saturating_sub(head.len() as u64);
        match (&mut *rd).take(limit).read_until(b'\n', &mut line).await {
            Ok(0) => return Err("the request ended before its head did".into()),
            Ok(_) if !line.ends_with(b"\n") => return Err("a request head over 4096 bytes".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("reading the request: {e}")),
        }
        head.extend_from_slice(&line);
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end();
        if n == 0 {
            if !(text.starts_with("GET ") && text.ends_with(" HTTP/1.1")) {
                return Err("not an HTTP/1.1 GET".into());
            }
        } else if text.is_empty() {
            break;
        } else if let Some((name, value)) = text.split_once(':') {
            let value = value.trim();
            upgrade |= name.eq_ignore_ascii_case("upgrade")
                && value.eq_ignore_ascii_case("overlap-frames");
        }
    }
    if upgrade {
        Ok(())
    } else {
        Err("not an upgrade to overlap-frames".into())
    }
}

/// The client's frames: text is published, a pong (or any frame) counts as heard. Ends
/// `Ok` when the client closes, `Err` with the close reason on a protocol error.
async fn read_loop(
    rd: &mut BufReader<OwnedReadHalf>,
    tx: &broadcast::Sender<Rc<[u8]>>,
    heard: &Cell<Instant>,
) -> Result<(), String> {
    loop {
        let frame = match read_frame(rd).await {
            Ok(frame) => frame,
            Err(ReadEnd::Eof | ReadEnd::Cut) => return Ok(()),
            Err(ReadEnd::Protocol(reason)) => return Err(reason),
        };
        heard.set(Instant::now());
        match frame {
            Frame::Text(text) => {
                let _ = tx.send(frame::encode(frame::TEXT, &text).into());
            }
            Frame::Pong => {}
            Frame::Close(_) => return Ok(()),
            Frame::Ping | Frame::Lagged(_) => {
                return Err("protocol error: a client sends no pings or lag notices".into())
            }
        }
    }
}
