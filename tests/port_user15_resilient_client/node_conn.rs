//! The client's side of one node: a supervisor task that keeps a connection to it
//! (reconnecting with backoff), writes the requests queued for the node and matches the
//! replies to them in order (the protocol is pipelined, one reply a request). A reply late
//! past its request's deadline, a malformed or overlong line, a reply nobody asked for, or
//! the end of the stream ends the connection: every request still on it then fails with
//! the reason, and none is ever answered by another's reply.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;

use overlap::codec::{BytesMut, Decoder, FramedRead, LinesCodec, LinesCodecError};
use overlap::io::AsyncWriteExt;
use overlap::net::{TcpSocket, TcpStream};
use overlap::stream::StreamExt;
use overlap::sync::{mpsc, oneshot, CancellationToken};
use overlap::time::{self, Instant};

use super::client::{Config, Error};
use super::policy::Breaker;
use super::proto::{Cmd, Reply};

/// A request for the node, with the deadline its caller waits to.
pub struct Job {
    pub cmd: Cmd,
    /// Send `ASKING` first (an `ASK` redirect is being followed).
    pub asking: bool,
    pub deadline: Instant,
    pub reply: oneshot::Sender<Result<Reply, Error>>,
}

/// What the client and the tests see of a node.
#[derive(Debug)]
pub struct NodeShared {
    pub addr: SocketAddr,
    /// Each connect attempt: when, and whether it connected.
    pub attempts: RefCell<Vec<(Instant, bool)>>,
    /// The current connection's fd, for reading its options back.
    pub fd: Cell<Option<RawFd>>,
    /// Connections that ended other than by shutdown, and why.
    pub lost: RefCell<Vec<String>>,
    /// Why the last connect attempt failed, if it did.
    pub connect_error: RefCell<Option<String>>,
    pub breaker: RefCell<Breaker>,
}

struct Pending {
    reply: oneshot::Sender<Result<Reply, Error>>,
    deadline: Instant,
    /// The `+OK` of an `ASKING` is still to come first.
    asking: bool,
}

enum Ended {
    Stop,
    Lost { replied: bool },
}

async fn connect(addr: SocketAddr, cfg: &Config) -> std::io::Result<TcpStream> {
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    let stream = sock.connect(addr).await?;
    stream.set_nodelay(true)?;
    stream.set_tcp_keepalive(&cfg.keepalive)?;
    Ok(stream)
}

/// The supervisor: runs until `stop`, then fails whatever is still queued.
pub async fn supervise(
    shared: Rc<NodeShared>,
    mut jobs: mpsc::Receiver<Job>,
    cfg: Rc<Config>,
    seed: u64,
    stop: CancellationToken,
) {
    let mut rng = seed;
    let mut failures = 0;
    loop {
        let connected = overlap::select! {
            _ = stop.cancelled() => break,
            r = connect(shared.addr, &cfg) => r,
        };
        shared
            .attempts
            .borrow_mut()
            .push((time::now(), connected.is_ok()));
        *shared.connect_error.borrow_mut() = connected.as_ref().err().map(|e| e.to_string());
        let ended = match connected {
            Ok(stream) => {
                shared.fd.set(Some(stream.as_raw_fd()));
                let ended = serve(stream, &mut jobs, &shared, &cfg, &stop).await;
                shared.fd.set(None);
                ended
            }
            Err(_) => Ended::Lost { replied: false },
        };
        match ended {
            Ended::Stop => break,
            // A connection that served is lost: straight back (a restart, most likely).
            Ended::Lost { replied: true, .. } => failures = 0,
            Ended::Lost { .. } => {
                let wait = cfg.backoff.delay(failures, &mut rng);
                failures += 1;
                overlap::select! {
                    _ = stop.cancelled() => break,
                    _ = time::sleep(wait) => {}
                }
            }
        }
    }
    jobs.close();
    while let Ok(job) = jobs.try_recv() {
        let _ = job.reply.send(Err(Error::ShutDown));
    }
}

