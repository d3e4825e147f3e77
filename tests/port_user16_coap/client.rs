//! The client: requests matched to their responses by token, many at once (at most
//! `nstart` outstanding, a `Semaphore`), a reader task taking every datagram through a
//! `UdpFramed` and handing each to its exchange, the requests sending through a second
//! `UdpFramed` over the same `Rc<UdpSocket>` behind a `Mutex`. A CON is retransmitted with
//! exponential backoff from a seeded first timeout until its ACK, then a separate response
//! is awaited; a response or notification for a token nobody waits for is answered with
//! RST (that is how a dropped observation deregisters); Block2 transfers fetch block by
//! block.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use overlap::net::UdpSocket;
use overlap::sink::SinkExt;
use overlap::stream::StreamExt;
use overlap::sync::{mpsc, Mutex, Semaphore};
use overlap::task::JoinHandle;
use overlap::time;
use overlap::udp::UdpFramed;

use super::codec::{CoapCodec, CoapError};
use super::message::{code, opt, Block, Message, Type};
use super::transmission::{Prng, Transmission};

#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub tx: Transmission,
    pub seed: u64,
    /// Outstanding requests at most (RFC 7252's NSTART).
    pub nstart: usize,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            tx: Transmission::default(),
            seed: 1,
            nstart: 64,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct ClientStats {
    pub transmissions: u64,
    pub retransmissions: u64,
    /// Malformed datagrams from the server.
    pub malformed: u64,
    pub socket_errors: u64,
    /// Datagrams from anyone but the server, well formed or not.
    pub strangers: u64,
    /// ACKs and RSTs for no exchange (late duplicates).
    pub unmatched: u64,
    pub rsts_sent: u64,
    /// CON responses and notifications acknowledged.
    pub acks_sent: u64,
}

#[derive(Debug)]
pub enum ClientError {
    /// No ACK after `transmissions` sendings of message `mid`.
    Timeout {
        mid: u16,
        transmissions: u32,
    },
    /// The server reset the request.
    Reset,
    /// Acknowledged (or sent NON), and then no response came.
    NoResponse,
    Protocol(String),
    Io(io::Error),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Timeout { mid, transmissions } => {
                write!(
                    f,
                    "message {mid} unacknowledged after {transmissions} sendings"
                )
            }
            ClientError::Reset => f.write_str("reset by the server"),
            ClientError::NoResponse => f.write_str("no response"),
            ClientError::Protocol(what) => write!(f, "protocol: {what}"),
            ClientError::Io(e) => write!(f, "socket: {e}"),
        }
    }
}

enum Event {
    Acked,
    Response(Message),
    Reset,
}

/// One notification of an observation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub seq: u32,
    pub payload: Vec<u8>,
}

struct State {
    rng: Prng,
    next_mid: u16,
    next_token: u32,
    /// A CON's message id, and its token, until its ACK.
    by_mid: HashMap<u16, Vec<u8>>,
    exchanges: HashMap<Vec<u8>, mpsc::UnboundedSender<Event>>,
    observations: HashMap<Vec<u8>, mpsc::UnboundedSender<Notification>>,
    /// CON responses acknowledged lately: a retransmission of one is acknowledged again.
    acked: VecDeque<u16>,
    stats: ClientStats,
}

struct Inner {
    server: SocketAddr,
    out: Mutex<UdpFramed<CoapCodec, Rc<UdpSocket>>>,
    tx: Transmission,
    nstart: Semaphore,
    st: RefCell<State>,
}

pub struct Client {
    inner: Rc<Inner>,
    reader: JoinHandle<()>,
    pub local: SocketAddr,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Takes an exchange out of the maps when its request ends or is dropped.
struct ExchangeGuard<'a> {
    inner: &'a Inner,
    token: Vec<u8>,
    mid: u16,
}

impl Drop for ExchangeGuard<'_> {
    fn drop(&mut self) {
        let mut st = self.inner.st.borrow_mut();
        st.exchanges.remove(&self.token);
        if st.by_mid.get(&self.mid) == Some(&self.token) {
            st.by_mid.remove(&self.mid);
        }
    }
}

impl Client {
    /// A client on `local` (`"127.0.0.1:0"`) talking to `server`.
    pub async fn bind(local: &str, server: SocketAddr, cfg: ClientConfig) -> io::Result<Client> {
        let socket = Rc::new(UdpSocket::bind(local).await?);
        let local = socket.local_addr()?;
        // Ids and tokens from a generator of their own: `Prng::new(seed)`'s draws are
        // the first timeouts alone.
        let mut ids = Prng::new(!cfg.seed);
        let inner = Rc::new(Inner {
            server,
            out: Mutex::new(UdpFramed::new(socket.clone(), CoapCodec)),
            tx: cfg.tx,
            nstart: Semaphore::new(cfg.nstart),
            st: RefCell::new(State {
                next_mid: ids.next() as u16,
                next_token: ids.next() as u32,
                rng: Prng::new(cfg.seed),
                by_mid: HashMap::new(),
                exchanges: HashMap::new(),
                observations: HashMap::new(),
                acked: VecDeque::new(),
                stats: ClientStats::default(),
            }),
        });
        let reader = overlap::spawn(read(inner.clone(), UdpFramed::new(socket, CoapCodec)));
        Ok(Client {
            inner,
            reader,
            local,
        })
    }

