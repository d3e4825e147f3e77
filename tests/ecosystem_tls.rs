//! The futures ecosystem over overlap's sockets: TLS with `futures-rustls` (rustls's
//! binding to the futures-io traits), server and client on one runtime over loopback, with
//! a self-signed certificate made here. No adapter is needed: overlap's `TcpStream` is
//! futures-io's `AsyncRead + AsyncWrite`, and rustls drives it through them (reads that
//! return `Pending`, partial writes, `poll_flush`, `poll_close` for `close_notify`).

mod support;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use futures_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};
use futures_rustls::{TlsAcceptor, TlsConnector};
use overlap::io::{copy, AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream};
use support::within;

const HANG: Duration = Duration::from_secs(30);

/// A certificate for `localhost`, and its key.
fn self_signed() -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let key = PrivateKeyDer::try_from(made.signing_key.serialize_der()).unwrap();
    (made.cert.der().clone(), key)
}

fn acceptor(cert: CertificateDer<'static>, key: PrivateKeyDer<'static>) -> TlsAcceptor {
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

/// A client that trusts `root` only.
fn connector(root: CertificateDer<'static>) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    roots.add(root).unwrap();
    let config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// A TLS echo server on 127.0.0.1:0: each connection's decrypted bytes go back until the
/// client closes (its `close_notify`), then the server closes too. Each connection's
/// handshake error, if any, goes to `errors`.
async fn tls_echo_server(
    acceptor: TlsAcceptor,
) -> (
    SocketAddr,
    overlap::sync::mpsc::UnboundedReceiver<io::Error>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (errors, errors_rx) = overlap::sync::mpsc::unbounded_channel();
    overlap::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (acceptor, errors) = (acceptor.clone(), errors.clone());
            overlap::spawn(async move {
                let served = async {
                    let tls = acceptor.accept(tcp).await?;
                    let (reader, mut writer) = tls.split();
                    copy(reader, &mut writer).await?;
                    writer.close().await
                };
                if let Err(e) = served.await {
                    let _ = errors.send(e);
                }
            });
        }
    });
    (addr, errors_rx)
}

/// 1 MiB each way through TLS, written and read at once from one task: every byte comes back
/// in order, and `close` (the client's `close_notify`) ends the server's copy, whose own
/// close the client reads as the end of the stream.
#[overlap::test]
async fn a_tls_echo_carries_a_mebibyte_each_way() {
    let (cert, key) = self_signed();
    let (addr, _errors) = tls_echo_server(acceptor(cert.clone(), key)).await;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let tls = within(HANG, connector(cert).connect(name, tcp), "the handshake")
        .await
        .unwrap();
    let (mut reader, mut writer) = tls.split();
    let sent: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 31 % 251) as u8).collect();
    let write = async {
        for chunk in sent.chunks(10_000) {
            writer.write_all(chunk).await?;
        }
        writer.close().await
    };
    let read = async {
        let mut got = Vec::new();
        reader.read_to_end(&mut got).await.map(|_| got)
    };
    let (wrote, got) = within(HANG, async { futures_util::join!(write, read) }, "the echo").await;
    wrote.unwrap();
    let got = got.unwrap();
    assert_eq!(got.len(), sent.len());
    assert!(got == sent, "the echo differs");
}

/// Fifty TLS connections at once, each a handshake and a short exchange: the runtime
/// serves them all, tasks interleaved on one thread.
#[overlap::test]
async fn fifty_tls_clients_at_once_each_get_their_echo() {
    let (cert, key) = self_signed();
    let (addr, _errors) = tls_echo_server(acceptor(cert.clone(), key)).await;
    let connector = connector(cert);
    let mut clients = overlap::JoinSet::new();
    for k in 0..50u32 {
        let connector = connector.clone();
        clients.spawn(async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let name = ServerName::try_from("localhost").unwrap();
            let mut tls = connector.connect(name, tcp).await.unwrap();
            let msg = format!("client {k}");
            tls.write_all(msg.as_bytes()).await.unwrap();
            let mut back = vec![0; msg.len()];
            tls.read_exact(&mut back).await.unwrap();
            assert_eq!(back, msg.as_bytes());
            tls.close().await.unwrap();
        });
    }
    let all = async {
        while let Some(done) = clients.join_next().await {
            done.unwrap();
        }
    };
    within(HANG, all, "fifty TLS echoes").await;
}

/// A client that does not trust the server's certificate gets a clear `InvalidData` error
/// from its handshake, the server's side of it fails too, and the server goes on serving
/// the clients that do trust it.
#[overlap::test]
async fn an_untrusted_certificate_fails_the_handshake_with_a_clear_error() {
    let (cert, key) = self_signed();
    let (addr, mut errors) = tls_echo_server(acceptor(cert.clone(), key)).await;
    let (stranger, _) = self_signed();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let refused = within(
        HANG,
        connector(stranger).connect(name, tcp),
        "the handshake",
    )
    .await;
    let Err(err) = refused else {
        panic!("a handshake against an untrusted certificate succeeded");
    };
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    assert!(err.to_string().contains("certificate"), "{err}");
    let server_side = within(HANG, errors.recv(), "the server's handshake error").await;
    assert!(server_side.is_some());

    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = connector(cert).connect(name, tcp).await.unwrap();
    tls.write_all(b"still serving").await.unwrap();
    let mut back = [0; 13];
    within(HANG, tls.read_exact(&mut back), "the echo")
        .await
        .unwrap();
    assert_eq!(&back, b"still serving");
}
