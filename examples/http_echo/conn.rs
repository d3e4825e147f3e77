//! One connection: read requests (pipelined or one by one), echo them, refuse bad ones.

use std::cell::Cell;
use std::io;
use std::pin::pin;
use std::time::Duration;

use futures_util::future::{select, Either};

use overlap::io::AsyncReadExt;
use overlap::net::TcpStream;
use overlap::sync::Notify;
use overlap::time::{timeout_at, Instant};

use crate::memory::{BodyMemory, PACE_GRACE};
use crate::request::{self, Head, HttpError, Limits};

#[path = "conn/answer.rs"]
mod answer;
#[path = "conn/body.rs"]
mod body;

/// Why a connection was reset in the middle of an answer: its client took no byte for the
/// write timeout...
const STOPPED_READING: &str = "the client stopped reading its answers";
/// ... or read a body's echo too slowly while other bodies waited for memory.
const READ_TOO_SLOWLY: &str = "the client read its answer too slowly while others wait for memory";

/// An echoed body up to this size is copied in with the queued answers; a larger one is
/// written from its own buffer, right after them.
const COPY_MAX: usize = 16 * 1024;
/// Bytes asked for per read.
const READ_CHUNK: usize = 16 * 1024;
/// Answers to pipelined requests are held back to go out together until they reach this
/// (the answer that crossed it included): then they are written before reading on, so a client that sends without reading
/// meets back-pressure instead of growing the server's memory.
const OUT_CAP: usize = 64 * 1024;
/// After refusing a request, how long (and how much) the client's unread bytes are drained
/// before closing, so the kernel does not answer them with a reset that could destroy the
/// response on its way.
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 1 << 20;
/// On shutdown, how long a connection idle between requests waits for a request already
/// on its way before it closes.
const LAST_LOOK: Duration = Duration::from_millis(10);
/// At most this much is read in that last look; requests past it are not served.
const LAST_LOOK_BYTES: u64 = 64 << 10;

/// The server is shutting down: connections finish the request they are in (and those the
/// client already sent, pipelined), answer the last with `Connection: close`, and close;
/// idle ones close at once, after serving a request that is already in their socket. Idle
/// connections may also be asked to make room before ([`close_idle`](Drain::close_idle)).
#[derive(Default)]
pub struct Drain {
    started: Cell<bool>,
    notify: Notify,
    /// Wakes the connections idle now, to close.
    idle: Notify,
}

impl Drain {
    /// Starts draining every connection served with this `Drain`.
    pub fn start(&self) {
        self.started.set(true);
        self.notify.notify_waiters();
    }

    /// Closes the connections idle between requests (or before their first) now, as their
    /// idle timeout would: the server is out of descriptors, and clients waiting to be
    /// accepted need them more (nginx reuses its idle connections likewise). Connections
    /// in the middle of a request go on.
    pub fn close_idle(&self) {
        self.idle.notify_waiters();
    }

    fn started(&self) -> bool {
        self.started.get()
    }
}

/// Serves one connection until the client closes it, asks to, sends a bad request, or
/// `drain` starts (see [`Drain`]). I/O errors (a reset, a client gone mid-body) end it with
/// that error.
pub async fn serve(
    stream: TcpStream,
    limits: &Limits,
    drain: &Drain,
    memory: &BodyMemory,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut conn = Conn {
        stream,
        buf: vec![0; READ_CHUNK],
        start: 0,
        end: 0,
        received: 0,
        cutoff: None,
        out: Vec::new(),
        pace: None,
        limits,
        drain,
        memory,
    };
    loop {
        let mut head = match conn.next_head().await? {
            Next::Head(head) => head,
            Next::Closed => return conn.flush().await,
            Next::Drained => {
                conn.flush().await?;
                return conn.linger().await;
            }
            Next::Refuse(e, head_request) => return conn.refuse(e, head_request).await,
        };
        let body = match conn.read_body(&head).await? {
            Ok(body) => body,
            Err(e) => return conn.refuse(e, head.method == "HEAD").await,
        };
        // Shutting down: this answer is the last, and says so, unless the client had already
        // sent (pipelined) another request when this connection saw the shutdown: that one
        // is served too. A client that keeps pipelining still gets its `Connection: close`.
        if drain.started() {
            let cutoff = match conn.cutoff {
                Some(cutoff) => cutoff,
                // Requests still in the socket were sent already too: read them in.
                None => conn.last_look().await?.1,
            };
            head.keep_alive &= conn.next_request_at() < cutoff;
        }
        if !conn.respond(&head, &body.bytes) {
            conn.flush_with(&body.bytes, body.holds_room()).await?;
        }
        // Its share of the body memory goes back.
        drop(body);
        // Answering is work the runtime's budget does not see (it counts I/O): a client that
        // pipelines without pause would otherwise hold the thread, other connections and the
        // shutdown timer included, for thousands of requests per poll.
        std::future::poll_fn(overlap::coop_poll_proceed).await;
        if !head.keep_alive {
            conn.flush().await?;
            return conn.linger().await;
        }
        // Answers to pipelined requests go out together, once no further one is buffered
        // (or too many wait).
        if conn.start == conn.end || conn.out.len() >= OUT_CAP {
            conn.flush().await?;
        }
    }
}