    pub fn stats(&self) -> ClientStats {
        self.inner.st.borrow().stats.clone()
    }

    /// Requests in progress and observations held.
    pub fn outstanding(&self) -> (usize, usize) {
        let st = self.inner.st.borrow();
        (st.exchanges.len(), st.observations.len())
    }

    pub async fn get(&self, path: &str) -> Result<Message, ClientError> {
        self.request(Message::request(Type::Con, code::GET, path, &[]))
            .await
    }

    pub async fn post(&self, path: &str, body: &[u8], con: bool) -> Result<Message, ClientError> {
        let t = if con { Type::Con } else { Type::Non };
        let req = Message::request(t, code::POST, path, &[]).with_payload(body);
        self.request(req).await
    }

    /// Sends `req` (its id and token filled in) and awaits its response.
    pub async fn request(&self, req: Message) -> Result<Message, ClientError> {
        let token = self.inner.token();
        self.exchange(req, token).await
    }

    async fn exchange(&self, mut req: Message, token: Vec<u8>) -> Result<Message, ClientError> {
        let inner = &*self.inner;
        let _permit = inner.nstart.acquire().await.expect("never closed");
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut wait = {
            let mut st = inner.st.borrow_mut();
            st.next_mid = st.next_mid.wrapping_add(1);
            req.mid = st.next_mid;
            req.token = token.clone();
            st.exchanges.insert(token.clone(), tx);
            if req.mtype == Type::Con {
                st.by_mid.insert(req.mid, token.clone());
            }
            inner.tx.initial_timeout(&mut st.rng)
        };
        let _guard = ExchangeGuard {
            inner,
            token,
            mid: req.mid,
        };
        if req.mtype == Type::Con {
            let mut sent = 0;
            loop {
                if sent > 0 {
                    inner.st.borrow_mut().stats.retransmissions += 1;
                }
                inner.send(req.clone()).await?;
                sent += 1;
                match time::timeout(wait, rx.recv()).await {
                    Ok(Some(Event::Response(resp))) => return Ok(resp),
                    Ok(Some(Event::Acked)) => break,
                    Ok(Some(Event::Reset)) => return Err(ClientError::Reset),
                    Ok(None) => unreachable!("the sender is in the map"),
                    Err(_) if sent > inner.tx.max_retransmit => {
                        return Err(ClientError::Timeout {
                            mid: req.mid,
                            transmissions: sent,
                        })
                    }
                    Err(_) => wait *= 2,
                }
            }
        } else {
            inner.send(req.clone()).await?;
        }
        match time::timeout(inner.tx.response_wait, rx.recv()).await {
            Ok(Some(Event::Response(resp))) => Ok(resp),
            Ok(Some(Event::Reset)) => Err(ClientError::Reset),
            _ => Err(ClientError::NoResponse),
        }
    }

    /// The whole of `path` through Block2, 1 KiB at a time; the body and the block count.
    pub async fn get_blockwise(&self, path: &str) -> Result<(Vec<u8>, u32), ClientError> {
        let mut body = Vec::new();
        let mut num = 0;
        loop {
            let want = Block {
                num,
                more: false,
                szx: 6,
            };
            let req = Message::request(Type::Con, code::GET, path, &[])
                .with_uint(opt::BLOCK2, want.to_uint());
            let resp = self.request(req).await?;
            if resp.code != code::CONTENT {
                return Err(ClientError::Protocol(format!(
                    "block {num}: {}",
                    code::dotted(resp.code)
                )));
            }
            let got = resp
                .block2()
                .ok_or_else(|| ClientError::Protocol(format!("block {num}: no Block2")))?;
            if got.num != num || (got.more && resp.payload.len() != got.size()) {
                return Err(ClientError::Protocol(format!("asked {num}, got {got:?}")));
            }
            body.extend_from_slice(&resp.payload);
            if !got.more {
                return Ok((body, num + 1));
            }
            num += 1;
        }
    }

    /// Registers as an observer of `path`: the first response, and the notifications.
    pub async fn observe(&self, path: &str) -> Result<Observation, ClientError> {
        let token = self.inner.token();
        let (tx, rx) = mpsc::unbounded_channel();
        self.inner
            .st
            .borrow_mut()
            .observations
            .insert(token.clone(), tx);
        // Dropped on an error (or if this future is): the token is forgotten.
        let obs = Observation {
            inner: self.inner.clone(),
            token: token.clone(),
            rx,
        };
        let req = Message::request(Type::Con, code::GET, path, &[]).with_uint(opt::OBSERVE, 0);
        let first = self.exchange(req, token).await?;
        Ok(obs.with_first(first))
    }
}

