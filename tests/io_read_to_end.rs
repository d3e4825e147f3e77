//! `io::read_to_end`: exact bytes off a socket, appended after what the vector held;
//! `Interrupted` retried; an error or a cancellation leaves exactly the bytes read so far.

mod support;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use overlap::future::FutureExt;
use overlap::io::{read_to_end, AsyncRead, AsyncWriteExt};
use support::tcp_pair;

#[overlap::test]
async fn a_socket_body_arrives_whole_after_the_existing_bytes() {
    let (mut a, mut b) = tcp_pair().await;
    let body: Vec<u8> = (0..8 << 20).map(|i| (i * 13 % 251) as u8).collect();
    let sent = body.clone();
    let writer = overlap::spawn(async move {
        for piece in sent.chunks(16 * 1024) {
            a.write_all(piece).await.unwrap();
            overlap::yield_now().await; // many short reads and Pendings on the other side
        }
        a.close().await.unwrap();
    });
    let mut buf = b"head:".to_vec();
    assert_eq!(read_to_end(&mut b, &mut buf).await.unwrap(), body.len());
    assert_eq!(&buf[..5], b"head:");
    assert!(buf[5..] == body[..], "bytes differ");
    writer.await.unwrap();
}

/// Yields `script` in order: bytes, `Interrupted`, another error, or a `Pending` (which wakes
/// itself); then end of file.
struct Scripted(Vec<Step>);

enum Step {
    Bytes(&'static [u8]),
    Interrupted,
    Fail,
    Pending,
}

impl AsyncRead for Scripted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if self.0.is_empty() {
            return Poll::Ready(Ok(0));
        }
        Poll::Ready(match self.0.remove(0) {
            Step::Bytes(b) => {
                out[..b.len()].copy_from_slice(b);
                Ok(b.len())
            }
            Step::Interrupted => Err(io::ErrorKind::Interrupted.into()),
            Step::Fail => Err(io::Error::other("broken")),
            Step::Pending => {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        })
    }
}

#[overlap::test]
async fn interrupted_is_retried_and_an_error_keeps_the_bytes_read() {
    let mut r = Scripted(vec![
        Step::Bytes(b"ab"),
        Step::Interrupted,
        Step::Pending,
        Step::Bytes(b"cd"),
        Step::Fail,
    ]);
    let mut buf = Vec::new();
    let err = read_to_end(&mut r, &mut buf).await.unwrap_err();
    assert_eq!(err.to_string(), "broken");
    assert_eq!(buf, b"abcd");
}

#[overlap::test]
async fn a_cancelled_read_leaves_exactly_the_bytes_read() {
    let mut r = Scripted(vec![Step::Bytes(b"xyz"), Step::Pending, Step::Bytes(b"!")]);
    let mut buf = b">".to_vec();
    // Polled once: it reads "xyz", then meets the Pending and is dropped.
    assert!(read_to_end(&mut r, &mut buf).now_or_never().is_none());
    assert_eq!(buf, b">xyz", "zero padding or lost bytes left behind");
    assert_eq!(read_to_end(&mut r, &mut buf).await.unwrap(), 1);
    assert_eq!(buf, b">xyz!");
}