enum Next {
    Head(Head),
    /// The client closed or went idle between requests.
    Closed,
    /// Shutting down, and the client sent nothing more: close, reading what still comes.
    Drained,
    /// The error, and whether the request was a `HEAD` (its answer then has no body).
    Refuse(HttpError, bool),
}

#[derive(Clone, Copy)]
enum Fill {
    Data,
    Eof,
    TimedOut,
}

struct Conn<'a> {
    stream: TcpStream,
    /// Received bytes not yet consumed: `buf[start..end]`.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Bytes received on the connection so far.
    received: u64,
    /// Shutting down: requests that start at or after this many received bytes are not
    /// served (see `serve`).
    cutoff: Option<u64>,
    /// Responses not yet written.
    out: Vec<u8>,
    /// The body being read holds room in the body memory: since when, and the bytes
    /// received by then.
    pace: Option<(Instant, u64)>,
    limits: &'a Limits,
    drain: &'a Drain,
    memory: &'a BodyMemory,
}

impl Conn<'_> {
    fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Whether bytes of a next request (more than empty lines) are buffered.
    fn request_buffered(&self) -> bool {
        empty_lines(self.buffered()) < self.end - self.start
    }

    /// Where the next buffered request starts, in bytes received.
    fn next_request_at(&self) -> u64 {
        let pending = self.end - self.start - empty_lines(self.buffered());
        self.received - pending as u64
    }

    /// Shutting down: reads what the client has sent, and what is on its way for a moment
    /// ([`LAST_LOOK`]; a new connection's readiness is only known after a turn of the loop,
    /// so a read that cannot wait could miss bytes already in its socket), up to
    /// [`LAST_LOOK_BYTES`], and sets the cutoff after it. Returns what the first read found
    /// and the cutoff.
    async fn last_look(&mut self) -> io::Result<(Fill, u64)> {
        let deadline = Instant::now() + LAST_LOOK;
        let start = self.received;
        let first = self.fill(deadline).await?;
        let mut filled = first;
        // More than one buffer's worth may wait in the socket (requests pipelined behind
        // a large answer): all of it was sent before the shutdown.
        while matches!(filled, Fill::Data) && self.received - start < LAST_LOOK_BYTES {
            filled = self.fill(deadline).await?;
        }
        Ok((first, *self.cutoff.insert(self.received)))
    }

    /// Makes room after the buffered bytes, by moving them to the front or growing the buffer.
    fn make_room(&mut self) {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            // Bounded: a head may not outgrow `max_head`, and bodies are consumed as they come.
            self.buf.resize(self.buf.len() * 2, 0);
        }
    }

    /// Reads more bytes (after any buffered ones) before `deadline`.
    async fn fill(&mut self, deadline: Instant) -> io::Result<Fill> {
        self.make_room();
        let read = self.stream.read(&mut self.buf[self.end..]);
        match timeout_at(deadline, read).await {
            Err(_) => Ok(Fill::TimedOut),
            Ok(Ok(0)) => Ok(Fill::Eof),
            Ok(Ok(n)) => {
                self.end += n;
                self.received += n as u64;
                Ok(Fill::Data)
            }
            Ok(Err(e)) => Err(e),
        }
    }

    /// Reads more body bytes: a stall is a 408, a close an error. Answers already queued
    /// (to pipelined requests) go out first: the client may wait for them before it sends
    /// the rest, and if it closes instead, they were its due.
    async fn fill_body(&mut self) -> io::Result<Result<(), HttpError>> {
        self.flush().await?;
        let stalled = Instant::now() + self.limits.body_timeout;
        loop {
            // A body holding room while others wait for some must keep up a pace.
            let paced = match self.pace {
                Some((since, at)) if self.memory.contended() => {
                    Some(BodyMemory::pace_deadline(since, self.received - at))
                }
                _ => None,
            };
            // Holding room while nobody waits: look again in a while whether someone does.
            let look_again =
                (self.pace.is_some() && paced.is_none()).then(|| Instant::now() + PACE_GRACE);
            let deadline = [paced, look_again]
                .into_iter()
                .flatten()
                .fold(stalled, Instant::min);
            return match self.fill(deadline).await? {
                Fill::Data => Ok(Ok(())),
                Fill::TimedOut if deadline == stalled => Ok(Err(timed_out("request body stalled"))),
                Fill::TimedOut if Some(deadline) == paced => Ok(Err(timed_out(
                    "request body too slow while others wait for memory",
                ))),
                // Whether bodies wait for room is looked at again above.
                Fill::TimedOut => continue,
                Fill::Eof => Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "client closed the connection mid-request",
                )),
            };
        }
    }

    async fn next_head(&mut self) -> io::Result<Next> {
        let mut head_deadline = None;
        // Idle counts from the first wait after the last answer went out: empty lines (which
        // start no request) must not push it back, or a client dripping CRLFs is never closed.
        let mut idle_deadline = None;
        // Parsing looks at the whole head so far, so it runs only when the new bytes can
        // change the outcome: they end the request line or hold a byte no request line may
        // (checked early, so garbage gets its 400 at once), end the head, or pass the size
        // limit. A client dripping its head a byte at a time would otherwise cost a parse
        // per byte: quadratic.
        let (mut scanned, mut line_seen) = (0usize, false);
        loop {
            // Empty lines before the request line are no part of its head: dropped as they
            // come, they count neither against its size limit nor in the buffer.
            let skipped = request::empty_lines_ended(self.buffered());
            (self.start, scanned) = (self.start + skipped, scanned.saturating_sub(skipped));
            let buffered = self.buffered();
            let new = &buffered[scanned.saturating_sub(3)..];
            // Empty lines before the request line (which the parser skips) end no line.
            let lead = empty_lines(buffered);
            let (line_ends, line_bad) = if line_seen {
                (false, false)
            } else {
                let fresh = &buffered[lead.max(scanned.saturating_sub(3))..];
                let lf = fresh.iter().position(|&b| b == b'\n');
                // A control byte can be in no request line (a TLS or SSH greeting, binary
                // garbage): refused at once, not when an LF or the head timeout comes.
                let line = &fresh[..lf.unwrap_or(fresh.len())];
                let bad = line.iter().any(|&b| (b < 0x20 && b != b'\r') || b == 0x7f);
                (lf.is_some(), bad)
            };
            // One pass that stops at the first head end: with requests pipelined behind
            // this one, the buffer may hold many.
            let head_ends = new.iter().enumerate().any(|(i, &b)| {
                b == b'\n'
                    && (new.get(i + 1) == Some(&b'\n') || new.get(i + 1..i + 3) == Some(b"\r\n"))
            });
            if line_ends || line_bad || head_ends || buffered.len() > self.limits.max_head {
                line_seen |= line_ends;
                match request::parse(buffered, self.limits) {
                    Ok(Some((head, len))) => {
                        self.start += len;
                        return Ok(Next::Head(head));
                    }
                    Ok(None) => {}
                    Err(e) => return Ok(Next::Refuse(e, is_head_request(buffered))),
                }
            }
            scanned = buffered.len();
            // Nothing more to answer until this request is complete: send what is ready.
            self.flush().await?;
            // Empty lines (a CRLF some clients send after a body) start no request.
            let started = self.request_buffered();
            let deadline = if started {
                // The whole head, not each read, must arrive in time (slow-drip clients).
                *head_deadline.get_or_insert_with(|| Instant::now() + self.limits.head_timeout)
            } else {
                *idle_deadline.get_or_insert_with(|| Instant::now() + self.limits.idle_timeout)
            };
            let filled = if started {
                self.fill(deadline).await?
            } else {
                // Between requests: a shutdown closes the connection at once, once what
                // the client already sent is read (a request gets its answer). (Made
                // before the flag is read, so a start in between still wakes it.)
                let drain = self.drain;
                let draining = drain.notify.notified();
                let room_wanted = drain.idle.notified();
                let raced = if drain.started() {
                    None
                } else {
                    let (draining, room_wanted) = (pin!(draining), pin!(room_wanted));
                    let signals = select(draining, room_wanted);
                    match select(pin!(self.fill(deadline)), signals).await {
                        Either::Left((filled, _)) => Some(filled),
                        Either::Right((Either::Left(_), _)) => None,
                        // Out of descriptors: closed as if idle for its whole time.
                        Either::Right((Either::Right(_), _)) => return Ok(Next::Closed),
                    }
                };
                match raced {
                    Some(filled) => filled?,
                    // The last look was taken: anything more came after the shutdown (a
                    // client dripping empty lines must not hold the drain).
                    None if self.cutoff.is_some() => return Ok(Next::Drained),
                    // A last look, for a request already sent.
                    None => match self.last_look().await?.0 {
                        Fill::TimedOut => return Ok(Next::Drained),
                        filled => filled,
                    },
                }
            };
            match filled {
                Fill::Data => {}
                Fill::TimedOut if started => {
                    let head_request = is_head_request(self.buffered());
                    return Ok(Next::Refuse(
                        timed_out("request head too slow"),
                        head_request,
                    ));
                }
                // Idle, or closed between requests (or inside a head: nothing to answer).
                Fill::TimedOut | Fill::Eof => return Ok(Next::Closed),
            }
        }
    }
}

/// Whether the (maybe partial, maybe malformed) head in `buf` is a `HEAD` request: its
/// request line, after any empty lines, starts with that method.
fn is_head_request(buf: &[u8]) -> bool {
    buf[empty_lines(buf)..].starts_with(b"HEAD ")
}

/// How many bytes of empty lines (CR and LF) come before the request line, which the
/// parser skips (RFC 9112 §2.2).
fn empty_lines(buf: &[u8]) -> usize {
    buf.iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count()
}

fn timed_out(detail: &'static str) -> HttpError {
    HttpError::new(408, "Request Timeout", detail)
}
