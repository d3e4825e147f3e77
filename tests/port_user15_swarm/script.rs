//! The tests' scripted peers: a raw connection to a node that handshakes (or not) and
//! then sends and reads exactly what a test says, to play a corrupt, slow, silent,
//! vanishing or malformed peer.

use std::io;
use std::net::SocketAddr;

use overlap::codec::Framed;
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::TcpStream;
use overlap::sink::SinkExt;
use overlap::stream::StreamExt;

use super::conn::{codec, Frames};
use super::proto::{self, Block, Meta, Msg, HANDSHAKE_LEN};

pub struct Script {
    pub frames: Frames,
}

/// A TCP connection to `addr`, nothing sent yet.
pub async fn raw(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Reads until the node closes the connection: what it sent before (its handshake, say).
pub async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    match stream.read_to_end(&mut got).await {
        Ok(_) => got,
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => got,
        Err(e) => panic!("read_to_close: {e}"),
    }
}

impl Script {
    /// Connects to the node at `addr` and handshakes as `peer_id` for `meta`; checks the
    /// node's handshake.
    pub async fn connect(addr: SocketAddr, meta: &Meta, peer_id: u64) -> Script {
        let mut stream = raw(addr).await;
        stream
            .write_all(&proto::handshake(meta.info_hash(), peer_id))
            .await
            .unwrap();
        let mut hs = [0u8; HANDSHAKE_LEN];
        stream.read_exact(&mut hs).await.unwrap();
        let (info, _) = proto::parse_handshake(&hs).unwrap();
        assert_eq!(info, meta.info_hash());
        Script {
            frames: Framed::new(stream, codec()),
        }
    }

    pub async fn send(&mut self, msg: Msg) {
        self.frames.send(msg.encode()).await.unwrap();
    }

    /// Bytes straight onto the socket (a bad length, half a frame).
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.frames.get_mut().write_all(bytes).await.unwrap();
    }

    /// The next message, `None` once the node closed the connection.
    pub async fn recv(&mut self) -> Option<Msg> {
        match self.frames.next().await? {
            Ok(frame) => Some(Msg::decode(&frame).unwrap()),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => None,
            Err(e) => panic!("script recv: {e}"),
        }
    }

    /// Messages until one `pick` takes (skipping haves and the like); panics at EOF.
    pub async fn until<T>(&mut self, mut pick: impl FnMut(&Msg) -> Option<T>) -> T {
        loop {
            let msg = self.recv().await.expect("the node closed the connection");
            if let Some(t) = pick(&msg) {
                return t;
            }
        }
    }

    pub async fn next_request(&mut self) -> Block {
        self.until(|m| match m {
            Msg::Request(b) => Some(*b),
            _ => None,
        })
        .await
    }

    /// Reads until the node closes the connection; every message it sent before.
    pub async fn until_closed(&mut self) -> Vec<Msg> {
        let mut seen = Vec::new();
        while let Some(m) = self.recv().await {
            seen.push(m);
        }
        seen
    }

    /// The opening of a seed: every piece held, the node unchoked once it is interested.
    pub async fn open_as_seed(&mut self, meta: &Meta) {
        self.send(Msg::Bitfield(proto::to_bitfield(&vec![
            true;
            meta.pieces()
        ])))
        .await;
        self.until(|m| (*m == Msg::Interested).then_some(())).await;
        self.send(Msg::Unchoke).await;
    }

    /// The block's bytes from `data`, as a piece message.
    pub fn piece(meta: &Meta, data: &[u8], b: Block) -> Msg {
        let at = (meta.piece_offset(b.index) + b.begin as u64) as usize;
        Msg::Piece {
            index: b.index,
            begin: b.begin,
            data: data[at..at + b.len as usize].to_vec(),
        }
    }
}
