//! The line to the Graphite backend: a bounded outbox (the oldest lines dropped, and
//! counted, when it is full) and a writer task that connects, reconnects with backoff when
//! the connection drops, and writes the outbox out in chunks, each taken off only once
//! written whole (a chunk cut by a dropped connection goes again on the next one).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpSocket, TcpStream};
use overlap::sync::Notify;
use overlap::time::sleep;

/// Lines in one write.
pub const CHUNK: usize = 256;

pub struct Outbox {
    lines: VecDeque<String>,
    /// The sequence number of `lines[0]`.
    front: u64,
    bound: usize,
    pub dropped: u64,
    /// Set after the last flush: the writer ends once the outbox is empty (or it cannot
    /// connect).
    pub closing: bool,
}

impl Outbox {
    pub fn new(bound: usize) -> Outbox {
        Outbox {
            lines: VecDeque::new(),
            front: 0,
            bound,
            dropped: 0,
            closing: false,
        }
    }

    pub fn push(&mut self, lines: Vec<String>) {
        for line in lines {
            if self.lines.len() == self.bound {
                self.lines.pop_front();
                self.front += 1;
                self.dropped += 1;
            }
            self.lines.push_back(line);
        }
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Up to `CHUNK` lines from the front, newline-terminated, and the sequence number
    /// just past them.
    fn chunk(&self) -> (String, u64) {
        let n = self.lines.len().min(CHUNK);
        let mut text = String::new();
        for line in self.lines.iter().take(n) {
            text.push_str(line);
            text.push('\n');
        }
        (text, self.front + n as u64)
    }

    /// Takes off the lines before sequence number `end` still here (some may have been
    /// dropped while they were written).
    fn written(&mut self, end: u64) {
        while self.front < end && self.lines.pop_front().is_some() {
            self.front += 1;
        }
    }
}

/// What the writer shares with the rest of the server.
pub struct Link {
    pub outbox: RefCell<Outbox>,
    pub wake: Notify,
    pub connects: Cell<u64>,
    pub connect_failures: Cell<u64>,
    pub lost_connections: Cell<u64>,
}

impl Link {
    pub fn new(bound: usize) -> Link {
        Link {
            outbox: RefCell::new(Outbox::new(bound)),
            wake: Notify::new(),
            connects: Cell::new(0),
            connect_failures: Cell::new(0),
            lost_connections: Cell::new(0),
        }
    }
}

/// Where and how the writer connects.
#[derive(Clone, Debug)]
pub struct Dial {
    pub addr: SocketAddr,
    /// The reconnect backoff: first wait, and the most it doubles to.
    pub backoff: (Duration, Duration),
    /// `SO_SNDBUF`, if set: a small one keeps what a stalled backend has not read in the
    /// outbox (bounded, counted) rather than in the kernel.
    pub send_buffer: Option<u32>,
}

async fn connect(dial: &Dial) -> io::Result<TcpStream> {
    let Some(size) = dial.send_buffer else {
        return TcpStream::connect(dial.addr).await;
    };
    let socket = if dial.addr.is_ipv6() {
        TcpSocket::new_v6()?
    } else {
        TcpSocket::new_v4()?
    };
    socket.set_send_buffer_size(size)?;
    socket.connect(dial.addr).await
}

/// The writer task: runs until the outbox is closing and empty, or closing with no
/// connection to be had.
pub async fn writer(link: Rc<Link>, dial: Dial) {
    let backoff = dial.backoff;
    let mut wait = backoff.0;
    loop {
        let stream = match connect(&dial).await {
            Ok(s) => s,
            Err(_) => {
                link.connect_failures.set(link.connect_failures.get() + 1);
                if link.outbox.borrow().closing {
                    return;
                }
                overlap::select! {
                    _ = sleep(wait) => {}
                    // A shutdown needs no more waiting: one more try, then give up.
                    _ = closed(&link) => {}
                }
                wait = (wait * 2).min(backoff.1);
                continue;
            }
        };
        wait = backoff.0;
        link.connects.set(link.connects.get() + 1);
        let _ = stream.set_nodelay(true);
        let (mut rd, mut wr) = stream.into_split();
        let mut peek = [0u8; 64];
        loop {
            let (text, end) = link.outbox.borrow().chunk();
            if text.is_empty() {
                if link.outbox.borrow().closing {
                    let _ = wr.close().await;
                    return;
                }
                overlap::select! {
                    _ = link.wake.notified() => continue,
                    // Graphite never writes: a read that ends is the backend gone.
                    n = rd.read(&mut peek) => if matches!(n, Ok(0) | Err(_)) { break },
                }
            } else {
                overlap::select! {
                    r = wr.write_all(text.as_bytes()) => match r {
                        Ok(()) => link.outbox.borrow_mut().written(end),
                        Err(_) => break,
                    },
                    n = rd.read(&mut peek) => if matches!(n, Ok(0) | Err(_)) { break },
                }
            }
        }
        link.lost_connections.set(link.lost_connections.get() + 1);
    }
}

/// Waits until the outbox is closing.
async fn closed(link: &Link) {
    while !link.outbox.borrow().closing {
        link.wake.notified().await;
    }
}
