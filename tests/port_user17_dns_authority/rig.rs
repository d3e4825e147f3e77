//! The tests' zone files and a server started on one of them in a temp dir, with raw
//! query helpers for what the stub resolver would never send.

use std::net::SocketAddr;
use std::time::Duration;

use overlap::net::UdpSocket;

use crate::server::{Config, Server};
use crate::support::TempDir;
use crate::wire::{self, Message};

/// A hang guard only, on the paused clock.
pub const HANG: Duration = Duration::from_secs(3600);

/// The test zone at `serial`, `web`'s addresses ending in `v`.
pub fn zone_text(serial: u32, v: u8) -> String {
    let mut z = format!(
        r#"; the test zone
$ORIGIN example.test.
$TTL 300
@        IN SOA ns1 hostmaster.example.test. {serial} 3600 600 86400 60
         IN NS ns1
         IN MX 10 mail
ns1      IN A 192.0.2.53
mail     IN A 192.0.2.25
         IN AAAA 2001:db8::25
www      IN CNAME web
web  600 IN A 192.0.2.{v}
         IN AAAA 2001:db8::{v}
alias    IN CNAME www.example.test.   ; two hops to web
out      IN CNAME elsewhere.invalid.
loop1    IN CNAME loop2
loop2    IN CNAME loop1
txt      IN TXT "hello world" "say \"hi\""
version  IN TXT "v{v}"
a.b.deep IN A 192.0.2.99
"#
    );
    for i in 0..12 {
        z.push_str(&format!("big IN TXT \"{i:02}{}\"\n", "x".repeat(98)));
    }
    z
}

pub struct Rig {
    pub dir: TempDir,
    pub server: Server,
}

impl Rig {
    pub async fn start(host: &str, cfg: Config) -> Rig {
        let dir = TempDir::new("dns-authority");
        std::fs::write(dir.join("example.test.zone"), zone_text(1, 1)).unwrap();
        let server = Server::start(host, dir.join("example.test.zone"), cfg)
            .await
            .unwrap();
        Rig { dir, server }
    }

    pub fn write_zone(&self, text: &str) {
        std::fs::write(self.dir.join("example.test.zone"), text).unwrap();
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }
}

/// A socket of the server's family for raw datagrams.
pub async fn raw_socket(server: SocketAddr) -> UdpSocket {
    let host = if server.is_ipv4() { "127.0.0.1" } else { "::1" };
    UdpSocket::bind((host, 0)).await.unwrap()
}

/// Sends `bytes`, then gives the next datagram back, raw.
pub async fn raw_exchange(sock: &UdpSocket, server: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    sock.send_to(bytes, server).await.unwrap();
    recv_raw(sock).await
}

pub async fn recv_raw(sock: &UdpSocket) -> Vec<u8> {
    let mut buf = vec![0; 65536];
    let (n, _) = sock.recv_from(&mut buf).await.unwrap();
    buf.truncate(n);
    buf
}

/// A query for `name`/`qtype` with `id`, optionally with EDNS.
pub fn query(id: u16, name: &str, qtype: u16, edns: Option<u16>) -> Message {
    Message {
        id,
        questions: vec![wire::Question {
            name: name.into(),
            qtype,
            qclass: 1,
        }],
        edns,
        ..Message::default()
    }
}
