//! The stub resolver the tests use: a query over UDP from one socket, retried with its
//! timeout doubling, answers from elsewhere or to another id ignored; an answer with TC set
//! asked again over TCP (a 2-byte length before each message).

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpStream, UdpSocket};
use overlap::time::timeout;

use crate::wire::{self, Message, Question};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    pub udp_sent: u64,
    pub udp_timeouts: u64,
    pub tcp_fallbacks: u64,
    /// Datagrams from elsewhere, to another id or question, or undecodable.
    pub ignored: u64,
}

#[derive(Debug)]
pub struct Resolver {
    pub server: SocketAddr,
    udp: UdpSocket,
    pub timeout: Duration,
    pub retries: u32,
    pub edns: Option<u16>,
    next_id: Cell<u16>,
    stats: Cell<ClientStats>,
}

impl Resolver {
    pub async fn new(server: SocketAddr) -> io::Result<Resolver> {
        let local: SocketAddr = if server.is_ipv4() {
            "127.0.0.1:0".parse().unwrap()
        } else {
            "[::1]:0".parse().unwrap()
        };
        Ok(Resolver {
            server,
            udp: UdpSocket::bind(local).await?,
            timeout: Duration::from_secs(1),
            retries: 2,
            edns: None,
            next_id: Cell::new(0x1700),
            stats: Cell::new(ClientStats::default()),
        })
    }

    pub fn stats(&self) -> ClientStats {
        self.stats.get()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.udp.local_addr().unwrap()
    }

    fn count(&self, f: impl FnOnce(&mut ClientStats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }

    pub fn query_message(&self, name: &str, qtype: u16) -> Message {
        let id = self.next_id.get();
        self.next_id.set(id.wrapping_add(1));
        Message {
            id,
            rd: true,
            questions: vec![Question {
                name: name.to_string(),
                qtype,
                qclass: 1,
            }],
            edns: self.edns,
            ..Message::default()
        }
    }

    /// Asks over UDP (then TCP if the answer is truncated): the answer, or `TimedOut`
    /// after the retries.
    pub async fn query(&self, name: &str, qtype: u16) -> io::Result<Message> {
        let q = self.query_message(name, qtype);
        let bytes = wire::encode(&q);
        let mut wait = self.timeout;
        for _ in 0..=self.retries {
            self.udp.send_to(&bytes, self.server).await?;
            self.count(|s| s.udp_sent += 1);
            match timeout(wait, self.answer_to(&q)).await {
                Ok(Ok(m)) if m.tc => {
                    self.count(|s| s.tcp_fallbacks += 1);
                    return self.query_tcp(&q).await;
                }
                Ok(res) => return res,
                Err(_) => {
                    self.count(|s| s.udp_timeouts += 1);
                    wait *= 2;
                }
            }
        }
        Err(io::Error::new(io::ErrorKind::TimedOut, "no answer"))
    }

    /// The next datagram answering `q` (others counted and skipped).
    async fn answer_to(&self, q: &Message) -> io::Result<Message> {
        let mut buf = vec![0; 65536];
        loop {
            let (n, from) = self.udp.recv_from(&mut buf).await?;
            let ours = |m: &Message| {
                from == self.server
                    && m.qr
                    && m.id == q.id
                    && (m.questions == q.questions || m.questions.is_empty())
            };
            match wire::decode(&buf[..n]) {
                Ok(m) if ours(&m) => return Ok(m),
                _ => {}
            }
            self.count(|s| s.ignored += 1);
        }
    }

    /// `q` over a new TCP connection, within the timeout.
    pub async fn query_tcp(&self, q: &Message) -> io::Result<Message> {
        let exchange = async {
            let mut stream = TcpStream::connect(self.server).await?;
            let m = exchange_tcp(&mut stream, &wire::encode(q)).await?;
            wire::decode(&m).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
        };
        timeout(self.timeout * 4, exchange)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TCP query"))?
    }
}

/// One length-prefixed message out, one in: the raw answer.
pub async fn exchange_tcp(stream: &mut TcpStream, msg: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = (msg.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(msg);
    stream.write_all(&out).await?;
    let mut len = [0; 2];
    stream.read_exact(&mut len).await?;
    let mut answer = vec![0; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut answer).await?;
    Ok(answer)
}
