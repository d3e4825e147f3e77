//! The echo loop the net tests serve connections with.

use std::net::SocketAddr;

use overlap::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use overlap::net::TcpListener;

/// Echoes everything read back to the peer until it closes its writing half.
pub async fn echo_until_eof(mut conn: impl AsyncRead + AsyncWrite + Unpin) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = conn.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        conn.write_all(&buf[..n]).await.unwrap();
    }
}

/// Spawns an echo server on 127.0.0.1:0 that serves every connection in its own task;
/// returns its address.
pub async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    overlap::spawn(async move {
        loop {
            let (conn, _) = listener.accept().await.unwrap();
            overlap::spawn(echo_until_eof(conn));
        }
    });
    addr
}

/// Writes `data` to `tx` (then closes it) from a task of its own while reading `rx` to the
/// end here: the bytes must come out as they went in.
pub async fn pass_through<W, R>(mut tx: W, rx: &mut R, data: &[u8], what: &str)
where
    W: AsyncWrite + Unpin + 'static,
    R: AsyncRead + Unpin,
{
    let sent = data.to_vec();
    let writer = overlap::spawn(async move {
        tx.write_all(&sent).await.unwrap();
        tx.close().await.unwrap();
    });
    let mut got = Vec::new();
    rx.read_to_end(&mut got).await.unwrap();
    writer.await.unwrap();
    assert!(got == data, "{what} changed the bytes");
}
