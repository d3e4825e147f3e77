//! The lock-step both sides run: send a packet, wait for the answer it calls for, send it
//! again on each timeout, up to a number of tries; packets from another address (a wrong
//! TID) are answered with ERROR 5 and change nothing.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use overlap::net::UdpSocket;
use overlap::time::{timeout_at, Instant};

use crate::wire::{self, Packet};

/// Why a transfer ended early (the fields are read through `Debug`, in test failures).
#[allow(dead_code)]
#[derive(Debug)]
pub enum Fail {
    /// No answer after every retransmission.
    TimedOut,
    /// The peer sent ERROR.
    Remote(u16, String),
    /// The peer sent something the protocol does not allow here (ERROR 4 was sent back).
    Illegal(String),
    /// This side refused the transfer with this ERROR.
    Refused(u16, String),
    Io(io::Error),
}

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Fail {
        Fail::Io(e)
    }
}

/// What the side waiting makes of a packet from its peer.
pub enum Step<T> {
    /// The answer waited for.
    Done(T),
    /// A duplicate of what came before (a retransmission): ignored, with no resend. A
    /// sender resending DATA for each duplicate ACK doubles every packet from then on (the
    /// Sorcerer's Apprentice bug).
    Stale,
    /// A duplicate DATA: the ACK sent last was lost, and is sent again.
    Resend,
    /// Not allowed here.
    Illegal(String),
}

#[derive(Default)]
pub struct Counters {
    pub retransmits: Cell<u32>,
    pub strangers: Cell<u32>,
    pub lost_on_purpose: Cell<u32>,
}

pub struct Link<'a> {
    pub sock: &'a UdpSocket,
    pub peer: SocketAddr,
    pub timeout: Duration,
    pub retries: u32,
    /// Drops every n-th packet sent or received, on purpose (the lossy client).
    pub lossy: Option<u32>,
    pub counters: &'a Counters,
    seen: Cell<u32>,
}

impl<'a> Link<'a> {
    pub fn new(
        sock: &'a UdpSocket,
        peer: SocketAddr,
        timeout: Duration,
        retries: u32,
        counters: &'a Counters,
    ) -> Link<'a> {
        Link {
            sock,
            peer,
            timeout,
            retries,
            lossy: None,
            counters,
            seen: Cell::new(0),
        }
    }

    fn lose(&self) -> bool {
        let Some(every) = self.lossy else {
            return false;
        };
        self.seen.set(self.seen.get() + 1);
        let lost = self.seen.get() % every == 0;
        if lost {
            bump(&self.counters.lost_on_purpose);
        }
        lost
    }

    pub async fn send(&self, packet: &[u8]) -> io::Result<()> {
        if !self.lose() {
            self.sock.send_to(packet, self.peer).await?;
        }
        Ok(())
    }

    /// Tells the peer why the transfer ends (not retransmitted, as RFC 1350 says).
    pub async fn send_error(&self, code: u16, msg: &str) {
        let _ = self.sock.send_to(&wire::error(code, msg), self.peer).await;
    }

    /// Sends `out`, then waits for the packet `accept` takes, sending `out` again each time
    /// the timeout passes with none, up to `retries` times. `buf` must hold one byte more
    /// than the longest packet allowed, so a longer one is seen as such.
    pub async fn exchange<T>(
        &self,
        out: &[u8],
        buf: &mut [u8],
        mut accept: impl FnMut(Packet) -> Step<T>,
    ) -> Result<T, Fail> {
        self.send(out).await?;
        let mut tries = 0;
        let mut deadline = Instant::now() + self.timeout;
        loop {
            let (n, from) = match timeout_at(deadline, self.sock.recv_from(buf)).await {
                Ok(got) => got?,
                Err(_) => {
                    tries += 1;
                    if tries > self.retries {
                        return Err(Fail::TimedOut);
                    }
                    bump(&self.counters.retransmits);
                    self.send(out).await?;
                    deadline = Instant::now() + self.timeout;
                    continue;
                }
            };
            if from != self.peer {
                bump(&self.counters.strangers);
                let msg = wire::error(wire::UNKNOWN_TID, "unknown transfer ID");
                let _ = self.sock.send_to(&msg, from).await;
                continue;
            }
            if self.lose() {
                continue;
            }
            if n == buf.len() {
                return Err(self.illegal("a packet longer than the block size").await);
            }
            let packet = match wire::parse(&buf[..n]) {
                Ok(Packet::Error(code, msg)) => return Err(Fail::Remote(code, msg)),
                Ok(p) => p,
                Err(why) => return Err(self.illegal(why).await),
            };
            match accept(packet) {
                Step::Done(t) => return Ok(t),
                Step::Stale => {}
                Step::Resend => self.send(out).await?,
                Step::Illegal(why) => return Err(self.illegal(&why).await),
            }
        }
    }

    async fn illegal(&self, why: &str) -> Fail {
        self.send_error(wire::ILLEGAL, why).await;
        Fail::Illegal(why.to_string())
    }

    /// After the last ACK: answers a repeat of the last DATA (its ACK was lost) for two
    /// timeouts, so the peer does not give the transfer up as failed.
    pub async fn dally(&self, last_ack: &[u8], last_block: u16, buf: &mut [u8]) {
        let until = Instant::now() + self.timeout * 2;
        while let Ok(Ok((n, from))) = timeout_at(until, self.sock.recv_from(buf)).await {
            if from != self.peer || self.lose() {
                continue;
            }
            if let Ok(Packet::Data(b, _)) = wire::parse(&buf[..n]) {
                if b == last_block {
                    let _ = self.send(last_ack).await;
                }
            }
        }
    }
}

pub fn bump(c: &Cell<u32>) {
    c.set(c.get() + 1);
}
