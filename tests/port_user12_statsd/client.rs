//! The tests' side: a Graphite backend that collects the lines it is sent, a management
//! client, and StatsD senders.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use overlap::codec::{Framed, FramedRead, LinesCodec};
use overlap::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use overlap::sink::SinkExt;
use overlap::stream::StreamExt;

/// The backend: a listener on loopback, port 0.
pub struct Backend {
    pub listener: TcpListener,
    pub addr: SocketAddr,
}

impl Backend {
    pub async fn bind(addr: &str) -> Backend {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        Backend { listener, addr }
    }

    /// A backend whose sockets take in little (a 4 KiB receive buffer): what it leaves
    /// unread stays with the sender.
    pub async fn with_small_window() -> Backend {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(16).unwrap();
        let addr = listener.local_addr().unwrap();
        Backend { listener, addr }
    }

    pub async fn accept(&self) -> Graphite {
        let (stream, _) = self.listener.accept().await.unwrap();
        Graphite::new(stream)
    }
}

/// One connection from the aggregator.
pub struct Graphite {
    lines: FramedRead<TcpStream, LinesCodec>,
}

/// A line's name and value (its timestamp checked for a plausible one).
pub fn split(line: &str) -> (String, f64) {
    let mut f = line.split(' ');
    let (name, value, ts) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
    assert!(f.next().is_none(), "{line}");
    assert!(ts.parse::<u64>().unwrap() > 1_600_000_000, "{line}");
    (name.to_string(), value.parse().unwrap())
}

impl Graphite {
    pub fn new(stream: TcpStream) -> Graphite {
        Graphite {
            lines: FramedRead::new(stream, LinesCodec::new()),
        }
    }

    pub async fn line(&mut self) -> Option<String> {
        self.lines.next().await.map(|l| l.unwrap())
    }

    /// Reads `n` lines as a map of name to value.
    pub async fn read(&mut self, n: usize) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for _ in 0..n {
            let line = self.line().await.expect("a line before the end");
            let (name, value) = split(&line);
            assert!(out.insert(name, value).is_none(), "twice: {line}");
        }
        out
    }

    /// Reads to the end of the connection.
    pub async fn rest(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(line) = self.lines.next().await {
            match line {
                Ok(line) => out.push(line),
                Err(_) => break,
            }
        }
        out
    }
}

/// The management client.
pub struct Admin {
    lines: Framed<TcpStream, LinesCodec>,
}

impl Admin {
    pub async fn connect(addr: SocketAddr) -> Admin {
        let stream = TcpStream::connect(addr).await.unwrap();
        Admin {
            lines: Framed::new(stream, LinesCodec::new()),
        }
    }

    pub async fn send_raw(&mut self, line: &str) {
        self.lines.send(line).await.unwrap();
    }

    /// Sends `command`; the answer's lines, up to `END` (left out) or one `ERROR` line.
    pub async fn ask(&mut self, command: &str) -> Vec<String> {
        self.send_raw(command).await;
        self.answer().await
    }

    pub async fn answer(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let line = self.lines.next().await.expect("an answer").unwrap();
            if line == "END" {
                return out;
            }
            let error = line.starts_with("ERROR");
            out.push(line);
            if error {
                return out;
            }
        }
    }

    /// `stats` as a map.
    pub async fn stats(&mut self) -> BTreeMap<String, u64> {
        self.ask("stats")
            .await
            .iter()
            .map(|l| {
                let (k, v) = l.split_once(": ").unwrap();
                (k.to_string(), v.parse().unwrap())
            })
            .collect()
    }

    /// Whether the server ended the session.
    pub async fn ended(&mut self) -> bool {
        self.lines.next().await.is_none()
    }
}

/// A StatsD client socket on loopback.
pub async fn sender() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").await.unwrap()
}

pub async fn send(sock: &UdpSocket, to: SocketAddr, datagram: impl AsRef<[u8]>) {
    let d = datagram.as_ref();
    assert_eq!(sock.send_to(d, to).await.unwrap(), d.len());
}
