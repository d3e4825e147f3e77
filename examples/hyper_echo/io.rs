//! `HyperIo`: hyper's I/O traits over any futures-io stream, so hyper runs on overlap.

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::rt::{Read, ReadBufCursor, Write};
use overlap::io::{AsyncRead, AsyncWrite};
use overlap::time::{Instant, Sleep};

/// How much one read asks the stream for (at most; less if hyper's buffer has less room).
const SCRATCH: usize = 8 * 1024;

/// A futures-io stream (an overlap `TcpStream`, `UnixStream`, a TLS stream...) seen through
/// hyper's `Read` and `Write`.
///
/// hyper hands reads an uninitialized buffer, which a futures-io read cannot take without
/// `unsafe`; the bytes land in a small scratch buffer first and are copied over. Writes go
/// straight through, vectored (one `sendmsg` for a response's head and body).
///
/// A connection on which no byte moves either way for `idle` fails with `TimedOut`: a
/// client that sends half a request and stops, or stops reading its answers, does not hold
/// its task and fd for ever. (hyper's own header timeout needs a `Send` timer, and overlap's
/// timers belong to one thread.)
#[derive(Debug)]
pub struct HyperIo<T> {
    inner: T,
    scratch: Box<[u8]>,
    idle: Idle,
}

impl<T> HyperIo<T> {
    pub fn new(inner: T, idle: Duration) -> HyperIo<T> {
        HyperIo {
            inner,
            scratch: vec![0; SCRATCH].into_boxed_slice(),
            idle: Idle {
                limit: idle,
                timer: None,
                moved: false,
            },
        }
    }
}

/// The idle deadline, kept lazily: progress only sets a flag, and the timer (armed the
/// first time I/O waits) checks the flag when it fires, re-arming instead of failing if
/// bytes moved meanwhile. So the hot path reads no clock.
#[derive(Debug)]
struct Idle {
    limit: Duration,
    timer: Option<Sleep>,
    /// Bytes moved since the timer was (re-)armed.
    moved: bool,
}

impl Idle {
    /// Bytes moved: the connection is not idle.
    fn moved(&mut self) {
        self.moved = true;
    }

    /// Notes a write's progress, or checks the deadline while it waits.
    fn watch(
        &mut self,
        cx: &mut Context<'_>,
        written: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match written {
            Poll::Ready(res) => {
                self.moved();
                Poll::Ready(res)
            }
            Poll::Pending => self.poll_expired(cx).map(Err),
        }
    }

    /// Called when I/O waits: `Pending` while the connection may still wait, the error to
    /// fail with once nothing moved for the whole limit.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let limit = self.limit;
        let timer = self
            .timer
            .get_or_insert_with(|| overlap::time::sleep(limit));
        while Pin::new(&mut *timer).poll(cx).is_ready() {
            if !std::mem::take(&mut self.moved) {
                return Poll::Ready(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no byte moved on the connection for the idle limit",
                ));
            }
            timer.reset(Instant::now() + limit);
        }
        Poll::Pending
    }
}

impl<T: AsyncRead + Unpin> Read for HyperIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let want = buf.remaining().min(this.scratch.len());
        let scratch = &mut this.scratch[..want];
        match Pin::new(&mut this.inner).poll_read(cx, scratch) {
            Poll::Ready(Ok(n)) => {
                this.idle.moved();
                buf.put_slice(&scratch[..n]);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.idle.poll_expired(cx).map(Err),
        }
    }
}

impl<T: AsyncWrite + Unpin> Write for HyperIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.idle.watch(cx, written)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.idle.watch(cx, written)
    }
}
