//! What the tests share: relay settings, a relay with its next hop, test bodies, reading
//! a queue directory, waiting for a condition.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use futures_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};
use futures_rustls::{TlsAcceptor, TlsConnector};
use overlap::net::{TcpListener, TcpStream};

use crate::client::Client;
use crate::relay::{NextHop, Relay};
use crate::session::Config;
use crate::spool;
use crate::support::{self, within, TempDir};

pub const HANG: Duration = Duration::from_secs(20);
pub const KIB: usize = 1024;

pub fn config() -> Config {
    Config {
        name: "relay.test".into(),
        line_limit: 1000,
        max_message: 2 << 20,
        command_timeout: Duration::from_secs(10),
        session_deadline: Duration::from_secs(30),
        tls: None,
    }
}

pub fn hop(addr: SocketAddr) -> NextHop {
    NextHop {
        addr,
        first_backoff: Duration::from_millis(2),
        max_backoff: Duration::from_millis(20),
        reply_timeout: Duration::from_secs(10),
    }
}

/// A certificate for `localhost`: the acceptor serving it and a connector trusting it.
pub fn tls() -> (TlsAcceptor, TlsConnector) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let key = PrivateKeyDer::try_from(made.signing_key.serialize_der()).unwrap();
    let cert: CertificateDer<'static> = made.cert.der().clone();
    let server = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(cert).unwrap();
    let client = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (
        TlsAcceptor::from(Arc::new(server)),
        TlsConnector::from(Arc::new(client)),
    )
}

pub async fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

/// A relay passing its queue to a second relay (the next hop), which keeps what it gets.
pub struct Pair {
    pub dir: TempDir,
    pub front: Relay,
    pub next: Relay,
}

pub async fn pair(name: &str, config: Config) -> Pair {
    let dir = TempDir::new(name);
    let next_listener = listener().await;
    let next_addr = next_listener.local_addr().unwrap();
    let next = Relay::start(next_listener, config.clone(), &dir.join("next"), None)
        .await
        .unwrap();
    let front = Relay::start(
        listener().await,
        config,
        &dir.join("front"),
        Some(hop(next_addr)),
    )
    .await
    .unwrap();
    Pair { dir, front, next }
}

/// A body of about `len` bytes in CRLF lines of 0 to 199 bytes, a tenth of them starting
/// with a dot (some a lone dot, which must not end the message).
pub fn body(len: usize, seed: u32) -> Vec<u8> {
    let noise = support::pattern_seeded(len + 256, seed);
    let mut out = Vec::with_capacity(len + 256);
    let mut i = 0;
    while out.len() < len {
        let n = noise[i % noise.len()] as usize % 200;
        let kind = noise[(i + 1) % noise.len()] % 10;
        if kind == 0 {
            out.push(b'.');
        }
        if kind == 1 {
            out.extend_from_slice(b".\r\n");
            i += 2;
            continue;
        }
        for k in 0..n {
            out.push(b'!' + noise[(i + 2 + k) % noise.len()] % 90);
        }
        out.extend_from_slice(b"\r\n");
        i += n + 2;
    }
    out
}

/// The messages in a queue directory, oldest first: sender, recipients, body.
pub fn mail_in(queue: &Path) -> Vec<(String, Vec<String>, Vec<u8>)> {
    let mut names: Vec<_> = std::fs::read_dir(queue)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    names
        .iter()
        .map(|path| {
            let bytes = std::fs::read(path).unwrap();
            let (from, to, body) = spool::parse(&bytes).unwrap();
            (from, to, body.to_vec())
        })
        .collect()
}

pub fn entries(dir: &Path) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

pub use crate::support::until;

pub async fn connect(addr: SocketAddr) -> Client<TcpStream> {
    let mut client = Client::new(TcpStream::connect(addr).await.unwrap());
    let offered = client.hello("client.test").await.unwrap();
    assert!(offered.contains(&"PIPELINING".to_string()), "{offered:?}");
    client
}

/// Reads `n` replies and gives their codes.
pub async fn codes(client: &mut Client<TcpStream>, n: usize) -> Vec<u16> {
    let mut got = Vec::new();
    for _ in 0..n {
        got.push(within(HANG, client.reply(), "a reply").await.unwrap().code);
    }
    got
}

/// Waits for the relay's sessions to end, and checks that none ended with an error.
pub async fn ended_cleanly(relay: &Relay) {
    let stats = relay.stats();
    until(|| stats.live.get() == 0, "the sessions to end").await;
    assert!(
        stats.errors.borrow().is_empty(),
        "{:?}",
        stats.errors.borrow()
    );
}
