//! Ports tokio-util's `tests/io_reader_stream.rs` to `overlap::codec::ReaderStream`: a
//! reader that gives at most 31 bytes a read and then fails is read to its error, which
//! comes once and ends the stream; plus, over `support::scripted`, `Pending` between
//! chunks, chunks within the capacity, and end of file.
//!
//! What porting found, left as it is and now documented: a read that fails with
//! `Interrupted` is retried (the task woken at once), where tokio-util's `ReaderStream`
//! yields it and ends the stream. overlap's own readers never give `Interrupted` (they
//! retry `EINTR` inside); a reader of another kind giving it was interrupted, not broken,
//! and ending the stream there would lose the rest of it.

mod support;

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use overlap::codec::ReaderStream;
use overlap::io::AsyncRead;
use overlap::stream::{Stream, StreamExt};
use support::scripted::{data, fail, poll_next, Scripted, Step};

/// Zeros, at most 31 a read, `remaining` of them, then an error for ever.
struct ZerosThenError {
    remaining: usize,
}

impl AsyncRead for ZerosThenError {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        assert_ne!(buf.len(), 0);
        if self.remaining == 0 {
            return Poll::Ready(Err(io::Error::from_raw_os_error(libc::EINVAL)));
        }
        let n = self.remaining.min(buf.len()).min(31);
        buf[..n].fill(0);
        self.remaining -= n;
        Poll::Ready(Ok(n))
    }
}

#[overlap::test]
async fn every_byte_then_the_error_once_then_the_end() {
    let mut stream = ReaderStream::new(ZerosThenError { remaining: 8000 });
    let mut zeros = 0;
    let error = loop {
        match stream
            .next()
            .await
            .expect("the stream ended before its error")
        {
            Ok(chunk) => {
                assert!(chunk.len() <= 31 && chunk.iter().all(|&b| b == 0));
                zeros += chunk.len();
            }
            Err(e) => break e,
        }
    };
    assert_eq!(error.raw_os_error(), Some(libc::EINVAL));
    assert_eq!(zeros, 8000);
    assert!(stream.next().await.is_none());
    assert!(stream.next().await.is_none());
}

#[test]
fn chunks_as_the_reads_bring_them_within_the_capacity() {
    let reader = Scripted::new([data(b"abc"), Step::Pending, data(b"0123456789")]);
    let mut stream = ReaderStream::with_capacity(reader, 4);
    fn next(stream: &mut ReaderStream<Scripted>) -> Option<Vec<u8>> {
        match poll_next(stream) {
            Poll::Ready(Some(Ok(chunk))) => Some(chunk.to_vec()),
            Poll::Ready(None) => None,
            other => panic!("expected a chunk or the end, got {other:?}"),
        }
    }
    assert_eq!(next(&mut stream), Some(b"abc".to_vec()));
    assert!(poll_next(&mut stream).is_pending());
    let mut rest = Vec::new();
    while let Some(chunk) = next(&mut stream) {
        assert!(chunk.len() <= 4);
        rest.extend(chunk);
    }
    assert_eq!(rest, b"0123456789");
    // Ended: the reader is not read again.
    assert!(matches!(poll_next(&mut stream), Poll::Ready(None)));
}

/// A waker that records that it was woken.
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn an_interrupted_read_is_retried_not_yielded() {
    let reader = Scripted::new([
        data(b"ab"),
        fail(io::ErrorKind::Interrupted),
        data(b"cd"),
        fail(io::ErrorKind::BrokenPipe),
        data(b"never read"),
    ]);
    let mut stream = ReaderStream::new(reader);
    assert!(matches!(poll_next(&mut stream), Poll::Ready(Some(Ok(c))) if c == "ab"));
    // The interrupted read: Pending, with the task woken to read again.
    let woken = Arc::new(Flag(AtomicBool::new(false)));
    let waker = Waker::from(woken.clone());
    let polled = Pin::new(&mut stream).poll_next(&mut Context::from_waker(&waker));
    assert!(polled.is_pending());
    assert!(woken.0.load(Ordering::SeqCst), "woken to retry");
    assert!(matches!(poll_next(&mut stream), Poll::Ready(Some(Ok(c))) if c == "cd"));
    // Any other error is yielded once and ends the stream.
    match poll_next(&mut stream) {
        Poll::Ready(Some(Err(e))) => assert_eq!(e.kind(), io::ErrorKind::BrokenPipe),
        other => panic!("expected the error, got {other:?}"),
    }
    assert!(matches!(poll_next(&mut stream), Poll::Ready(None)));
    assert!(matches!(poll_next(&mut stream), Poll::Ready(None)));
}
