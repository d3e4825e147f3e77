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
