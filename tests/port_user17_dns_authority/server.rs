//! The server: UDP through `UdpFramed` with the DNS codec, TCP (a 2-byte length before
//! each message, `LengthDelimitedCodec` in a `Framed`) on the same port number, a cap on
//! concurrent TCP clients and an idle timeout, per-source rate limiting on UDP, and the
//! zone reloaded from its file on a trigger (SIGHUP's stand-in), swapped whole.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::{Rc, Weak};
use std::time::Duration;

use overlap::codec::{Framed, LengthDelimitedCodec};
use overlap::net::{TcpListener, TcpStream, UdpSocket};
use overlap::sink::SinkExt;
use overlap::stream::StreamExt;
use overlap::sync::{mpsc, oneshot, CancellationToken, Semaphore};
use overlap::task::TaskTracker;
use overlap::udp::UdpFramed;

use crate::codec::{CodecError, DnsCodec};
use crate::limit::{RateLimit, RateLimiter, Verdict};
use crate::wire::{self, rcode, Malformed, Message};
use crate::zone::Zone;

/// The payload size the server advertises in its OPT, and the most it sends over UDP.
pub const SERVER_EDNS: u16 = 4096;

#[derive(Clone, Debug)]
pub struct Config {
    pub max_tcp_clients: usize,
    pub tcp_idle: Duration,
    pub rate: Option<RateLimit>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_tcp_clients: 16,
            tcp_idle: Duration::from_secs(10),
            rate: None,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub udp_queries: u64,
    pub udp_truncated: u64,
    pub formerr: u64,
    /// Datagrams with QR set: a response is never answered.
    pub responses_ignored: u64,
    /// Too short to carry an id: nothing to answer.
    pub unanswerable: u64,
    pub rate_dropped: u64,
    pub rate_slipped: u64,
    pub tcp_accepted: u64,
    pub tcp_refused: u64,
    pub tcp_queries: u64,
    pub tcp_idle_closed: u64,
    pub tcp_cut: u64,
    pub tcp_live: u64,
    pub reloads: u64,
    pub reload_failures: u64,
}

type Reply = oneshot::Sender<Result<u32, String>>;

pub struct Server {
    pub addr: SocketAddr,
    pub stats: Rc<RefCell<Stats>>,
    reload: mpsc::Sender<Reply>,
    token: CancellationToken,
    tracker: TaskTracker,
    pub udp: Weak<UdpSocket>,
    pub listener: Weak<TcpListener>,
}

/// What every task shares: the zone (swapped whole on reload) and the counters.
struct Shared {
    zone: RefCell<Rc<Zone>>,
    stats: Rc<RefCell<Stats>>,
}

impl Shared {
    fn count(&self, f: impl FnOnce(&mut Stats)) {
        f(&mut self.stats.borrow_mut());
    }
}

/// UDP on port 0, then TCP on the port it got (another until both are free).
async fn bind_both(host: &str) -> (UdpSocket, TcpListener) {
    for _ in 0..20 {
        let udp = UdpSocket::bind((host, 0)).await.unwrap();
        if let Ok(tcp) = TcpListener::bind(udp.local_addr().unwrap()).await {
            return (udp, tcp);
        }
    }
    panic!("no port free for both UDP and TCP on {host}");
}

