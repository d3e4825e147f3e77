//! The tests' client: the same codecs from the other end (its head read as lines, then
//! `into_parts` to the client-side WebSocket codec), and raw writes for what a polite
//! client would not send.

use std::net::SocketAddr;

use overlap::codec::{Framed, FramedParts, LinesCodec};
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpSocket, TcpStream};
use overlap::sink::SinkExt;
use overlap::stream::StreamExt;

use super::frame::{Message, WsCodec, WsError};
use super::handshake::accept_key;

pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// A well-formed upgrade request for `room`, as `name`.
pub fn request(room: &str, name: &str) -> String {
    format!(
        "GET /chat/{room} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
         Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n\
         Sec-WebSocket-Version: 13\r\nX-Name: {name}\r\n\r\n"
    )
}

pub struct Client {
    pub name: String,
    pub ws: Framed<TcpStream, WsCodec>,
}

/// Connects with a receive buffer of `rcvbuf` bytes if given (set before the connect, so
/// the window stays that small).
pub async fn open(addr: SocketAddr, rcvbuf: Option<u32>) -> TcpStream {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .unwrap();
    if let Some(size) = rcvbuf {
        socket.set_recv_buffer_size(size).unwrap();
    }
    let stream = socket.connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

impl Client {
    pub async fn connect(addr: SocketAddr, room: &str, name: &str) -> Client {
        Client::connect_with(addr, room, name, None, b"").await
    }

    /// Connects and upgrades, sending `extra` in the same write as the head (frames a
    /// client sends before it has its answer).
    pub async fn connect_with(
        addr: SocketAddr,
        room: &str,
        name: &str,
        rcvbuf: Option<u32>,
        extra: &[u8],
    ) -> Client {
        let mut stream = open(addr, rcvbuf).await;
        let mut head = request(room, name).into_bytes();
        head.extend_from_slice(extra);
        stream.write_all(&head).await.unwrap();
        let mut lines = Framed::new(stream, LinesCodec::new_with_max_length(1024));
        let status = lines.next().await.unwrap().unwrap();
        assert_eq!(status, "HTTP/1.1 101 Switching Protocols", "{name}");
        let mut accept = None;
        loop {
            let line = lines.next().await.unwrap().unwrap();
            if line.is_empty() {
                break;
            }
            if let Some(v) = line.strip_prefix("Sec-WebSocket-Accept: ") {
                accept = Some(v.to_string());
            }
        }
        assert_eq!(accept.as_deref(), Some(accept_key(KEY).as_str()));
        let parts = lines.into_parts();
        let mut ws = FramedParts::new::<Message>(parts.io, WsCodec::client(1 << 24));
        ws.read_buf = parts.read_buf;
        Client {
            name: name.to_string(),
            ws: Framed::from_parts(ws),
        }
    }

    pub async fn say(&mut self, text: &str) {
        self.ws.send(Message::Text(text.to_string())).await.unwrap();
    }

    /// The next message that is not a ping (pings are answered).
    pub async fn next(&mut self) -> Option<Result<Message, WsError>> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Ping(p))) => {
                    let _ = self.ws.send(Message::Pong(p)).await;
                }
                other => return other,
            }
        }
    }

    /// The next text, failing on anything else.
    pub async fn text(&mut self) -> String {
        match self.next().await {
            Some(Ok(Message::Text(t))) => t,
            other => panic!("{}: wanted a text, got {other:?}", self.name),
        }
    }

    /// Reads up to the server's close, answers it, and reads to the end: the texts read
    /// before it and the close.
    pub async fn until_close(&mut self) -> (Vec<String>, Message) {
        let mut texts = Vec::new();
        loop {
            match self.next().await {
                Some(Ok(Message::Text(t))) => texts.push(t),
                Some(Ok(close @ Message::Close(_))) => {
                    let _ = self.ws.send(close.clone()).await;
                    // The server shuts its side after its close: the stream ends.
                    assert!(
                        self.ws.next().await.is_none(),
                        "{}: after the close",
                        self.name
                    );
                    return (texts, close);
                }
                other => panic!("{}: wanted a close, got {other:?}", self.name),
            }
        }
    }

    /// The raw stream, for bytes written by hand.
    pub fn raw(&mut self) -> &mut TcpStream {
        self.ws.get_mut()
    }
}

/// Sends `bytes` (a head, good or bad) and reads the answer to its end: the status line,
/// the `X-Reason` and whether anything followed the head.
pub async fn refused(addr: SocketAddr, bytes: &[u8]) -> (String, String) {
    let mut stream = open(addr, None).await;
    // A server that answers before it has the whole head may have closed by the time the
    // rest is written: a failed write is no failure here.
    let _ = stream.write_all(bytes).await;
    let _ = stream.close().await;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").expect("a whole head");
    assert_eq!(body, "");
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().to_string();
    let reason = lines
        .find_map(|l| l.strip_prefix("X-Reason: "))
        .unwrap_or("")
        .to_string();
    (status, reason)
}

/// Writes `bytes` one at a time, letting the server read each before the next.
pub async fn trickle(stream: &mut TcpStream, bytes: &[u8]) {
    for b in bytes {
        stream.write_all(std::slice::from_ref(b)).await.unwrap();
        // A yield lets the reactor turn: the server's read wakes and takes this byte.
        for _ in 0..4 {
            overlap::yield_now().await;
        }
    }
}