/// An observation; dropping it forgets the token, so the next notification is reset.
pub struct Observation {
    inner: Rc<Inner>,
    token: Vec<u8>,
    rx: mpsc::UnboundedReceiver<Notification>,
}

impl Observation {
    fn with_first(self, first: Message) -> Observation {
        let mut st = self.inner.st.borrow_mut();
        match first.uint(opt::OBSERVE) {
            // The first response is the first value: delivered as one.
            Some(seq) => {
                if let Some(tx) = st.observations.get(&self.token) {
                    let _ = tx.send(Notification {
                        seq,
                        payload: first.payload,
                    });
                }
            }
            // Not registered (the server is full): nothing will come.
            None => {
                st.observations.remove(&self.token);
            }
        }
        drop(st);
        self
    }

    pub async fn next(&mut self) -> Option<Notification> {
        self.rx.recv().await
    }

    pub fn registered(&self) -> bool {
        self.inner
            .st
            .borrow()
            .observations
            .contains_key(&self.token)
    }
}

impl Drop for Observation {
    fn drop(&mut self) {
        self.inner.st.borrow_mut().observations.remove(&self.token);
    }
}

impl Inner {
    fn token(&self) -> Vec<u8> {
        let mut st = self.st.borrow_mut();
        st.next_token = st.next_token.wrapping_add(1);
        st.next_token.to_be_bytes().to_vec()
    }

    async fn send(&self, msg: Message) -> Result<(), ClientError> {
        let res = self.out.lock().await.send((msg, self.server)).await;
        self.st.borrow_mut().stats.transmissions += 1;
        res.map_err(|e| match e {
            CoapError::Io(e) => ClientError::Io(e),
            CoapError::Format(e) => ClientError::Protocol(e.to_string()),
        })
    }

    async fn reply(&self, msg: Message) {
        let _ = self.out.lock().await.send((msg, self.server)).await;
    }
}

/// The reader task: every datagram to its exchange or observation.
async fn read(inner: Rc<Inner>, mut inbox: UdpFramed<CoapCodec, Rc<UdpSocket>>) {
    while let Some(got) = inbox.next().await {
        let (msg, from) = match got {
            Ok(got) => got,
            Err(CoapError::Format(_)) => {
                // The error carries no address; the framing knows whom it came from.
                let mut st = inner.st.borrow_mut();
                if inbox.last_sender() == Some(inner.server) {
                    st.stats.malformed += 1;
                } else {
                    st.stats.strangers += 1;
                }
                continue;
            }
            Err(CoapError::Io(_)) => {
                inner.st.borrow_mut().stats.socket_errors += 1;
                continue;
            }
        };
        if from != inner.server {
            inner.st.borrow_mut().stats.strangers += 1;
            continue;
        }
        let answer = deliver(&inner, msg);
        if let Some(answer) = answer {
            inner.reply(answer).await;
        }
    }
}

/// Hands `msg` over; the ACK or RST to send back, if any.
fn deliver(inner: &Inner, msg: Message) -> Option<Message> {
    let mut st = inner.st.borrow_mut();
    match msg.mtype {
        Type::Ack | Type::Rst => {
            // The ACK or RST ends the CON's transmission: the id is done with, and a
            // duplicate of it is unmatched.
            let token = st.by_mid.get(&msg.mid).cloned();
            let to = token
                .filter(|t| msg.code == code::EMPTY || *t == msg.token)
                .and_then(|t| st.exchanges.get(&t).cloned());
            let Some(to) = to else {
                st.stats.unmatched += 1;
                return None;
            };
            st.by_mid.remove(&msg.mid);
            let ev = match (msg.mtype, msg.code) {
                (Type::Rst, _) => Event::Reset,
                (_, code::EMPTY) => Event::Acked,
                _ => Event::Response(msg),
            };
            let _ = to.send(ev);
            None
        }
        Type::Con | Type::Non => {
            let ack = Message::empty(Type::Ack, msg.mid);
            if msg.mtype == Type::Con && st.acked.contains(&msg.mid) {
                return Some(ack);
            }
            let known = if let Some(to) = st.exchanges.get(&msg.token) {
                to.send(Event::Response(msg.clone())).is_ok()
            } else if let Some(to) = st.observations.get(&msg.token) {
                let seq = msg.uint(opt::OBSERVE).unwrap_or(0);
                to.send(Notification {
                    seq,
                    payload: msg.payload.clone(),
                })
                .is_ok()
            } else {
                false
            };
            if !known {
                st.stats.rsts_sent += 1;
                return Some(Message::empty(Type::Rst, msg.mid));
            }
            if msg.mtype != Type::Con {
                return None;
            }
            st.stats.acks_sent += 1;
            st.acked.push_back(msg.mid);
            if st.acked.len() > 64 {
                st.acked.pop_front();
            }
            Some(ack)
        }
    }
}