impl Server {
    pub async fn start(host: &str, zone_file: PathBuf, cfg: Config) -> Result<Server, String> {
        let text = overlap::fs::read_to_string(&zone_file)
            .await
            .map_err(|e| e.to_string())?;
        let zone = Zone::parse(&text).map_err(|e| e.to_string())?;
        let (udp, tcp) = bind_both(host).await;
        let (udp, tcp) = (Rc::new(udp), Rc::new(tcp));
        let stats = Rc::new(RefCell::new(Stats::default()));
        let shared = Rc::new(Shared {
            zone: RefCell::new(Rc::new(zone)),
            stats: stats.clone(),
        });
        let (token, tracker) = (CancellationToken::new(), TaskTracker::new());
        let (reload, reloads) = mpsc::channel(4);
        let addr = udp.local_addr().unwrap();
        let server = Server {
            addr,
            stats,
            reload,
            token: token.clone(),
            tracker: tracker.clone(),
            udp: Rc::downgrade(&udp),
            listener: Rc::downgrade(&tcp),
        };
        let limiter = cfg.rate.map(RateLimiter::new);
        tracker.spawn(serve_udp(udp, shared.clone(), limiter, token.clone()));
        tracker.spawn(serve_tcp(
            tcp,
            shared.clone(),
            cfg,
            tracker.clone(),
            token.clone(),
        ));
        tracker.spawn(reloader(zone_file, shared, reloads, token));
        Ok(server)
    }

    /// Reloads the zone file: the new serial, or why the old zone stays.
    pub async fn reload(&self) -> Result<u32, String> {
        let (tx, rx) = oneshot::channel();
        self.reload.send(tx).await.map_err(|_| "server gone")?;
        rx.await.map_err(|_| "server gone")?
    }

    /// Stops every task and waits for them (connections included); the last counts.
    pub async fn shutdown(self) -> Stats {
        self.token.cancel();
        self.tracker.close();
        self.tracker.wait().await;
        let stats = self.stats.borrow().clone();
        stats
    }
}

