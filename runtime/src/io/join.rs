//! [`join`]: tokio's free function that makes one read-write value of a reader and a writer.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::io::{AsyncBufRead, AsyncRead, AsyncWrite, IoSlice, IoSliceMut};
use pin_project_lite::pin_project;

/// Joins a reader and a writer into one value that reads from the first and writes to the
/// second, as tokio's `io::join` does: the inverse of [`split`](super::split).
///
/// Code written for a socket then works over two one-way channels, such as a child
/// process's stdout and stdin (`io::join(child.stdout.take().unwrap(), child.stdin.take().unwrap())`)
/// or two pipe ends. Reads go to the reader (and, when it is an `AsyncBufRead`, so does
/// buffered reading); writes, flushes and `close` go to the writer only, so closing the
/// joined value ends the writer's side (a child sees the end of its input) and leaves the
/// reader readable to its end. [`Join::into_inner`] gives both back.
///
/// ```
/// use overlap::io::{self, AsyncReadExt, AsyncWriteExt};
///
/// overlap::block_on(async {
///     // Two one-way pipes, joined at each end: a byte stream that reads and writes.
///     let (to_far, from_near) = overlap::pipe::pipe()?;
///     let (to_near, from_far) = overlap::pipe::pipe()?;
///     let mut near = io::join(from_far, to_far);
///     let mut far = io::join(from_near, to_near);
///     near.write_all(b"ping").await?;
///     let mut got = [0u8; 4];
///     far.read_exact(&mut got).await?;
///     far.write_all(&got).await?;
///     near.read_exact(&mut got).await?;
///     assert_eq!(&got, b"ping");
///     io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub fn join<R: AsyncRead, W: AsyncWrite>(reader: R, writer: W) -> Join<R, W> {
    Join { reader, writer }
}

pin_project! {
    /// A reader and a writer as one value, from [`join`].
    #[derive(Debug)]
    pub struct Join<R, W> {
        #[pin]
        reader: R,
        #[pin]
        writer: W,
    }
}

impl<R, W> Join<R, W> {
    /// The reader and the writer, apart again.
    pub fn into_inner(self) -> (R, W) {
        (self.reader, self.writer)
    }

    /// The reader.
    pub fn reader(&self) -> &R {
        &self.reader
    }

    /// The writer.
    pub fn writer(&self) -> &W {
        &self.writer
    }

    /// The reader, mutably.
    pub fn reader_mut(&mut self) -> &mut R {
        &mut self.reader
    }

    /// The writer, mutably.
    pub fn writer_mut(&mut self) -> &mut W {
        &mut self.writer
    }

    /// The reader, pinned.
    pub fn reader_pin_mut(self: Pin<&mut Self>) -> Pin<&mut R> {
        self.project().reader
    }

    /// The writer, pinned.
    pub fn writer_pin_mut(self: Pin<&mut Self>) -> Pin<&mut W> {
        self.project().writer
    }
}

impl<R: AsyncRead, W> AsyncRead for Join<R, W> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.project().reader.poll_read(cx, buf)
    }

    fn poll_read_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().reader.poll_read_vectored(cx, bufs)
    }
}

impl<R: AsyncBufRead, W> AsyncBufRead for Join<R, W> {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        self.project().reader.poll_fill_buf(cx)
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        self.project().reader.consume(amt)
    }
}

impl<R, W: AsyncWrite> AsyncWrite for Join<R, W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().writer.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().writer.poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().writer.poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().writer.poll_close(cx)
    }
}
