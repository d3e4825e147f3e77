//! A peer: its rendezvous socket, connected to the server, on which it registers, keeps
//! itself alive and hears introductions and relayed datagrams (a task per peer); and the
//! direct link to another peer, a UDP socket `connect()`ed to the address the server
//! introduced, which falls back to the server's relay when the kernel says the other's
//! port is closed.

use std::cell::{Cell, RefCell};
use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use overlap::net::UdpSocket;
use overlap::sync::mpsc;
use overlap::task::AbortOnDropHandle;
use overlap::time;

use crate::proto::{decode_addr, Kind, Packet, MAX_DATAGRAM};

#[derive(Clone, Debug)]
pub struct PeerConfig {
    pub keepalive: Duration,
    /// How long a registration waits for its answer before it is sent again...
    pub retry: Duration,
    /// ...and how many times it is sent in all.
    pub attempts: u32,
}

impl Default for PeerConfig {
    fn default() -> PeerConfig {
        PeerConfig {
            keepalive: Duration::from_secs(3),
            retry: Duration::from_secs(1),
            attempts: 4,
        }
    }
}

/// What a peer's task saw.
#[derive(Debug, Default)]
pub struct PeerStats {
    pub keepalives_sent: Cell<u64>,
    /// `ConnectionRefused` on the rendezvous socket: the server's port closed.
    pub server_refused: Cell<u64>,
    pub foreign: Cell<u64>,
}

pub struct Peer {
    pub socket: Rc<UdpSocket>,
    pub room: String,
    pub token: u32,
    pub members: u16,
    pub stats: Rc<PeerStats>,
    /// While set, the task sends no keepalives (the peer "went silent").
    pub silent: Rc<Cell<bool>>,
    intros: RefCell<mpsc::UnboundedReceiver<SocketAddr>>,
    relayed: RefCell<mpsc::UnboundedReceiver<Vec<u8>>>,
    /// Dropped with the peer, or with a `join` given up half-way, it aborts the task
    /// (a plain `JoinHandle` would leave it running, holding the socket).
    _task: AbortOnDropHandle<()>,
}

impl Peer {
    /// Registers in `room` with `token` from a new socket beside `server`, announcing
    /// `direct_port` (0: this socket) as where the others reach it, and waits for the
    /// server's answer, sending again on silence: `TimedOut` when none comes.
    pub async fn join(
        server: SocketAddr,
        room: &str,
        token: u32,
        direct_port: u16,
        cfg: PeerConfig,
    ) -> io::Result<Peer> {
        let host = if server.is_ipv4() { "127.0.0.1" } else { "::1" };
        let socket = Rc::new(UdpSocket::bind((host, 0)).await?);
        socket.connect(server).await?;
        let (intro_tx, intros) = mpsc::unbounded_channel();
        let (relay_tx, relayed) = mpsc::unbounded_channel();
        let (ack_tx, mut acks) = mpsc::unbounded_channel();
        let stats = Rc::new(PeerStats::default());
        // No keepalives before the server has taken the registration.
        let silent = Rc::new(Cell::new(true));
        let task = AbortOnDropHandle::new(overlap::spawn(run(
            socket.clone(),
            Packet::new(Kind::Keepalive, token, room, vec![]).encode(),
            cfg.keepalive,
            (intro_tx, relay_tx, ack_tx),
            stats.clone(),
            silent.clone(),
        )));
        let register = Packet::new(
            Kind::Register,
            token,
            room,
            direct_port.to_be_bytes().into(),
        );
        let register = register.encode();
        let mut members = None;
        for _ in 0..cfg.attempts {
            socket.send(&register).await?;
            if let Ok(Some(n)) = time::timeout(cfg.retry, acks.recv()).await {
                members = Some(n);
                break;
            }
        }
        let Some(members) = members else {
            let msg = format!("no answer to {} registrations for {room:?}", cfg.attempts);
            return Err(io::Error::new(ErrorKind::TimedOut, msg));
        };
        silent.set(false);
        Ok(Peer {
            socket,
            room: room.to_owned(),
            token,
            members,
            stats,
            silent,
            intros: RefCell::new(intros),
            relayed: RefCell::new(relayed),
            _task: task,
        })
    }

    /// The next peer the server introduced.
    pub async fn next_intro(&self) -> Option<SocketAddr> {
        // Borrowed for each poll only: two waiters would not panic.
        std::future::poll_fn(|cx| self.intros.borrow_mut().poll_recv(cx)).await
    }