async fn serve(
    stream: TcpStream,
    jobs: &mut mpsc::Receiver<Job>,
    shared: &NodeShared,
    cfg: &Config,
    stop: &CancellationToken,
) -> Ended {
    let (rd, mut wr) = stream.into_split();
    let mut lines = FramedRead::new(
        rd,
        ReplyCodec(LinesCodec::new_with_max_length(cfg.max_line)),
    );
    let mut pending: VecDeque<Pending> = VecDeque::new();
    let mut replied = false;
    let why = loop {
        // The oldest request's deadline: past it, the connection is given up, since its
        // reply, if it ever came, would be taken for the next request's.
        let deadline = pending.front().map(|p| p.deadline);
        // Biased: a deadline passed, or the end of the stream, is seen before a new request
        // is written to a connection about to go.
        overlap::select! {
            biased;
            _ = stop.cancelled() => {
                fail_all(&mut pending, || Error::ShutDown);
                return Ended::Stop;
            }
            _ = time::sleep_until(deadline.unwrap_or_else(far)), if deadline.is_some() => {
                let p = pending.pop_front().unwrap();
                let _ = p.reply.send(Err(Error::Timeout { node: shared.addr }));
                break "a request timed out".to_string();
            }
            line = lines.next() => match line {
                None => break "end of stream".to_string(),
                Some(Err(e)) => break format!("bad reply: {e}"),
                Some(Ok(line)) => {
                    let Some(p) = pending.front_mut() else {
                        break format!("a reply with no request: {line:?}");
                    };
                    let reply = match Reply::parse(&line) {
                        Ok(r) => r,
                        Err(e) => break e,
                    };
                    replied = true;
                    if p.asking {
                        p.asking = false;
                        if reply != Reply::Ok {
                            break format!("ASKING answered {line:?}");
                        }
                        continue;
                    }
                    let _ = pending.pop_front().unwrap().reply.send(Ok(reply));
                }
            },
            job = jobs.recv() => {
                let Some(job) = job else {
                    fail_all(&mut pending, || Error::ShutDown);
                    return Ended::Stop;
                };
                if job.reply.is_closed() {
                    continue; // its caller gave up while it was queued
                }
                let mut text = String::new();
                if job.asking {
                    text.push_str("ASKING\n");
                }
                text.push_str(&job.cmd.encode());
                text.push('\n');
                pending.push_back(Pending { reply: job.reply, deadline: job.deadline, asking: job.asking });
                if let Err(e) = wr.write_all(text.as_bytes()).await {
                    break format!("write: {e}");
                }
            }
        }
    };
    let in_flight = pending.len();
    fail_all(&mut pending, || Error::ConnectionLost {
        node: shared.addr,
        in_flight,
        why: why.clone(),
    });
    shared.lost.borrow_mut().push(why);
    Ended::Lost { replied }
}

/// Reply lines. tokio-util's `LinesCodec` (and overlap's, the same) hands over an
/// unterminated last line at the end of the stream as if it were whole: a reply cut in the
/// middle (`$val` of `$value`) would be taken for a shorter value. Here it is an error.
struct ReplyCodec(LinesCodec);

impl Decoder for ReplyCodec {
    type Item = String;
    type Error = LinesCodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<String>, LinesCodecError> {
        self.0.decode(src)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<String>, LinesCodecError> {
        match self.0.decode(src)? {
            Some(line) => Ok(Some(line)),
            None if src.is_empty() => Ok(None),
            None => Err(LinesCodecError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("the stream ended {} bytes into a reply", src.len()),
            ))),
        }
    }
}

fn fail_all(pending: &mut VecDeque<Pending>, err: impl Fn() -> Error) {
    for p in pending.drain(..) {
        let _ = p.reply.send(Err(err()));
    }
}

fn far() -> Instant {
    time::now() + std::time::Duration::from_secs(365 * 24 * 3600)
}
