//! `copy_bidirectional`: the heart of a proxy. Two one-way copies run in one future, and
//! each passes its source's end of file on as a write shutdown.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_util::io::{AsyncRead, AsyncWrite};

/// Bytes each direction holds between a read and its write.
const BUF_SIZE: usize = 8 * 1024;

/// Copies from `a` to `b` and from `b` to `a` at the same time, until both have reached end
/// of file; returns the bytes copied `(a to b, b to a)`.
///
/// When one side reaches end of file, the other side's writing half is flushed and closed
/// (for a socket, `shutdown(Write)`), so half-closed connections behave through the copy as
/// they would directly: the far end reads end of file and may still answer. The first error
/// in either direction ends the copy and is returned; bytes already read but not yet written
/// are then lost, as with any failed copy. Dropping the future stops both directions at
/// once, leaving the streams open, but it is not cancel-safe: bytes it had read and not yet
/// written (up to 8 KiB each way) are lost with it, so a copy cancelled mid-transfer (by a
/// timeout, or a `select!`) cannot be resumed by another copy over the same streams.
///
/// Each direction uses an 8 KiB buffer ([`copy_bidirectional_with_sizes`] takes others).
/// Every read spends a unit of the task's cooperative budget, so a copy between streams
/// that are always ready still lets other tasks run; the two directions take turns going
/// first, so neither starves the other. Between two sockets or pipes, `overlap::pipe`'s
/// `splice_bidirectional` does the same inside the kernel, with no copy through this
/// process; this function works on any futures-io streams (TLS, compression, test doubles).
///
/// ```
/// use overlap::io::{copy_bidirectional, AsyncReadExt, AsyncWriteExt};
/// use overlap::net::UnixStream;
///
/// overlap::block_on(async {
///     // client <-> (proxy_in | proxy_out) <-> server
///     let (mut client, mut proxy_in) = UnixStream::pair()?;
///     let (mut proxy_out, mut server) = UnixStream::pair()?;
///     let proxy = overlap::spawn(async move {
///         copy_bidirectional(&mut proxy_in, &mut proxy_out).await
///     });
///     client.write_all(b"ping").await?;
///     client.close().await?; // passed on: the server reads end of file
///     let mut got = Vec::new();
///     server.read_to_end(&mut got).await?;
///     server.write_all(b"pong").await?;
///     server.close().await?;
///     let mut reply = Vec::new();
///     client.read_to_end(&mut reply).await?;
///     assert_eq!((&got[..], &reply[..]), (&b"ping"[..], &b"pong"[..]));
///     assert_eq!(proxy.await.unwrap()?, (4, 4));
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub async fn copy_bidirectional<A, B>(a: &mut A, b: &mut B) -> io::Result<(u64, u64)>
where
    A: AsyncRead + AsyncWrite + Unpin + ?Sized,
    B: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    copy_both_ways(a, b, Direction::new(), Direction::new()).await
}

/// [`copy_bidirectional`] with a buffer of `a_to_b_size` bytes for the way from `a` to `b`
/// and one of `b_to_a_size` for the way back, as tokio's `copy_bidirectional_with_sizes`:
/// a proxy of many connections trims them, one carrying TLS records (up to 16 KiB each)
/// may widen them so that a record is read whole.
///
/// A size of 0, which would read nothing and take it for the end of the stream, is refused
/// with `InvalidInput` before anything is read or written, where tokio's panics.
///
/// ```
/// use overlap::io::{copy_bidirectional_with_sizes, AsyncReadExt, AsyncWriteExt};
/// use overlap::net::UnixStream;
///
/// overlap::block_on(async {
///     let (mut client, mut proxy_in) = UnixStream::pair()?;
///     let (mut proxy_out, mut server) = UnixStream::pair()?;
///     let proxy = overlap::spawn(async move {
///         copy_bidirectional_with_sizes(&mut proxy_in, &mut proxy_out, 16 * 1024, 1024).await
///     });
///     client.write_all(b"ping").await?;
///     client.close().await?;
///     let mut got = Vec::new();
///     server.read_to_end(&mut got).await?;
///     server.close().await?;
///     assert_eq!(got, b"ping");
///     assert_eq!(proxy.await.unwrap()?, (4, 0));
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub async fn copy_bidirectional_with_sizes<A, B>(
    a: &mut A,
    b: &mut B,
    a_to_b_size: usize,
    b_to_a_size: usize,
) -> io::Result<(u64, u64)>
where
    A: AsyncRead + AsyncWrite + Unpin + ?Sized,
    B: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    if a_to_b_size == 0 || b_to_a_size == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "copy_bidirectional_with_sizes: a buffer size of 0 cannot copy anything",
        ));
    }
    let (a_to_b, b_to_a) = (
        Direction::with_size(a_to_b_size),
        Direction::with_size(b_to_a_size),
    );
    copy_both_ways(a, b, a_to_b, b_to_a).await
}

