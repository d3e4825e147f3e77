//! `io::copy` and `io::copy_bidirectional` over streams that break the read/write contract
//! by reporting more bytes than the buffer holds: the copy ends with an error, rather than
//! looping for ever inside one poll (the whole loop hung) or panicking on a slice.

mod support;

use std::io::ErrorKind;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use overlap::io::{copy, copy_bidirectional, AsyncRead, AsyncWrite};
use support::watchdog;

/// Reads give `left` bytes then end of file; writes take everything. With `overclaim`,
/// each read (before end of file) or write reports one byte more than the buffer holds.
struct Lying {
    left: usize,
    overclaim: bool,
}

impl AsyncRead for Lying {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        let n = buf.len().min(self.left);
        buf[..n].fill(b'x');
        self.left -= n;
        Poll::Ready(Ok(if self.overclaim && n > 0 {
            buf.len() + 1
        } else {
            n
        }))
    }
}

impl AsyncWrite for Lying {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Ok(buf.len() + usize::from(self.overclaim)))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn honest(left: usize) -> Lying {
    Lying {
        left,
        overclaim: false,
    }
}

fn lying(left: usize) -> Lying {
    Lying {
        left,
        overclaim: true,
    }
}

/// Copies from `from` to `to` with `copy`, then between them with `copy_bidirectional`:
/// each must end with `InvalidData`, within the watchdog's time.
fn both_copies_fail(from: fn(usize) -> Lying, to: fn(usize) -> Lying) {
    let done = watchdog(20);
    overlap::block_on(async {
        let err = copy(from(100), &mut to(0)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData, "copy: {err}");
        let err = copy_bidirectional(&mut from(100), &mut to(0))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData, "bidirectional: {err}");
    });
    done.store(true, Ordering::Relaxed);
}

#[test]
fn a_writer_claiming_more_than_it_was_given_ends_the_copies_with_an_error() {
    both_copies_fail(honest, lying);
}

#[test]
fn a_reader_claiming_more_than_the_buffer_ends_the_copies_with_an_error() {
    both_copies_fail(lying, honest);
}
