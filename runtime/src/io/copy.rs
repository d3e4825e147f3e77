//! `copy` and `copy_buf`: one-way copies that flush while the source is idle and spend the
//! task's cooperative budget, as tokio's do (futures-util's do neither).

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_util::io::{AsyncBufRead, AsyncWrite};

use super::copy_bidirectional::Direction;

/// Copies `reader` to `writer` until end of file, then flushes `writer`; returns the bytes
/// copied. `writer` is not closed.
///
/// Whenever `reader` has nothing for now, `writer` is flushed: bytes never sit in a
/// buffered writer (a `BufWriter`, a TLS stream) while the other end waits for them. Every
/// read spends a unit of the task's cooperative budget, so a copy between streams that are
/// always ready still lets other tasks run. `Interrupted` is retried on both sides. Both
/// differ from futures-util's `copy`, and match tokio's. Not cancel-safe: bytes read and not
/// yet written (up to 8 KiB) are lost if the future is dropped. Between two fds,
/// `overlap::pipe::splice_copy` does the same inside the kernel.
///
/// ```
/// use overlap::io::{copy, AsyncReadExt, AsyncWriteExt, BufWriter};
/// use overlap::net::UnixStream;
///
/// overlap::block_on(async {
///     let (mut client, proxy_in) = UnixStream::pair()?;
///     let (proxy_out, mut server) = UnixStream::pair()?;
///     let relay = overlap::spawn(async move {
///         copy(proxy_in, &mut BufWriter::new(proxy_out)).await
///     });
///     client.write_all(b"ping").await?;
///     // Arrives although the client is still open and the writer buffers.
///     let mut got = [0u8; 4];
///     server.read_exact(&mut got).await?;
///     assert_eq!(&got, b"ping");
///     client.close().await?;
///     assert_eq!(relay.await.unwrap()?, 4);
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub async fn copy<R, W>(reader: R, writer: &mut W) -> io::Result<u64>
where
    R: futures_util::io::AsyncRead,
    W: AsyncWrite + Unpin + ?Sized,
{
    let mut reader = std::pin::pin!(reader);
    let mut dir = Direction::new();
    poll_fn(|cx| dir.poll_copy(cx, reader.as_mut(), Pin::new(&mut *writer))).await?;
    Ok(dir.copied)
}

/// Like [`copy`], from a buffered reader, whose own buffer is written out (no second
/// buffer): flushes `writer` whenever `reader` has nothing for now, spends the task's
/// budget per fill, and retries `Interrupted`.
///
/// Unlike `copy`, it loses no byte when dropped before it completes: a byte leaves
/// `reader`'s buffer only once `writer` has taken it, so a copy from `&mut reader` cut short
/// (by a timeout, a `select!`) leaves the rest there for the next read. Only the count of
/// bytes copied so far is lost.
///
/// ```
/// use overlap::io::{copy_buf, BufReader};
///
/// overlap::block_on(async {
///     let mut out = Vec::new();
///     let n = copy_buf(BufReader::new(&b"hello"[..]), &mut out).await?;
///     assert_eq!((n, &out[..]), (5, &b"hello"[..]));
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
///
/// ```
/// use std::time::Duration;
/// use overlap::io::{copy_buf, duplex, AsyncReadExt, BufReader};
///
/// overlap::block_on(async {
///     let mut source = BufReader::new(&b"hello world"[..]);
///     let (mut near, mut far) = duplex(4); // room for 4 bytes, and nobody reads yet
///     let copy = copy_buf(&mut source, &mut near);
///     assert!(overlap::time::timeout(Duration::from_millis(1), copy).await.is_err());
///     let mut sent = [0u8; 4];
///     far.read_exact(&mut sent).await?;
///     let mut rest = Vec::new();
///     source.read_to_end(&mut rest).await?;
///     assert_eq!((&sent[..], &rest[..]), (&b"hell"[..], &b"o world"[..]));
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub async fn copy_buf<R, W>(reader: R, writer: &mut W) -> io::Result<u64>
where
    R: AsyncBufRead,
    W: AsyncWrite + Unpin + ?Sized,
{
    let mut reader = std::pin::pin!(reader);
    let mut state = BufCopy::default();
    poll_fn(|cx| state.poll(cx, reader.as_mut(), Pin::new(&mut *writer))).await
}

#[derive(Default)]
struct BufCopy {
    copied: u64,
    unflushed: bool,
}

impl BufCopy {
    fn poll<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        mut from: Pin<&mut R>,
        mut to: Pin<&mut W>,
    ) -> Poll<io::Result<u64>>
    where
        R: AsyncBufRead + ?Sized,
        W: AsyncWrite + ?Sized,
    {
        loop {
            // A fill that finds nothing gives its unit back, or an idle copy polled in a
            // `select!` loop would use up the budget of the task's other work.
            let filled = crate::coop::budgeted(cx, |cx| from.as_mut().poll_fill_buf(cx));
            let buf = match filled {
                Poll::Ready(Ok(buf)) => buf,
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    ready!(flush_if(&mut self.unflushed, to, cx))?;
                    return Poll::Pending;
                }
            };
            if buf.is_empty() {
                ready!(to.as_mut().poll_flush(cx))?;
                self.unflushed = false;
                return Poll::Ready(Ok(self.copied));
            }
            let n = ready!(write_some(to.as_mut(), cx, buf))?;
            from.as_mut().consume(n);
            self.copied += n as u64;
            self.unflushed = true;
        }
    }
}

/// Flushes `to` if bytes were written since the last flush: the reader has nothing for now,
/// and nothing may sit in a buffered writer while the other end waits for it.
pub(super) fn flush_if<W: AsyncWrite + ?Sized>(
    unflushed: &mut bool,
    to: Pin<&mut W>,
    cx: &mut Context<'_>,
) -> Poll<io::Result<()>> {
    if *unflushed {
        ready!(to.poll_flush(cx))?;
        *unflushed = false;
    }
    Poll::Ready(Ok(()))
}

/// A read's result, with a count larger than the `room` it was given turned into an
/// `InvalidData` error: the bytes past the real ones would be whatever the buffer held.
pub(super) fn checked_read(res: io::Result<usize>, room: usize) -> io::Result<usize> {
    match res {
        Ok(n) if n > room => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the source claimed to read more bytes than the buffer holds",
        )),
        res => res,
    }
}

/// The result of a write of `given` bytes (never 0), with a write that took none turned
/// into a `WriteZero` error (a loop would spin on it for ever) and one claiming more than
/// `given` into an `InvalidData` error (a position would pass the buffer's end).
pub(super) fn checked_write(res: io::Result<usize>, given: usize) -> io::Result<usize> {
    match res {
        Ok(0) => Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "the destination accepted no bytes",
        )),
        Ok(n) if n > given => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the destination claimed to write more bytes than it was given",
        )),
        res => res,
    }
}

/// Writes some of `buf` to `to`: retries `Interrupted`, and checks the count (see
/// [`checked_write`]).
pub(super) fn write_some<W: AsyncWrite + ?Sized>(
    mut to: Pin<&mut W>,
    cx: &mut Context<'_>,
    buf: &[u8],
) -> Poll<io::Result<usize>> {
    loop {
        match ready!(to.as_mut().poll_write(cx, buf)) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            res => return Poll::Ready(checked_write(res, buf.len())),
        }
    }
}
