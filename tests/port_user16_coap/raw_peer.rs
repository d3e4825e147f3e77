//! The tests' hand-driven peer: a plain `UdpSocket` that sends exact bytes or messages
//! and receives datagrams with the instant (on the paused clock) each arrived, to play a
//! server that stays silent or answers late, or a client that retransmits by hand.

use std::net::SocketAddr;
use std::time::Duration;

use overlap::codec::BytesMut;
use overlap::net::UdpSocket;
use overlap::time::{self, Instant};

use super::codec::{parse, write};
use super::message::Message;
use crate::support::within;

pub struct RawPeer {
    pub sock: UdpSocket,
    pub addr: SocketAddr,
}

impl RawPeer {
    pub async fn bind(host: &str) -> RawPeer {
        let sock = UdpSocket::bind((host, 0)).await.unwrap();
        let addr = sock.local_addr().unwrap();
        RawPeer { sock, addr }
    }

    pub async fn send_bytes(&self, bytes: &[u8], to: SocketAddr) {
        assert_eq!(self.sock.send_to(bytes, to).await.unwrap(), bytes.len());
    }

    pub async fn send(&self, msg: &Message, to: SocketAddr) {
        self.send_bytes(&encode(msg), to).await;
    }

    /// The next datagram's bytes, sender and arrival instant.
    pub async fn recv_bytes(&self) -> (Vec<u8>, SocketAddr, Instant) {
        let mut buf = vec![0u8; 65536];
        let (n, from) = within(
            Duration::from_secs(3600),
            self.sock.recv_from(&mut buf),
            "a datagram at the raw peer",
        )
        .await
        .unwrap();
        buf.truncate(n);
        (buf, from, time::now())
    }

    /// The next datagram, which must be a well-formed message.
    pub async fn recv(&self) -> (Message, SocketAddr, Instant) {
        let (bytes, from, at) = self.recv_bytes().await;
        (parse(&bytes).expect("well formed"), from, at)
    }

    /// Whether a datagram is waiting (without waiting for one).
    pub fn has_datagram(&self) -> bool {
        let mut buf = [0u8; 1];
        self.sock.try_peek_from(&mut buf).is_ok()
    }
}

pub fn encode(msg: &Message) -> Vec<u8> {
    let mut buf = BytesMut::new();
    write(msg, &mut buf).unwrap();
    buf.to_vec()
}
