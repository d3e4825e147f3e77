//! The tests' memcached clients: [`Client`] speaks the text protocol over TCP (raw bytes
//! out, reply lines and `VALUE` blocks back), [`Udp`] sends framed request datagrams and
//! puts multi-datagram replies back together by sequence number; and a [`Rig`] serving
//! both on loopback.

use std::collections::HashMap;
use std::net::SocketAddr;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream, UdpSocket};

use super::server::{Config, Server};
use super::udp::{Header, HEADER, MAX_DATAGRAM};

/// A server on 127.0.0.1, TCP and UDP on their own ports.
pub struct Rig {
    pub server: Server,
    pub addr: SocketAddr,
    pub udp: SocketAddr,
}

impl Rig {
    pub async fn new(cfg: Config) -> Rig {
        let mut server = Server::new(cfg);
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        server.serve_tcp(tcp);
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let udp_addr = udp.local_addr().unwrap();
        server.serve_udp(udp);
        Rig {
            server,
            addr,
            udp: udp_addr,
        }
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }

    /// A cache counter, read straight from the server (no `stats` round trip).
    pub fn stat(&self, name: &str) -> String {
        let stats = self.server.shared.stats();
        let found = stats.into_iter().find(|(n, _)| *n == name);
        found.unwrap_or_else(|| panic!("no stat {name}")).1
    }
}

/// One item of a `get`/`gets` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    pub key: String,
    pub flags: u32,
    pub data: Vec<u8>,
    pub cas: Option<u64>,
}

pub struct Client {
    pub s: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).await.unwrap();
        s.set_nodelay(true).unwrap();
        Client { s, buf: Vec::new() }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).await.unwrap();
    }

    async fn fill(&mut self) -> bool {
        let old = self.buf.len();
        self.buf.resize(old + 64 * 1024, 0);
        let n = self.s.read(&mut self.buf[old..]).await.unwrap();
        self.buf.truncate(old + n);
        n > 0
    }

    /// The next reply line, without its `\r\n`; `None` at EOF.
    pub async fn line(&mut self) -> Option<String> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8(self.buf[..i].to_vec()).unwrap();
                self.buf.drain(..i + 2);
                return Some(line);
            }
            if !self.fill().await {
                assert!(self.buf.is_empty(), "EOF mid-line: {:?}", self.buf);
                return None;
            }
        }
    }

    /// Exactly `n` bytes.
    pub async fn exact(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(
                self.fill().await,
                "EOF with {} of {n} bytes",
                self.buf.len()
            );
        }
        self.buf.drain(..n).collect()
    }

    /// Sends `line` and its `\r\n`, returns the reply line.
    pub async fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.line().await.expect("a reply")
    }

    /// `<op> <key> <flags> <exptime> <len>\r\n<data>\r\n`, and the reply.
    pub async fn store(
        &mut self,
        op: &str,
        key: &str,
        flags: u32,
        exp: i64,
        data: &[u8],
    ) -> String {
        let head = format!("{op} {key} {flags} {exp} {}\r\n", data.len());
        self.send(&[head.as_bytes(), data, b"\r\n"].concat()).await;
        self.line().await.expect("a reply")
    }

    pub async fn set(&mut self, key: &str, data: &[u8]) -> String {
        self.store("set", key, 0, 0, data).await
    }

    /// Reads `VALUE` blocks up to `END`.
    pub async fn values(&mut self) -> Vec<Value> {
        let mut values = Vec::new();
        loop {
            let line = self.line().await.expect("a VALUE or END");
            if line == "END" {
                return values;
            }
            let t: Vec<&str> = line.split(' ').collect();
            assert!(t[0] == "VALUE" && (t.len() == 4 || t.len() == 5), "{line}");
            let len: usize = t[3].parse().unwrap();
            let mut data = self.exact(len + 2).await;
            assert_eq!(data.split_off(len), b"\r\n", "after {line}");
            values.push(Value {
                key: t[1].into(),
                flags: t[2].parse().unwrap(),
                data,
                cas: t.get(4).map(|c| c.parse().unwrap()),
            });
        }
    }

    /// `get`/`gets`/`gat <exp>`... of `keys`, its values.
    pub async fn get_with(&mut self, verb: &str, keys: &[&str]) -> Vec<Value> {
        self.send(format!("{verb} {}\r\n", keys.join(" ")).as_bytes())
            .await;
        self.values().await
    }

    /// One key's data, or `None` for a miss.
    pub async fn get(&mut self, key: &str) -> Option<Vec<u8>> {
        let mut v = self.get_with("get", &[key]).await;
        assert!(v.len() <= 1);
        v.pop().map(|v| v.data)
    }

    pub async fn gets(&mut self, key: &str) -> Option<(Vec<u8>, u64)> {
        let v = self.get_with("gets", &[key]).await.pop()?;
        Some((v.data, v.cas.expect("gets has a cas")))
    }

    pub async fn stats(&mut self) -> HashMap<String, String> {
        self.send(b"stats\r\n").await;
        let mut stats = HashMap::new();
        loop {
            let line = self.line().await.expect("a STAT or END");
            if line == "END" {
                return stats;
            }
            let mut t = line.splitn(3, ' ');
            assert_eq!(t.next(), Some("STAT"));
            stats.insert(t.next().unwrap().into(), t.next().unwrap().into());
        }
    }

    /// Whether the server closed: EOF with nothing left to read.
    pub async fn closed(&mut self) -> bool {
        self.buf.is_empty() && !self.fill().await
    }
}

/// A UDP client socket on 127.0.0.1.
pub struct Udp {
    pub s: UdpSocket,
    pub server: SocketAddr,
}

impl Udp {
    pub async fn new(server: SocketAddr) -> Udp {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        Udp { s, server }
    }

    /// Sends `body` framed as a single-datagram request.
    pub async fn send(&self, head: Header, body: &[u8]) {
        let d = [&head.bytes()[..], body].concat();
        self.s.send_to(&d, self.server).await.unwrap();
    }

    /// Receives one datagram: its header and payload, checking its size.
    pub async fn recv(&self) -> (Header, Vec<u8>) {
        let mut buf = vec![0u8; 2048];
        let (n, from) = self.s.recv_from(&mut buf).await.unwrap();
        assert_eq!(from, self.server);
        assert!((HEADER..=MAX_DATAGRAM).contains(&n), "a {n}-byte datagram");
        (Header::parse(&buf[..n]).unwrap(), buf[HEADER..n].to_vec())
    }

    /// Sends a request and puts its reply's datagrams back together (whatever order
    /// they come in), checking each header; the reply and how many datagrams it took.
    pub async fn request(&self, id: u16, body: &[u8]) -> (Vec<u8>, u16) {
        let one = Header {
            id,
            seq: 0,
            total: 1,
            reserved: 0,
        };
        self.send(one, body).await;
        let mut parts: Vec<Option<Vec<u8>>> = Vec::new();
        loop {
            let (h, part) = self.recv().await;
            assert_eq!((h.id, h.reserved), (id, 0), "{h:?}");
            if parts.is_empty() {
                parts.resize(h.total as usize, None);
            }
            assert_eq!(h.total as usize, parts.len(), "{h:?}");
            assert!(
                parts[h.seq as usize].replace(part).is_none(),
                "seq {} twice",
                h.seq
            );
            if parts.iter().all(Option::is_some) {
                let total = parts.len() as u16;
                return (parts.into_iter().flatten().flatten().collect(), total);
            }
        }
    }
}
