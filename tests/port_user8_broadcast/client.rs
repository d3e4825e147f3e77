//! The tests' client: the upgrade, then frames, answering pings unless told not to.

use std::net::SocketAddr;

use overlap::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use overlap::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use overlap::net::{TcpSocket, TcpStream};

use crate::frame::{self, read_frame, Frame, ReadEnd};

pub const UPGRADE: &[u8] =
    b"GET /feed HTTP/1.1\r\nHost: localhost\r\nUpgrade: overlap-frames\r\nConnection: Upgrade\r\n\r\n";

pub struct Client {
    pub id: u64,
    rd: BufReader<OwnedReadHalf>,
    pub wr: OwnedWriteHalf,
    pub answer_pings: bool,
}

/// A connection with a receive buffer of `rcvbuf` bytes if given (a consumer that is slow
/// to drain fills it soon).
pub async fn connect_raw(addr: SocketAddr, rcvbuf: Option<u32>) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    if let Some(size) = rcvbuf {
        socket.set_recv_buffer_size(size).unwrap();
    }
    socket.connect(addr).await.unwrap()
}

/// Reads a response head; its lines.
pub async fn read_head(rd: &mut BufReader<OwnedReadHalf>) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        assert_ne!(
            rd.read_line(&mut line).await.unwrap(),
            0,
            "head cut: {lines:?}"
        );
        let line = line.trim_end().to_string();
        if line.is_empty() {
            return lines;
        }
        lines.push(line);
    }
}

pub async fn connect(addr: SocketAddr, rcvbuf: Option<u32>) -> Client {
    let (rd, mut wr) = connect_raw(addr, rcvbuf).await.into_split();
    wr.write_all(UPGRADE).await.unwrap();
    let mut rd = BufReader::new(rd);
    let head = read_head(&mut rd).await;
    assert_eq!(head[0], "HTTP/1.1 101 Switching Protocols");
    let id = head
        .iter()
        .find_map(|l| l.strip_prefix("X-Client-Id: "))
        .expect("an id")
        .parse()
        .unwrap();
    Client {
        id,
        rd,
        wr,
        answer_pings: true,
    }
}

impl Client {
    /// The next frame; a ping is answered (and skipped) when `answer_pings`.
    pub async fn next(&mut self) -> Result<Frame, ReadEnd> {
        loop {
            let frame = read_frame(&mut self.rd).await?;
            if frame == Frame::Ping && self.answer_pings {
                self.wr
                    .write_all(&frame::encode(frame::PONG, &[]))
                    .await
                    .unwrap();
                continue;
            }
            return Ok(frame);
        }
    }

    /// The next `n` frames, each a text one, as strings.
    pub async fn texts(&mut self, n: usize) -> Vec<String> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            match self.next().await {
                Ok(Frame::Text(t)) => out.push(String::from_utf8(t).unwrap()),
                other => panic!("client {} after {} texts: {other:?}", self.id, out.len()),
            }
        }
        out
    }

    /// Every frame up to the end of the stream, and how it ended. A close frame is answered
    /// by shutting the write side, as a WebSocket client echoes the close.
    pub async fn rest(&mut self) -> (Vec<Frame>, ReadEnd) {
        let mut frames = Vec::new();
        loop {
            match self.next().await {
                Ok(f @ Frame::Close(_)) => {
                    let _ = self.wr.close().await;
                    frames.push(f);
                }
                Ok(f) => frames.push(f),
                Err(end) => return (frames, end),
            }
        }
    }

    /// Sends one text frame.
    pub async fn say(&mut self, text: &str) {
        self.wr
            .write_all(&frame::encode(frame::TEXT, text.as_bytes()))
            .await
            .unwrap();
    }
}
