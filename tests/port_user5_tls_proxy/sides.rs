//! What surrounds the proxy in the tests: the certificate, the clients' TLS connector, and
//! the backend, which upper-cases what it reads, over TCP or a Unix socket.

use std::cell::Cell;
use std::io;
use std::rc::Rc;
use std::sync::Arc;

use futures_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use futures_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};
use futures_rustls::{TlsAcceptor, TlsConnector};
use overlap::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use overlap::net::{TcpListener, UnixListener};

/// A self-signed certificate for `localhost`: the proxy's acceptor, and a connector that
/// trusts it only.
pub fn tls_pair() -> (TlsAcceptor, TlsConnector) {
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

/// What the backend saw.
#[derive(Default, Debug)]
pub struct BackendLog {
    pub accepted: Cell<usize>,
    /// Connections open now.
    pub live: Cell<usize>,
    /// Connections that read their end of input and still answered after it.
    pub answered_after_eof: Cell<usize>,
}

/// What the backend sends after a connection's end of input.
pub const BYE: &[u8] = b"BYE\n";

/// Answers each connection: every byte read goes back upper-cased, and after the end of
/// input, `BYE`; then it closes. A connection whose first byte is `!` is reset instead (or,
/// for a Unix socket, closed with its input unread).
async fn answer<S>(mut conn: S, log: &BackendLog) -> io::Result<bool>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 32 * 1024];
    let mut first = true;
    loop {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        if first && buf[0] == b'!' {
            return Ok(true);
        }
        first = false;
        buf[..n].make_ascii_uppercase();
        conn.write_all(&buf[..n]).await?;
    }
    conn.write_all(BYE).await?;
    conn.close().await?;
    log.answered_after_eof.set(log.answered_after_eof.get() + 1);
    Ok(false)
}

struct Live<'a>(&'a BackendLog);

impl Drop for Live<'_> {
    fn drop(&mut self) {
        self.0.live.set(self.0.live.get() - 1);
    }
}

fn opened(log: &BackendLog) -> Live<'_> {
    log.accepted.set(log.accepted.get() + 1);
    log.live.set(log.live.get() + 1);
    Live(log)
}

/// The backend on a TCP listener.
pub async fn tcp_backend(listener: TcpListener, log: Rc<BackendLog>) {
    loop {
        let Ok((conn, _)) = listener.accept().await else {
            continue;
        };
        let log = log.clone();
        overlap::spawn(async move {
            let _live = opened(&log);
            if let Ok(true) = answer(&conn, &log).await {
                let _ = conn.set_zero_linger();
            }
        });
    }
}

/// The backend on a Unix listener.
pub async fn unix_backend(listener: UnixListener, log: Rc<BackendLog>) {
    loop {
        let Ok((conn, _)) = listener.accept().await else {
            continue;
        };
        let log = log.clone();
        overlap::spawn(async move {
            let _live = opened(&log);
            let _ = answer(&conn, &log).await;
        });
    }
}
