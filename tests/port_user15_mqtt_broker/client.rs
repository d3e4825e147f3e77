//! The small client library the tests drive the broker with: connect, subscribe,
//! publish at QoS 0 or 1 (waiting for the PUBACK), receive (acknowledging or not), ping,
//! disconnect; PUBLISHes that come while it waits for an ack are kept for `recv`. And
//! raw sockets for bytes no client would send.

use std::collections::VecDeque;
use std::net::SocketAddr;

use overlap::codec::Framed;
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpSocket, TcpStream};
use overlap::sink::SinkExt;
use overlap::stream::StreamExt;

use super::packet::{Connect, MqttCodec, Packet, Publish, Will};

pub struct Client {
    pub framed: Framed<TcpStream, MqttCodec>,
    pub session_present: bool,
    inbox: VecDeque<Publish>,
    next_pid: u16,
}

/// A CONNECT for `id` with `clean_session` and no keep-alive.
pub fn hello(id: &str, clean: bool) -> Connect {
    Connect {
        clean_session: clean,
        ..Connect::new(id)
    }
}

/// A CONNECT for `id` with a will on `topic`.
pub fn with_will(id: &str, topic: &str, payload: &str, retain: bool) -> Connect {
    Connect {
        will: Some(Will {
            topic: topic.into(),
            payload: payload.into(),
            qos: 1,
            retain,
        }),
        ..Connect::new(id)
    }
}

impl Client {
    pub async fn connect(addr: SocketAddr, connect: Connect) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        Client::handshake(stream, connect).await
    }

    /// Connects with a receive buffer of `rcvbuf` bytes (a reader that falls behind soon).
    pub async fn connect_small(addr: SocketAddr, connect: Connect, rcvbuf: u32) -> Client {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(rcvbuf).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        Client::handshake(stream, connect).await
    }

    async fn handshake(stream: TcpStream, connect: Connect) -> Client {
        stream.set_nodelay(true).unwrap();
        let mut framed = Framed::new(stream, MqttCodec::new(1 << 20));
        framed.send(Packet::Connect(connect)).await.unwrap();
        let ack = framed.next().await.expect("a CONNACK").unwrap();
        let Packet::ConnAck {
            session_present,
            code: 0,
        } = ack
        else {
            panic!("refused: {ack:?}");
        };
        Client {
            framed,
            session_present,
            inbox: VecDeque::new(),
            next_pid: 0,
        }
    }

    fn pid(&mut self) -> u16 {
        self.next_pid += 1;
        self.next_pid
    }

    pub async fn send(&mut self, p: Packet) {
        self.framed.send(p).await.unwrap();
    }

    /// The next packet that is not a PUBLISH (those are kept for `recv`).
    async fn reply(&mut self) -> Packet {
        loop {
            match self.framed.next().await.expect("a reply").unwrap() {
                Packet::Publish(p) => self.inbox.push_back(p),
                other => return other,
            }
        }
    }

    /// Subscribes; the SUBACK's return codes.
    pub async fn subscribe(&mut self, filters: &[(&str, u8)]) -> Vec<u8> {
        let pid = self.pid();
        let filters = filters.iter().map(|(f, q)| (f.to_string(), *q)).collect();
        self.send(Packet::Subscribe { pid, filters }).await;
        match self.reply().await {
            Packet::SubAck { pid: p, codes } if p == pid => codes,
            other => panic!("not our SUBACK: {other:?}"),
        }
    }

    pub async fn unsubscribe(&mut self, filters: &[&str]) {
        let pid = self.pid();
        let filters = filters.iter().map(|f| f.to_string()).collect();
        self.send(Packet::Unsubscribe { pid, filters }).await;
        assert_eq!(self.reply().await, Packet::UnsubAck(pid));
    }

    /// Publishes; at QoS 1, waits for its PUBACK.
    pub async fn publish(
        &mut self,
        topic: &str,
        payload: impl Into<bytes::Bytes>,
        qos: u8,
        retain: bool,
    ) {
        let mut p = Publish::new(topic, payload, qos);
        p.retain = retain;
        if qos > 0 {
            p.pid = Some(self.pid());
        }
        let pid = p.pid;
        self.send(Packet::Publish(p)).await;
        if let Some(pid) = pid {
            assert_eq!(self.reply().await, Packet::PubAck(pid));
        }
    }

    /// The next PUBLISH, not acknowledged.
    pub async fn recv(&mut self) -> Publish {
        if let Some(p) = self.inbox.pop_front() {
            return p;
        }
        match self.framed.next().await.expect("a PUBLISH").unwrap() {
            Packet::Publish(p) => p,
            other => panic!("not a PUBLISH: {other:?}"),
        }
    }

    /// The next PUBLISH, acknowledged if QoS 1.
    pub async fn recv_acked(&mut self) -> Publish {
        let p = self.recv().await;
        if let Some(pid) = p.pid {
            self.send(Packet::PubAck(pid)).await;
        }
        p
    }

    /// The next message's topic and payload as text, acknowledged.
    pub async fn recv_text(&mut self) -> (String, String) {
        let p = self.recv_acked().await;
        (p.topic, String::from_utf8(p.payload.to_vec()).unwrap())
    }

    pub async fn ping(&mut self) {
        self.send(Packet::PingReq).await;
        assert_eq!(self.reply().await, Packet::PingResp);
    }

    /// DISCONNECT, then the broker's end of the connection.
    pub async fn disconnect(mut self) {
        self.send(Packet::Disconnect).await;
        assert!(self.framed.next().await.is_none(), "EOF after DISCONNECT");
    }

    /// Reads until the broker closes the connection: the PUBLISHes that came first.
    pub async fn closed_by_broker(&mut self) -> Vec<Publish> {
        let mut got: Vec<Publish> = self.inbox.drain(..).collect();
        loop {
            match self.framed.next().await {
                None | Some(Err(_)) => return got,
                Some(Ok(Packet::Publish(p))) => got.push(p),
                Some(Ok(other)) => panic!("{other:?} before the close"),
            }
        }
    }
}

/// A connection that speaks raw bytes.
pub async fn raw(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Writes `bytes`, then reads until the broker closes the connection: what it sent.
pub async fn raw_exchange(s: &mut TcpStream, bytes: &[u8]) -> Vec<u8> {
    // The broker may close while this is still writing (an oversized header is refused
    // before its body comes): a failed write is fine, what the broker sent is the answer.
    let _ = s.write_all(bytes).await;
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// A CONNECT's bytes.
pub fn connect_bytes(c: Connect) -> Vec<u8> {
    encode(Packet::Connect(c))
}

pub fn encode(p: Packet) -> Vec<u8> {
    use overlap::codec::{BytesMut, Encoder};
    let mut buf = BytesMut::new();
    MqttCodec::new(usize::MAX).encode(p, &mut buf).unwrap();
    buf.to_vec()
}
