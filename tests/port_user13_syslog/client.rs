//! The tests' side: a collector in a temp dir, senders for each input, the control
//! client, an upstream for the forwarder, and the log files read back.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use overlap::codec::{Framed, FramedRead, LinesCodec};
use overlap::io::AsyncWriteExt;
use overlap::net::{TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixStream};
use overlap::sink::SinkExt;
use overlap::stream::StreamExt;

use super::codec::SyslogCodec;
use super::server::{Config, Server};
use super::support::{until, TempDir};

/// A collector whose sockets and files are in its own temp dir.
pub struct Rig {
    pub server: Server,
    pub dir: TempDir,
}

impl Rig {
    pub async fn start(tweak: impl FnOnce(&mut Config, &Path)) -> Rig {
        let dir = TempDir::new("syslog");
        let mut config = Config::new(dir.path());
        tweak(&mut config, dir.path());
        let server = Server::start(config).await.unwrap();
        Rig { server, dir }
    }

    pub fn config(&self) -> &Config {
        &self.server.state.config
    }

    /// Waits until the collector has taken `n` messages from its inputs in all.
    pub async fn received(&self, n: u64) {
        let stats = self.server.stats();
        until(|| stats.received() == n, &format!("{n} messages received")).await;
    }

    /// Waits until the output `name` has written `n` lines.
    pub async fn written(&self, name: &str, n: u64) {
        let out = self.output(name);
        until(|| out.lines.get() == n, &format!("{n} lines in {name}")).await;
    }

    pub fn output(&self, name: &str) -> &super::outputs::FileOut {
        let files = &self.server.state.files;
        files.iter().find(|f| f.config.name == name).unwrap()
    }

    /// The messages (the text after `: `) in `file` of the rig's dir.
    pub async fn messages(&self, file: &str) -> Vec<String> {
        file_lines(&self.dir.join(file))
            .await
            .into_iter()
            .map(|l| l.split_once(": ").unwrap().1.to_string())
            .collect()
    }
}

/// The lines of a file, none if it does not exist.
pub async fn file_lines(path: &Path) -> Vec<String> {
    match overlap::fs::read_to_string(path).await {
        Ok(text) => text.lines().map(str::to_string).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("{e}"),
    }
}

pub async fn udp_sender(to: SocketAddr) -> UdpSocket {
    let any = if to.is_ipv6() {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    };
    let s = UdpSocket::bind(any).await.unwrap();
    s.connect(to).await.unwrap();
    s
}

pub async fn send_udp(s: &UdpSocket, msg: impl AsRef<[u8]>) {
    let m = msg.as_ref();
    assert_eq!(s.send(m).await.unwrap(), m.len());
}

/// A datagram to the `/dev/log`-like socket, from an unbound socket as `logger(1)` sends.
pub async fn send_unix(path: &Path, msg: impl AsRef<[u8]>) {
    let s = UnixDatagram::unbound().unwrap();
    let m = msg.as_ref();
    assert_eq!(s.send_to(m, path).await.unwrap(), m.len());
}

pub async fn tcp_sender(to: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(to).await.unwrap();
    s.set_nodelay(true).unwrap();
    s
}

pub async fn send_tcp(s: &mut TcpStream, bytes: impl AsRef<[u8]>) {
    s.write_all(bytes.as_ref()).await.unwrap();
}

/// The control client.
pub struct Control {
    lines: Framed<UnixStream, LinesCodec>,
}

impl Control {
    pub async fn connect(path: &Path) -> Control {
        let stream = UnixStream::connect(path).await.unwrap();
        Control {
            lines: Framed::new(stream, LinesCodec::new()),
        }
    }

    pub async fn send_raw(&mut self, line: &str) {
        self.lines.send(line).await.unwrap();
    }

    /// The answer's lines, up to `END` (left out) or one line that is not `stats`'.
    pub async fn answer(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let line = self.lines.next().await.expect("an answer").unwrap();
            if line == "END" {
                return out;
            }
            let single = line.starts_with("ERROR") || line.starts_with("OK");
            out.push(line);
            if single {
                return out;
            }
        }
    }

    pub async fn ask(&mut self, command: &str) -> Vec<String> {
        self.send_raw(command).await;
        self.answer().await
    }

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

    pub async fn ended(&mut self) -> bool {
        self.lines.next().await.is_none()
    }
}

/// The forwarder's upstream: a listener, its connections read with the collector's own
/// decoder (the forwarder counts octets).
pub struct Upstream {
    pub listener: TcpListener,
    pub addr: SocketAddr,
}

impl Upstream {
    pub async fn bind(addr: SocketAddr) -> Upstream {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        Upstream { listener, addr }
    }

    pub async fn accept(&self) -> FramedRead<TcpStream, SyslogCodec> {
        let (stream, _) = self.listener.accept().await.unwrap();
        FramedRead::new(stream, SyslogCodec::new(1 << 20))
    }
}

/// `n` messages from an upstream connection, as text.
pub async fn read_frames(conn: &mut FramedRead<TcpStream, SyslogCodec>, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        let frame = conn.next().await.expect("a frame").unwrap();
        out.push(String::from_utf8(frame).unwrap());
    }
    out
}

/// A 5424 message from app `app` at `facility`.`severity` whose text is `msg`.
pub fn msg5424(facility: u8, severity: u8, app: &str, msg: &str) -> String {
    let pri = facility as u32 * 8 + severity as u32;
    format!("<{pri}>1 2026-12-04T10:00:00Z host1 {app} - - - {msg}")
}
