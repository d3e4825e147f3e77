//! The echo loop the net tests serve connections with.

use overlap::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

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
