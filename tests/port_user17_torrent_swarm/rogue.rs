//! The tests' scripted peers: a raw connection speaking the wire through the same codec,
//! which can send anything (a bad frame, a lie, half a message) and see what comes back.

use std::io;
use std::net::SocketAddr;

use overlap::codec::Framed;
use overlap::io::AsyncWriteExt;
use overlap::net::{TcpListener, TcpStream};
use overlap::sink::SinkExt;
use overlap::stream::StreamExt;

use super::wire::{to_bitfield, Meta, Msg, WireCodec};
use super::HANG;
use crate::support::within;

pub struct Rogue {
    pub frames: Framed<TcpStream, WireCodec>,
    /// Every message received, in order (for a failure's message).
    pub log: Vec<Msg>,
}

impl Rogue {
    /// Connects to a node and handshakes for `meta` (or any info-hash given).
    pub async fn connect(addr: SocketAddr, info_hash: u64, peer_id: u64) -> Rogue {
        let stream = TcpStream::connect(addr).await.unwrap();
        Rogue::over(stream, info_hash, peer_id).await
    }

    /// Accepts a node's connection and handshakes.
    pub async fn accept(listener: &TcpListener, info_hash: u64, peer_id: u64) -> Rogue {
        let (stream, _) = listener.accept().await.unwrap();
        Rogue::over(stream, info_hash, peer_id).await
    }

    async fn over(stream: TcpStream, info_hash: u64, peer_id: u64) -> Rogue {
        stream.set_nodelay(true).unwrap();
        let mut rogue = Rogue {
            frames: Framed::new(stream, WireCodec),
            log: Vec::new(),
        };
        rogue.send(Msg::Handshake { info_hash, peer_id }).await;
        rogue
    }

    /// A rogue that holds every piece: bitfield, then unchoke.
    pub async fn seed_like(&mut self, meta: &Meta) {
        self.send(Msg::Bitfield(to_bitfield(&vec![true; meta.pieces()])))
            .await;
        self.send(Msg::Unchoke).await;
    }

    pub async fn send(&mut self, msg: Msg) {
        self.frames.send(msg).await.unwrap();
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.frames.get_mut().write_all(bytes).await.unwrap();
    }

    /// The next message, `None` at the end (or a reset); panics if nothing comes (on the
    /// paused clock: when nothing else is left to happen).
    pub async fn next(&mut self) -> Option<Msg> {
        let what = format!("a message after {:?}", self.log);
        match within(HANG, self.frames.next(), &what).await {
            Some(Ok(m)) => {
                self.log.push(m.clone());
                Some(m)
            }
            Some(Err(e)) => {
                assert_ne!(e.kind(), io::ErrorKind::InvalidData, "{e}");
                None
            }
            None => None,
        }
    }

    /// Reads until the node closes the connection; the messages on the way.
    pub async fn until_closed(&mut self) -> Vec<Msg> {
        let mut seen = Vec::new();
        while let Some(m) = self.next().await {
            seen.push(m);
        }
        seen
    }

    /// Reads messages until `pick` takes one; panics at the end of the stream.
    pub async fn until<T>(&mut self, mut pick: impl FnMut(&Msg) -> Option<T>) -> T {
        loop {
            let m = self.next().await.expect("the node closed the connection");
            if let Some(t) = pick(&m) {
                return t;
            }
        }
    }
}
