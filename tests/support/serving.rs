//! Checking that a runtime still serves after a fault: bytes go both ways over a stream.

use std::time::Duration;

use overlap::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use overlap::net::UnixStream;

use super::within;

const HANG: Duration = Duration::from_secs(10);

/// Bytes go from `a` to `b` and back over a connected pair.
pub async fn still_serves<S: AsyncRead + AsyncWrite + Unpin>(a: &mut S, b: &mut S) {
    a.write_all(b"alive").await.unwrap();
    let mut buf = [0; 5];
    within(HANG, b.read_exact(&mut buf), "read").await.unwrap();
    assert_eq!(&buf, b"alive");
    b.write_all(b"still").await.unwrap();
    within(HANG, a.read_exact(&mut buf), "read back")
        .await
        .unwrap();
    assert_eq!(&buf, b"still");
}

/// [`still_serves`] over a Unix stream pair made now.
pub async fn a_new_pair_still_serves() {
    let (mut a, mut b) = UnixStream::pair().unwrap();
    still_serves(&mut a, &mut b).await;
}