/// Runs the two directions in one future until both are done, or one fails.
async fn copy_both_ways<A, B>(
    a: &mut A,
    b: &mut B,
    mut a_to_b: Direction,
    mut b_to_a: Direction,
) -> io::Result<(u64, u64)>
where
    A: AsyncRead + AsyncWrite + Unpin + ?Sized,
    B: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    // Which direction goes first alternates from poll to poll: a side that is always
    // readable may spend the task's whole budget, and must not starve the other way.
    let mut b_first = false;
    poll_fn(|cx| {
        b_first = !b_first;
        let (a_done, b_done) = if b_first {
            let b_done = b_to_a.poll(cx, &mut *b, &mut *a)?;
            (a_to_b.poll(cx, &mut *a, &mut *b)?, b_done)
        } else {
            let a_done = a_to_b.poll(cx, &mut *a, &mut *b)?;
            (a_done, b_to_a.poll(cx, &mut *b, &mut *a)?)
        };
        match (a_done, b_done) {
            (Poll::Ready(there), Poll::Ready(back)) => Poll::Ready(Ok((there, back))),
            _ => Poll::Pending,
        }
    })
    .await
}

/// One way of the copy (also [`copy`](super::copy)'s engine).
pub(super) struct Direction {
    buf: Box<[u8]>,
    /// `buf[pos..end]` is read and not yet written.
    pos: usize,
    end: usize,
    pub(super) copied: u64,
    read_eof: bool,
    /// Bytes were written since the last flush.
    unflushed: bool,
    stage: Stage,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    Copying,
    /// The source ended and everything is written: closing the destination's write half.
    Closing,
    Done,
}

impl Direction {
    pub(super) fn new() -> Direction {
        Direction::with_size(BUF_SIZE)
    }

    /// A direction reading through a buffer of `size` bytes (not 0).
    fn with_size(size: usize) -> Direction {
        Direction {
            buf: vec![0; size].into_boxed_slice(),
            pos: 0,
            end: 0,
            copied: 0,
            read_eof: false,
            unflushed: false,
            stage: Stage::Copying,
        }
    }

    /// Drives this direction; `Ready(copied)` once its destination is closed.
    fn poll<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        from: &mut R,
        to: &mut W,
    ) -> Poll<io::Result<u64>>
    where
        R: AsyncRead + Unpin + ?Sized,
        W: AsyncWrite + Unpin + ?Sized,
    {
        loop {
            match self.stage {
                Stage::Copying => {
                    ready!(self.poll_copy(cx, Pin::new(&mut *from), Pin::new(&mut *to)))?;
                    self.stage = Stage::Closing;
                }
                Stage::Closing => {
                    ready!(Pin::new(&mut *to).poll_close(cx))?;
                    self.stage = Stage::Done;
                }
                Stage::Done => return Poll::Ready(Ok(self.copied)),
            }
        }
    }

    /// Copies until the source's end of file, with everything written and flushed.
    pub(super) fn poll_copy<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        mut from: Pin<&mut R>,
        mut to: Pin<&mut W>,
    ) -> Poll<io::Result<()>>
    where
        R: AsyncRead + ?Sized,
        W: AsyncWrite + ?Sized,
    {
        loop {
            if self.pos == self.end && !self.read_eof {
                // Streams that are always ready (in memory, say) never say `Pending` by
                // themselves: the task's budget makes the copy let other tasks run. A read
                // that finds nothing gives its unit back.
                let read =
                    crate::coop::budgeted(cx, |cx| from.as_mut().poll_read(cx, &mut self.buf));
                match read.map(|res| super::copy::checked_read(res, self.buf.len())) {
                    Poll::Ready(Ok(0)) => self.read_eof = true,
                    Poll::Ready(Ok(n)) => (self.pos, self.end) = (0, n),
                    Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {
                        // Nothing more to read now (or the budget is spent).
                        ready!(super::copy::flush_if(&mut self.unflushed, to, cx))?;
                        return Poll::Pending;
                    }
                }
            }
            while self.pos < self.end {
                let pending = &self.buf[self.pos..self.end];
                let n = ready!(super::copy::write_some(to.as_mut(), cx, pending))?;
                self.pos += n;
                self.copied += n as u64;
                self.unflushed = true;
            }
            if self.read_eof {
                ready!(to.as_mut().poll_flush(cx))?;
                self.unflushed = false;
                return Poll::Ready(Ok(()));
            }
        }
    }
}
