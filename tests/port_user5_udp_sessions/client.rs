//! The tests' client: one socket, a session, retries where a burst may lose a datagram.

use std::collections::HashSet;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use overlap::net::UdpSocket;
use overlap::time;

use super::support::{settle, within};
use super::wire::*;

const HANG: Duration = Duration::from_secs(20);
/// How long a client waits before sending again (on a running clock).
const RETRY: Duration = Duration::from_millis(100);
const ATTEMPTS: usize = 100;

/// A client of the service: one socket, its session id, its sequence numbers.
pub struct Client {
    pub sock: UdpSocket,
    pub server: SocketAddr,
    pub id: u32,
    pub next_seq: u32,
    /// The server's sequence numbers already taken, to tell retransmitted copies.
    seen: HashSet<u32>,
}

impl Client {
    /// A socket on the server's loopback address, not yet in a session.
    pub async fn bind(server: SocketAddr) -> Client {
        let local = if server.is_ipv6() {
            "[::1]:0"
        } else {
            "127.0.0.1:0"
        };
        Client {
            sock: UdpSocket::bind(local).await.unwrap(),
            server,
            id: 0,
            next_seq: 1,
            seen: HashSet::new(),
        }
    }

    /// A client in a session: `HELLO`, then the `WELCOME` (the `HELLO` sent again while
    /// none comes: a burst of peers overflows the server's receive buffer).
    pub async fn connect(server: SocketAddr) -> Client {
        let mut c = Client::bind(server).await;
        for _ in 0..ATTEMPTS {
            c.send(HELLO, 0, b"hi").await;
            if let Ok((kind, id, _)) = time::timeout(RETRY, c.recv()).await {
                assert_eq!(kind, WELCOME);
                c.id = id;
                return c;
            }
        }
        panic!("no WELCOME");
    }

    pub async fn send(&self, kind: u8, num: u32, payload: &[u8]) {
        let d = encode(kind, num, payload);
        assert_eq!(self.sock.send_to(&d, self.server).await.unwrap(), d.len());
    }

    pub async fn recv(&self) -> (u8, u32, Vec<u8>) {
        let mut buf = [0u8; MAX_DATAGRAM + 1];
        let (n, from) = within(HANG, self.sock.recv_from(&mut buf), "no datagram")
            .await
            .unwrap();
        assert_eq!(from, self.server);
        let (kind, num, payload) = decode(&buf[..n]).expect("a header");
        (kind, num, payload.to_vec())
    }

    /// A datagram if one is queued now.
    pub fn try_recv(&self) -> Option<(u8, u32, Vec<u8>)> {
        let mut buf = [0u8; MAX_DATAGRAM + 1];
        match self.sock.try_recv_from(&mut buf) {
            Ok((n, _)) => {
                let (kind, num, payload) = decode(&buf[..n]).expect("a header");
                Some((kind, num, payload.to_vec()))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
            Err(e) => panic!("{e}"),
        }
    }

    /// Everything queued now, after letting the service's tasks run.
    pub async fn drain(&self) -> Vec<(u8, u32, Vec<u8>)> {
        settle().await;
        std::iter::from_fn(|| self.try_recv()).collect()
    }

    /// Sends `payload` reliably; returns the server's reliable answer (echo or relay),
    /// acknowledged.
    pub async fn exchange(&mut self, payload: &[u8]) -> Vec<u8> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut acked = false;
        for _ in 0..ATTEMPTS {
            if !acked {
                self.send(DATA, seq, payload).await;
            }
            while let Ok(got) = time::timeout(RETRY, self.recv()).await {
                match got {
                    (ACK, n, _) if n == seq => acked = true,
                    // Answers to a repeated `HELLO`, or repeated acks.
                    (WELCOME | ACK, ..) => {}
                    (DATA, n, body) => {
                        self.send(ACK, n, b"").await;
                        if self.seen.insert(n) {
                            return body;
                        }
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        panic!("no answer to {seq}");
    }

    /// Ends the session: `BYE` until one comes back.
    pub async fn bye(&self) {
        for _ in 0..ATTEMPTS {
            self.send(BYE, 0, b"").await;
            while let Ok(got) = time::timeout(RETRY, self.recv()).await {
                if got.0 == BYE {
                    return;
                }
            }
        }
        panic!("no BYE");
    }

    /// The next new reliable message from the server, acknowledged.
    pub async fn take_data(&mut self) -> Vec<u8> {
        loop {
            if let (DATA, n, body) = self.recv().await {
                self.send(ACK, n, b"").await;
                if self.seen.insert(n) {
                    return body;
                }
            }
        }
    }
}
