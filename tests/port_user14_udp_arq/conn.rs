//! The connection: its settings, its stats, and the app's handle (`Conn`), which talks to
//! the driver task (`driver.rs`) through a command channel and a little shared state.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use overlap::net::UdpSocket;
use overlap::sync::{mpsc, oneshot, Notify};
use overlap::task::JoinHandle;

use super::driver::Driver;

#[derive(Clone, Debug)]
pub struct Config {
    /// The largest payload of a DATA packet.
    pub mss: usize,
    /// At most this many packets unacknowledged.
    pub window: u32,
    /// The receive buffer: bytes delivered in order that the app has not read yet.
    pub rcv_cap: usize,
    /// Retransmissions of one packet before the connection is declared dead.
    pub max_retries: u32,
    pub initial_rto: Duration,
    pub min_rto: Duration,
    pub max_rto: Duration,
    /// A PING after this long without sending anything.
    pub keepalive: Duration,
    /// The connection fails after this long without hearing from the peer.
    pub idle: Duration,
    /// How long a closed connection stays to answer a retransmitted FIN.
    pub linger: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            mss: 1024,
            window: 32,
            rcv_cap: 64 * 1024,
            max_retries: 8,
            initial_rto: Duration::from_secs(1),
            min_rto: Duration::from_millis(200),
            max_rto: Duration::from_secs(60),
            keepalive: Duration::from_secs(5),
            idle: Duration::from_secs(30),
            linger: Duration::from_secs(10),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// DATA and FIN packets sent for the first time.
    pub first_sends: u64,
    pub rto_retransmits: u64,
    pub fast_retransmits: u64,
    pub acks_sent: u64,
    /// ACKs sent because the app's read opened the window.
    pub window_updates: u64,
    pub pings_sent: u64,
    /// DATA or FIN already received (a duplicate or a needless retransmission).
    pub dup_data: u64,
    /// DATA that came ahead of a gap (lost or reordered before it), kept for later.
    pub reordered: u64,
    /// DATA beyond the receive window, dropped.
    pub out_of_window: u64,
    /// Short, of no known type, a bad body, or an ACK of what was never sent.
    pub malformed: u64,
    pub wrong_conn: u64,
    /// The most packets ever unacknowledged at once.
    pub max_in_flight: u32,
    /// Every retransmission timer armed: (seq, its timeout read back from the queue).
    pub armed: Vec<(u32, Duration)>,
    pub srtt: Option<Duration>,
    pub rto: Duration,
}

impl Stats {
    pub fn retransmits(&self) -> u64 {
        self.rto_retransmits + self.fast_retransmits
    }
}

/// What the app and the driver share.
#[derive(Default)]
pub struct Shared {
    pub inbox: RefCell<VecDeque<u8>>,
    pub eof: Cell<bool>,
    pub error: RefCell<Option<(io::ErrorKind, String)>>,
    /// Driver to app: bytes, the end or an error.
    pub readable: Notify,
    /// App to driver: bytes were read, the window may have opened.
    pub taken: Notify,
    pub stats: RefCell<Stats>,
    pub in_flight: Cell<u32>,
    /// `close` was called: a send after it is refused, whether or not the driver is
    /// still there to say so.
    pub close_called: Cell<bool>,
}

impl Shared {
    pub fn err(&self) -> io::Error {
        match &*self.error.borrow() {
            Some((kind, msg)) => io::Error::new(*kind, msg.clone()),
            None => io::Error::new(io::ErrorKind::NotConnected, "the connection is closed"),
        }
    }
}

pub fn after_close(len: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        format!("send of {len} bytes after close"),
    )
}

pub type Reply = oneshot::Sender<io::Result<()>>;

pub enum Cmd {
    Send(Vec<u8>, Reply),
    Close(Reply),
}

/// The app's end of a connection.
pub struct Conn {
    cmds: mpsc::Sender<Cmd>,
    shared: Rc<Shared>,
    driver: JoinHandle<()>,
}

impl Conn {
    /// Starts the driver on `sock`, already connected to the peer (or the relay).
    pub fn start(sock: UdpSocket, conn: u32, cfg: Config) -> Conn {
        let shared = Rc::new(Shared::default());
        let (cmds, rx) = mpsc::channel(8);
        shared.stats.borrow_mut().rto = cfg.initial_rto;
        let driver = Driver::new(sock, conn, cfg, shared.clone());
        Conn {
            cmds,
            shared,
            driver: overlap::spawn(driver.run(rx)),
        }
    }

    /// Sends all of `data`: returns once every byte is in a packet sent (waiting while the
    /// window is full), or the connection's error.
    pub async fn send(&self, data: &[u8]) -> io::Result<()> {
        if self.shared.error.borrow().is_some() {
            return Err(self.shared.err());
        }
        if self.shared.close_called.get() {
            return Err(after_close(data.len()));
        }
        let (tx, rx) = oneshot::channel();
        if self.cmds.send(Cmd::Send(data.to_vec(), tx)).await.is_err() {
            return Err(self.shared.err());
        }
        rx.await.unwrap_or_else(|_| Err(self.shared.err()))
    }

    /// Reads what has arrived in order: `Ok(0)` after the peer's FIN, once all is read.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            {
                let mut inbox = self.shared.inbox.borrow_mut();
                if !inbox.is_empty() {
                    let n = buf.len().min(inbox.len());
                    for (b, byte) in buf.iter_mut().zip(inbox.drain(..n)) {
                        *b = byte;
                    }
                    self.shared.taken.notify_one();
                    return Ok(n);
                }
            }
            if self.shared.eof.get() {
                return Ok(0);
            }
            if self.shared.error.borrow().is_some() {
                return Err(self.shared.err());
            }
            self.shared.readable.notified().await;
        }
    }

    /// Reads until the peer's FIN.
    pub async fn recv_to_end(&self) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = vec![0; 3000];
        loop {
            match self.recv(&mut buf).await? {
                0 => return Ok(out),
                n => out.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// Sends a FIN after everything queued: returns once the peer has acknowledged it.
    pub async fn close(&self) -> io::Result<()> {
        self.shared.close_called.set(true);
        let (tx, rx) = oneshot::channel();
        if self.cmds.send(Cmd::Close(tx)).await.is_err() {
            return Err(self.shared.err());
        }
        rx.await.unwrap_or_else(|_| Err(self.shared.err()))
    }

    pub fn stats(&self) -> Stats {
        self.shared.stats.borrow().clone()
    }

    /// Packets sent and not yet acknowledged.
    pub fn in_flight(&self) -> u32 {
        self.shared.in_flight.get()
    }

    /// Bytes received in order and not read yet.
    pub fn unread(&self) -> usize {
        self.shared.inbox.borrow().len()
    }

    /// Waits for the driver to end (both FINs through and the linger over, or a failure),
    /// giving the last stats.
    pub async fn finished(self) -> Stats {
        let Conn {
            cmds,
            shared,
            driver,
        } = self;
        driver.await.unwrap();
        drop(cmds);
        let stats = shared.stats.borrow().clone();
        stats
    }
}
