//! `io::BufStream` built with capacities of 0: buffered reads still see the bytes that are
//! there, rather than end of file, and writes go straight through.

mod support;

use std::time::Duration;

use overlap::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufStream};
use overlap::net::UnixStream;
use overlap::stream::StreamExt;
use support::within;

const HANG: Duration = Duration::from_secs(10);

/// A read buffer of 0 bytes could never hold a byte: `read_line` and `lines` on it would
/// report end of file at once, with the peer's line waiting unread.
#[overlap::test]
async fn a_zero_capacity_buf_stream_reads_lines_and_writes() {
    let (near, mut far) = UnixStream::pair().unwrap();
    let mut conn = BufStream::with_capacity(0, 0, near);
    far.write_all(b"hello\r\nworld\n").await.unwrap();
    let mut line = String::new();
    let n = within(HANG, conn.read_line(&mut line), "read_line")
        .await
        .unwrap();
    assert_eq!((n, line.as_str()), (7, "hello\r\n"));
    conn.write_all(b"ok").await.unwrap();
    conn.close().await.unwrap();
    let mut back = Vec::new();
    within(HANG, far.read_to_end(&mut back), "read_to_end")
        .await
        .unwrap();
    assert_eq!(back, b"ok");
    drop(far);
    let rest: Vec<String> = within(HANG, conn.lines().map(Result::unwrap).collect(), "lines").await;
    assert_eq!(rest, ["world"]);
}

/// A server taking a `BufStream` apart for a TLS handshake (SMTP's STARTTLS) must know
/// whether the client sent more after the command, since `into_inner` drops those bytes:
/// `read_buffer` shows them without waiting, and `write_buffer` a reply not yet flushed.
#[overlap::test]
async fn a_buf_stream_shows_what_into_inner_would_drop() {
    let (near, mut far) = UnixStream::pair().unwrap();
    let mut conn = BufStream::new(near);
    assert!(conn.read_buffer().is_empty());
    far.write_all(b"STARTTLS\r\nMAIL FROM:<x>\r\n")
        .await
        .unwrap();
    let mut line = String::new();
    within(HANG, conn.read_line(&mut line), "read_line")
        .await
        .unwrap();
    assert_eq!(line, "STARTTLS\r\n");
    assert_eq!(conn.read_buffer(), b"MAIL FROM:<x>\r\n");
    conn.write_all(b"220 go ahead\r\n").await.unwrap();
    assert_eq!(conn.write_buffer(), b"220 go ahead\r\n");
    conn.flush().await.unwrap();
    assert!(conn.write_buffer().is_empty());
    let mut reply = [0; 14];
    within(HANG, far.read_exact(&mut reply), "the reply")
        .await
        .unwrap();
    assert_eq!(&reply, b"220 go ahead\r\n");
    // Consumed, the read buffer is empty again.
    let mut rest = String::new();
    conn.read_line(&mut rest).await.unwrap();
    assert_eq!(
        (rest.as_str(), conn.read_buffer()),
        ("MAIL FROM:<x>\r\n", &b""[..])
    );
    drop(conn.into_inner());
}
