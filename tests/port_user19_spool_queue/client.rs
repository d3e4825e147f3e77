//! The tests' clients, as a user's would be: a producer that pipelines its publishes and
//! reads the acks as they come, and a consumer that reads records and commits.

use std::io;
use std::net::SocketAddr;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpSocket, TcpStream};

use super::broker::frame;

/// A frame from the broker.
#[derive(Debug, PartialEq)]
pub enum Reply {
    Ack(u64),
    Record(u64, Vec<u8>),
    Error(String),
    /// The broker closed the connection.
    Closed,
}

/// Reads one frame from the broker.
pub async fn read_reply(stream: &mut TcpStream) -> io::Result<Reply> {
    let mut len = [0u8; 4];
    match stream.read_exact(&mut len).await {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(Reply::Closed),
        Err(e) => return Err(e),
    }
    let mut body = vec![0; u32::from_le_bytes(len) as usize];
    stream.read_exact(&mut body).await?;
    let bad = || io::Error::new(io::ErrorKind::InvalidData, format!("bad reply {body:?}"));
    match body.first() {
        Some(b'A') if body.len() == 9 => Ok(Reply::Ack(u64::from_le_bytes(
            body[1..].try_into().unwrap(),
        ))),
        Some(b'R') if body.len() > 9 => {
            let offset = u64::from_le_bytes(body[1..9].try_into().unwrap());
            Ok(Reply::Record(offset, body[9..].to_vec()))
        }
        Some(b'E') => Ok(Reply::Error(
            String::from_utf8_lossy(&body[1..]).into_owned(),
        )),
        _ => Err(bad()),
    }
}

/// Connects to the broker, Nagle off (frames go out whole at once).
pub async fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Publishes `messages` on one connection, all sent while the acks are read: the offsets
/// acked, in order.
pub async fn publish_all(addr: SocketAddr, messages: &[Vec<u8>]) -> io::Result<Vec<u64>> {
    let stream = connect(addr).await;
    let (mut rd, mut wr) = stream.into_split();
    let send = async {
        for m in messages {
            wr.write_all(&frame(b'P', m, &[])).await?;
        }
        io::Result::Ok(())
    };
    let acks = async {
        let mut offsets = Vec::with_capacity(messages.len());
        let mut len = [0u8; 4];
        let mut body = [0u8; 9];
        while offsets.len() < messages.len() {
            rd.read_exact(&mut len).await?;
            if u32::from_le_bytes(len) != 9 {
                let mut rest = vec![0; u32::from_le_bytes(len) as usize];
                rd.read_exact(&mut rest).await?;
                let why = String::from_utf8_lossy(&rest).into_owned();
                return Err(io::Error::other(why));
            }
            rd.read_exact(&mut body).await?;
            assert_eq!(body[0], b'A');
            offsets.push(u64::from_le_bytes(body[1..].try_into().unwrap()));
        }
        Ok(offsets)
    };
    let (sent, offsets) = overlap::join!(send, acks);
    sent?;
    offsets
}

/// A consumer connection.
pub struct Consumer {
    pub stream: TcpStream,
}

impl Consumer {
    /// Subscribes from `from` (`u64::MAX`: the group's committed offset) in `group`.
    pub async fn subscribe(addr: SocketAddr, from: u64, group: &str) -> Consumer {
        Consumer::with_stream(connect(addr).await, from, group).await
    }

    /// Subscribes on a socket whose receive buffer is `rcvbuf` bytes.
    pub async fn subscribe_small(
        addr: SocketAddr,
        from: u64,
        group: &str,
        rcvbuf: u32,
    ) -> Consumer {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(rcvbuf).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        Consumer::with_stream(stream, from, group).await
    }

    async fn with_stream(mut stream: TcpStream, from: u64, group: &str) -> Consumer {
        let sub = frame(b'S', &from.to_le_bytes(), group.as_bytes());
        stream.write_all(&sub).await.unwrap();
        Consumer { stream }
    }

    /// The next frame.
    pub async fn next(&mut self) -> Reply {
        read_reply(&mut self.stream).await.unwrap()
    }

    /// The next `n` records, each checked to be one: (offset, payload).
    pub async fn take(&mut self, n: usize) -> Vec<(u64, Vec<u8>)> {
        let mut got = Vec::with_capacity(n);
        while got.len() < n {
            match self.next().await {
                Reply::Record(offset, payload) => got.push((offset, payload)),
                other => panic!("after {} records: {other:?}", got.len()),
            }
        }
        got
    }

    /// Commits `offset` as the next its group will read.
    pub async fn commit(&mut self, offset: u64) {
        let c = frame(b'C', &offset.to_le_bytes(), &[]);
        self.stream.write_all(&c).await.unwrap();
    }
}

/// A message naming its producer and its number there, padded to `len` bytes.
pub fn message(producer: usize, seq: usize, len: usize) -> Vec<u8> {
    let mut m = format!("p{producer}-{seq:06}|").into_bytes();
    let mut fill = (producer * 31 + seq) as u8;
    while m.len() < len {
        m.push(b'a' + fill % 26);
        fill = fill.wrapping_add(7);
    }
    m
}