    /// An introduction already there, without waiting.
    pub fn try_intro(&self) -> Option<SocketAddr> {
        self.intros.borrow_mut().try_recv().ok()
    }

    /// Has the server forward `payload` to the room's other members.
    pub async fn relay(&self, payload: &[u8]) -> io::Result<()> {
        let p = Packet::new(Kind::Relay, self.token, &self.room, payload.to_vec());
        self.socket.send(&p.encode()).await.map(drop)
    }

    /// The next datagram relayed to this peer.
    pub async fn next_relayed(&self) -> Option<Vec<u8>> {
        std::future::poll_fn(|cx| self.relayed.borrow_mut().poll_recv(cx)).await
    }

    pub fn try_relayed(&self) -> Option<Vec<u8>> {
        self.relayed.borrow_mut().try_recv().ok()
    }
}

type Outlets = (
    mpsc::UnboundedSender<SocketAddr>,
    mpsc::UnboundedSender<Vec<u8>>,
    mpsc::UnboundedSender<u16>,
);

async fn run(
    socket: Rc<UdpSocket>,
    keepalive: Vec<u8>,
    every: Duration,
    (intros, relayed, acks): Outlets,
    stats: Rc<PeerStats>,
    silent: Rc<Cell<bool>>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    let mut tick = time::interval_at(time::Instant::now() + every, every);
    loop {
        overlap::select! {
            _ = tick.tick() => {
                if !silent.get() && socket.send(&keepalive).await.is_ok() {
                    stats.keepalives_sent.set(stats.keepalives_sent.get() + 1);
                }
            }
            r = socket.recv(&mut buf) => {
                let n = match r {
                    Ok(n) => n,
                    Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                        stats.server_refused.set(stats.server_refused.get() + 1);
                        continue;
                    }
                    Err(e) => panic!("rendezvous socket: {e}"),
                };
                let Ok(p) = Packet::decode(&buf[..n]) else {
                    stats.foreign.set(stats.foreign.get() + 1);
                    continue;
                };
                match p.kind {
                    Kind::Registered => {
                        let _ = acks.send(u16::from_be_bytes([p.body[0], p.body[1]]));
                    }
                    Kind::Intro => {
                        let _ = intros.send(decode_addr(&p.body).unwrap());
                    }
                    Kind::Relayed => {
                        let _ = relayed.send(p.body);
                    }
                    _ => stats.foreign.set(stats.foreign.get() + 1),
                }
            }
        }
    }
}

/// A direct path to another peer, with the relay behind it.
pub struct DirectLink {
    pub socket: UdpSocket,
    /// `ConnectionRefused` errors seen, each once.
    pub refused: Cell<u32>,
    relaying: Cell<bool>,
}

impl DirectLink {
    /// `socket` (the peer's direct socket) connected to the introduced address.
    pub async fn open(socket: UdpSocket, to: SocketAddr) -> io::Result<DirectLink> {
        socket.connect(to).await?;
        Ok(DirectLink {
            socket,
            refused: Cell::new(0),
            relaying: Cell::new(false),
        })
    }

    pub fn relaying(&self) -> bool {
        self.relaying.get()
    }

    fn refused_now(&self) {
        self.refused.set(self.refused.get() + 1);
        self.relaying.set(true);
    }

    /// Sends directly, or through `peer`'s server once the other's port was refused.
    pub async fn send(&self, peer: &Peer, data: &[u8]) -> io::Result<()> {
        if !self.relaying.get() {
            match self.socket.send(data).await {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => self.refused_now(),
                Err(e) => return Err(e),
            }
        }
        peer.relay(data).await
    }

    /// The next datagram, from the other directly or through the relay.
    pub async fn recv(&self, peer: &Peer) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; MAX_DATAGRAM + 1];
        loop {
            overlap::select! {
                r = self.socket.recv(&mut buf), if !self.relaying.get() => match r {
                    Ok(n) => return Ok(buf[..n].to_vec()),
                    Err(e) if e.kind() == ErrorKind::ConnectionRefused => self.refused_now(),
                    Err(e) => return Err(e),
                },
                d = peer.next_relayed() => {
                    return d.ok_or_else(|| io::Error::from(ErrorKind::BrokenPipe));
                }
            }
        }
    }
}