async fn reloader(
    path: PathBuf,
    shared: Rc<Shared>,
    mut reloads: mpsc::Receiver<Reply>,
    token: CancellationToken,
) {
    while let Some(Some(reply)) = token.run_until_cancelled(reloads.recv()).await {
        let loaded = match overlap::fs::read_to_string(&path).await {
            Ok(text) => Zone::parse(&text).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let res = loaded.map(|zone| {
            let serial = zone.serial();
            // One assignment: a query sees the old zone or the new one, never a mix.
            *shared.zone.borrow_mut() = Rc::new(zone);
            serial
        });
        shared.count(|s| match res {
            Ok(_) => s.reloads += 1,
            Err(_) => s.reload_failures += 1,
        });
        let _ = reply.send(res);
    }
}

/// The answer to a decoded query (QR clear), for either transport.
fn respond(shared: &Shared, q: &Message) -> Message {
    let refusal = |code| Message {
        id: q.id,
        qr: true,
        opcode: q.opcode,
        rd: q.rd,
        rcode: code,
        questions: q.questions.clone(),
        ..Message::default()
    };
    let mut m = if q.opcode != 0 {
        refusal(rcode::NOTIMP)
    } else if q.questions.len() != 1 {
        refusal(rcode::FORMERR)
    } else {
        // The zone of this moment, held for the whole answer.
        let zone = shared.zone.borrow().clone();
        zone.answer(q)
    };
    if q.edns.is_some() {
        m.edns = Some(SERVER_EDNS);
    }
    if m.rcode == rcode::FORMERR {
        shared.count(|s| s.formerr += 1);
    }
    m
}

/// FORMERR for what failed to decode, if it was a query with an id to answer.
fn formerr(shared: &Shared, bad: &Malformed) -> Option<Vec<u8>> {
    match bad {
        Malformed { qr: true, .. } => shared.count(|s| s.responses_ignored += 1),
        Malformed { id: None, .. } => shared.count(|s| s.unanswerable += 1),
        Malformed { id: Some(id), .. } => {
            shared.count(|s| s.formerr += 1);
            return Some(wire::encode(&Message {
                id: *id,
                qr: true,
                rcode: rcode::FORMERR,
                ..Message::default()
            }));
        }
    }
    None
}

async fn serve_udp(
    socket: Rc<UdpSocket>,
    shared: Rc<Shared>,
    mut limiter: Option<RateLimiter>,
    token: CancellationToken,
) {
    let mut frames = UdpFramed::new(socket, DnsCodec);
    loop {
        let item = overlap::select! {
            _ = token.cancelled() => return,
            item = frames.next() => item,
        };
        let Some(item) = item else { return };
        let (reply, to) = match item {
            Ok((q, _)) if q.qr => {
                shared.count(|s| s.responses_ignored += 1);
                continue;
            }
            Ok((q, from)) => {
                shared.count(|s| s.udp_queries += 1);
                let verdict = limiter.as_mut().map_or(Verdict::Answer, |l| l.check(from));
                let m = respond(&shared, &q);
                let limit = q.edns.map_or(wire::CLASSIC_UDP, |size| {
                    (size as usize).clamp(wire::CLASSIC_UDP, SERVER_EDNS as usize)
                });
                let bytes = match verdict {
                    Verdict::Drop => {
                        shared.count(|s| s.rate_dropped += 1);
                        continue;
                    }
                    Verdict::Slip => {
                        shared.count(|s| s.rate_slipped += 1);
                        wire::encode(&wire::truncated(&m))
                    }
                    Verdict::Answer => {
                        let bytes = wire::encode_within(&m, limit);
                        // TC is bit 9 of the flags: 0x02 in the header's third byte.
                        if bytes[2] & 0x02 != 0 {
                            shared.count(|s| s.udp_truncated += 1);
                        }
                        bytes
                    }
                };
                (bytes, from)
            }
            Err(CodecError::Malformed(bad)) => {
                // The error carries no address: the datagram's sender is the framed's.
                let from = frames.last_sender().expect("a decode error has a sender");
                match formerr(&shared, &bad) {
                    Some(bytes) => (bytes, from),
                    None => continue,
                }
            }
            Err(CodecError::Io(_)) => continue,
        };
        if frames.send((reply, to)).await.is_err() {
            continue;
        }
    }
}

async fn serve_tcp(
    listener: Rc<TcpListener>,
    shared: Rc<Shared>,
    cfg: Config,
    tracker: TaskTracker,
    token: CancellationToken,
) {
    let slots = Rc::new(Semaphore::new(cfg.max_tcp_clients));
    loop {
        let accepted = overlap::select! {
            _ = token.cancelled() => return,
            r = listener.accept() => r,
        };
        let Ok((stream, _)) = accepted else { continue };
        match slots.clone().try_acquire_owned() {
            Ok(permit) => {
                shared.count(|s| {
                    s.tcp_accepted += 1;
                    s.tcp_live += 1;
                });
                let (shared, token) = (shared.clone(), token.clone());
                tracker.spawn(async move {
                    serve_connection(stream, &shared, cfg.tcp_idle, token).await;
                    shared.count(|s| s.tcp_live -= 1);
                    drop(permit);
                });
            }
            Err(_) => {
                // Over the cap: closed at once, the client retries elsewhere or later.
                shared.count(|s| s.tcp_refused += 1);
                drop(stream);
            }
        }
    }
}

async fn serve_connection(
    stream: TcpStream,
    shared: &Shared,
    idle: Duration,
    token: CancellationToken,
) {
    let mut frames: Framed<TcpStream, LengthDelimitedCodec> = LengthDelimitedCodec::builder()
        .length_field_length(2)
        .new_framed(stream);
    loop {
        let next = overlap::select! {
            _ = token.cancelled() => return,
            r = overlap::time::timeout(idle, frames.next()) => r,
        };
        let frame = match next {
            Err(_) => {
                shared.count(|s| s.tcp_idle_closed += 1);
                return;
            }
            Ok(None) => return,
            Ok(Some(Err(_))) => {
                // The peer went away inside a message.
                shared.count(|s| s.tcp_cut += 1);
                return;
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let reply = match wire::decode(&frame) {
            Ok(q) if q.qr => {
                shared.count(|s| s.responses_ignored += 1);
                continue;
            }
            Ok(q) => {
                shared.count(|s| s.tcp_queries += 1);
                wire::encode(&respond(shared, &q))
            }
            Err(bad) => match formerr(shared, &bad) {
                Some(bytes) => bytes,
                None => return,
            },
        };
        if frames.send(reply).await.is_err() {
            return;
        }
    }
}
