//! The tests' harness: a proxy in front of a backend, the clients' exchanges, and the
//! data and answers they check.

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use futures_rustls::client::TlsStream;
use futures_rustls::rustls::pki_types::ServerName;
use futures_rustls::TlsConnector;
use overlap::io::AsyncWriteExt;
use overlap::net::{TcpListener, TcpSocket, TcpStream, UnixListener};
use overlap::sync::oneshot;
use overlap::task::JoinHandle;

use super::proxy::{self, Backend, Config, Report, Stats};
use super::sides::{self, BackendLog, BYE};
use super::support::{pattern_seeded, within, TempDir};

pub const HANG: Duration = Duration::from_secs(20);
pub const KIB: usize = 1024;

/// Which backend a proxy forwards to.
pub enum Kind {
    Tcp,
    Unix,
    /// A TCP port nothing listens on.
    Refusing,
}

pub struct Harness {
    pub addr: SocketAddr,
    pub stats: Rc<Stats>,
    pub log: Rc<BackendLog>,
    pub connector: TlsConnector,
    pub stop: Option<oneshot::Sender<()>>,
    pub proxy: JoinHandle<Report>,
    pub backend: Option<JoinHandle<()>>,
    pub _dir: Option<TempDir>,
}

pub async fn start(kind: Kind, config: Config) -> Harness {
    let log = Rc::new(BackendLog::default());
    let (target, backend, dir) = match kind {
        Kind::Tcp => {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let task = overlap::spawn(sides::tcp_backend(listener, log.clone()));
            (Backend::Tcp(addr), Some(task), None)
        }
        Kind::Unix => {
            let dir = TempDir::new("tls-proxy");
            let path = dir.join("backend.sock");
            let listener = UnixListener::bind(&path).unwrap();
            let task = overlap::spawn(sides::unix_backend(listener, log.clone()));
            (Backend::Unix(path), Some(task), Some(dir))
        }
        Kind::Refusing => {
            let gone = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = gone.local_addr().unwrap();
            drop(gone);
            (Backend::Tcp(addr), None, None)
        }
    };
    let (acceptor, connector) = sides::tls_pair();
    // Small kernel buffers for accepted clients, so a stall reaches the proxy soon.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(64 * 1024).unwrap();
    socket.set_send_buffer_size(64 * 1024).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(128).unwrap();
    let addr = listener.local_addr().unwrap();
    let stats = Rc::new(Stats::default());
    let (stop, stopped) = oneshot::channel::<()>();
    let proxy = overlap::spawn(proxy::serve(
        listener,
        acceptor,
        target,
        config,
        stats.clone(),
        async move {
            let _ = stopped.await;
        },
    ));
    Harness {
        addr,
        stats,
        log,
        connector,
        stop: Some(stop),
        proxy,
        backend,
        _dir: dir,
    }
}

impl Harness {
    pub async fn connect(&self) -> io::Result<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(self.addr).await?;
        self.tls(tcp).await
    }

    pub fn tls(&self, tcp: TcpStream) -> futures_rustls::Connect<TcpStream> {
        let name = ServerName::try_from("localhost").unwrap();
        self.connector.connect(name, tcp)
    }

    /// Stops the proxy and the backend; returns the proxy's report.
    pub async fn shut_down(&mut self) -> Report {
        let _ = self.stop.take().unwrap().send(());
        let report = within(HANG, &mut self.proxy, "the proxy's shutdown").await;
        if let Some(backend) = self.backend.take() {
            backend.abort();
        }
        report.unwrap()
    }
}

pub use crate::support::until;

/// A lower-case pattern (never starting with `!`), and what the backend answers to it.
pub fn data(len: usize, seed: u32) -> Vec<u8> {
    pattern_seeded(len, seed)
        .into_iter()
        .map(|b| b'a' + b % 26)
        .collect()
}

pub fn answer(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_ascii_uppercase();
    out.extend_from_slice(BYE);
    out
}

/// Sends `data` through a fresh TLS connection and closes (`close_notify`, then the TCP
/// write side), while reading the whole answer.
pub async fn exchange(h: &Harness, data: &[u8]) -> io::Result<Vec<u8>> {
    let tls = h.connect().await?;
    talk(tls, data).await
}

pub async fn talk(tls: TlsStream<TcpStream>, data: &[u8]) -> io::Result<Vec<u8>> {
    let (mut rd, mut wr) = overlap::io::split(tls);
    let send = async {
        for chunk in data.chunks(16 * KIB) {
            wr.write_all(chunk).await?;
        }
        wr.close().await
    };
    let recv = async {
        let mut got = Vec::new();
        overlap::io::read_to_end(&mut rd, &mut got).await?;
        Ok(got)
    };
    let ((), got) = overlap::try_join!(send, recv)?;
    Ok(got)
}

pub fn quick() -> Config {
    Config {
        handshake_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(10),
        max_connections: 256,
        grace: Duration::from_secs(10),
    }
}

/// Reads until the stream ends: `Ok(bytes)` for a clean end, `Err` otherwise.
pub async fn read_all(tls: &mut TlsStream<TcpStream>) -> io::Result<Vec<u8>> {
    let mut got = Vec::new();
    overlap::io::read_to_end(tls, &mut got).await.map(|_| got)
}

/// A client with small socket buffers that writes `data(total, seed)` without reading,
/// until every buffer on the way is full and its writes stop; returns its stream and how
/// much went in. With a Unix backend (whose socket buffers hold a few hundred KiB, where
/// loopback TCP's grow to megabytes) 2 MiB is enough to stall.
pub async fn stalled_client(h: &Harness, total: usize, seed: u32) -> (TlsStream<TcpStream>, usize) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(16 * KIB as u32).unwrap();
    socket.set_send_buffer_size(16 * KIB as u32).unwrap();
    let tcp = socket.connect(h.addr).await.unwrap();
    let mut tls = h.tls(tcp).await.unwrap();
    let sent = data(total, seed);
    let mut written = 0;
    for chunk in sent.chunks(16 * KIB) {
        // A write that makes no progress for 30 ms: the stall has come.
        let wrote = overlap::time::timeout(Duration::from_millis(30), tls.write_all(chunk)).await;
        match wrote {
            Ok(res) => res.unwrap(),
            Err(_) => return (tls, written),
        }
        written += chunk.len();
    }
    panic!("all {total} bytes went in unread");
}
