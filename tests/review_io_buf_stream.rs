//! `io::BufStream` built with capacities of 0: buffered reads still see the bytes that are
//! there, rather than end of file, and writes go straight through; and what its write side
//! keeps when a write or a flush is cut short.

mod support;

use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use overlap::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufStream};
use overlap::net::UnixStream;
use overlap::stream::StreamExt;
use support::{poll_once, within};

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

/// What a write cut short (a timeout, a `select!` branch that lost) leaves in a
/// `BufStream`, as its docs say: a `write_all` of a message shorter than the write buffer
/// is taken whole or not at all, and a `flush` dropped midway keeps what it had not sent
/// for the next one. The peer gets exactly the messages whose writes returned, each once,
/// in order, and no part of the others.
#[overlap::test]
async fn a_buf_stream_cut_while_writing_sends_whole_messages_each_once() {
    let (near, mut far) = UnixStream::pair().unwrap();
    let mut conn = BufStream::with_capacity(64, 256 * 1024, near);
    let msgs: Vec<Vec<u8>> = (0..200u8)
        .map(|i| vec![i; 20_000 + usize::from(i)])
        .collect();
    let mut accepted = Vec::new();
    let mut got = Vec::new();
    let mut cuts = 0;
    for (i, msg) in msgs.iter().enumerate() {
        let mut write = pin!(conn.write_all(msg));
        match poll_once(write.as_mut()).await {
            Poll::Ready(res) => {
                res.unwrap();
                accepted.push(i);
            }
            Poll::Pending => {
                // Cut in its flush (maybe before a byte went: a new socket is not known to
                // be writable until the loop turns); then a flush cut short too, and the
                // peer takes some of what was sent.
                cuts += 1;
                let _ = overlap::time::timeout(Duration::from_millis(1), conn.flush()).await;
                let mut chunk = vec![0; 100_000];
                let n = within(HANG, far.read(&mut chunk), "read").await.unwrap();
                got.extend_from_slice(&chunk[..n]);
            }
        }
    }
    assert!(cuts > 10, "only {cuts} writes were cut");
    let send = async {
        conn.flush().await?;
        conn.close().await
    };
    let (sent, rest) = within(
        HANG,
        overlap::future::join(send, read_all(&mut far)),
        "the rest",
    )
    .await;
    sent.unwrap();
    got.extend_from_slice(&rest);
    let want: Vec<u8> = accepted
        .iter()
        .flat_map(|&i| msgs[i].iter().copied())
        .collect();
    assert_eq!(
        got.len(),
        want.len(),
        "{} messages accepted",
        accepted.len()
    );
    assert!(got == want, "the bytes differ");
}

async fn read_all(stream: &mut UnixStream) -> Vec<u8> {
    let mut all = Vec::new();
    overlap::io::read_to_end(stream, &mut all).await.unwrap();
    all
}
