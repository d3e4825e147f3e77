//! [`InspectReader`] and [`InspectWriter`], tokio-util's: a reader or writer that shows
//! each chunk of bytes to a closure as it goes through, to hash or count a stream while
//! it is copied.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_util::io::{AsyncRead, AsyncWrite, IoSlice, IoSliceMut};
use pin_project_lite::pin_project;

pin_project! {
    /// A reader that calls `f` with each chunk of bytes it reads, once, in order, before
    /// handing it on: tokio-util's `io::InspectReader`.
    ///
    /// `f` sees exactly the bytes each read returns, in as many pieces as there were reads
    /// (slice by slice for a vectored read), and nothing for a read that fails or is at
    /// end of file. Writes, if the inner value also writes, go through untouched.
    ///
    /// ```
    /// use overlap::io::{self, AsyncReadExt, InspectReader};
    ///
    /// overlap::block_on(async {
    ///     let (mut near, far) = io::duplex(64);
    ///     overlap::spawn(async move {
    ///         use overlap::io::AsyncWriteExt;
    ///         near.write_all(b"hello, world").await?;
    ///         near.close().await
    ///     });
    ///     let mut seen = 0usize;
    ///     let mut reader = InspectReader::new(far, |chunk: &[u8]| seen += chunk.len());
    ///     let mut text = String::new();
    ///     reader.read_to_string(&mut text).await?;
    ///     drop(reader); // ends the closure's borrows
    ///     assert_eq!((text.as_str(), seen), ("hello, world", 12));
    ///     io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub struct InspectReader<R, F> {
        #[pin]
        reader: R,
        f: F,
    }
}

impl<R, F> InspectReader<R, F> {
    /// Wraps `reader`, calling `f` with every chunk read through it.
    pub fn new(reader: R, f: F) -> InspectReader<R, F>
    where
        R: AsyncRead,
        F: FnMut(&[u8]),
    {
        InspectReader { reader, f }
    }

    /// The reader, unwrapped; the closure is dropped.
    pub fn into_inner(self) -> R {
        self.reader
    }

    /// The reader.
    pub fn get_ref(&self) -> &R {
        &self.reader
    }

    /// The reader: bytes read through it directly are not shown to the closure.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.reader
    }
}

impl<R: AsyncRead, F: FnMut(&[u8])> AsyncRead for InspectReader<R, F> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let me = self.project();
        let n = ready!(me.reader.poll_read(cx, buf))?;
        // A reader claiming more than the room it was given is the caller's to report
        // (`read_to_end`, `copy` do): the closure is shown only the buffer.
        let n_seen = n.min(buf.len());
        if n_seen > 0 {
            (me.f)(&buf[..n_seen]);
        }
        Poll::Ready(Ok(n))
    }

    fn poll_read_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        let me = self.project();
        let n = ready!(me.reader.poll_read_vectored(cx, bufs))?;
        for_each_filled(bufs.iter().map(|b| &**b), n, me.f);
        Poll::Ready(Ok(n))
    }
}

impl<R: AsyncWrite, F> AsyncWrite for InspectReader<R, F> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().reader.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().reader.poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().reader.poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().reader.poll_close(cx)
    }
}

pin_project! {
    /// A writer that calls `f` with the bytes each write took, once, in order, after the
    /// inner writer accepted them: tokio-util's `io::InspectWriter`.
    ///
    /// A write that takes only part of what it is given shows `f` only that part (the rest
    /// is offered again by the caller and shown when taken), so `f` sees exactly the bytes
    /// that went out, each once. A failed write shows nothing; so do flush and close. Reads,
    /// if the inner value also reads, go through untouched.
    ///
    /// ```
    /// use overlap::io::{self, AsyncReadExt, AsyncWriteExt, InspectWriter};
    ///
    /// overlap::block_on(async {
    ///     let (near, mut far) = io::duplex(4); // room for 4 bytes at a time
    ///     let mut written = Vec::new();
    ///     let mut writer = InspectWriter::new(near, |chunk: &[u8]| written.extend_from_slice(chunk));
    ///     assert_eq!(writer.write(b"abcdef").await?, 4, "only what fits");
    ///     let mut got = [0u8; 4];
    ///     far.read_exact(&mut got).await?;
    ///     drop(writer);
    ///     assert_eq!(written, b"abcd", "the closure saw what was taken, not what was offered");
    ///     io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub struct InspectWriter<W, F> {
        #[pin]
        writer: W,
        f: F,
    }
}

impl<W, F> InspectWriter<W, F> {
    /// Wraps `writer`, calling `f` with every chunk written through it.
    pub fn new(writer: W, f: F) -> InspectWriter<W, F>
    where
        W: AsyncWrite,
        F: FnMut(&[u8]),
    {
        InspectWriter { writer, f }
    }

    /// The writer, unwrapped; the closure is dropped.
    pub fn into_inner(self) -> W {
        self.writer
    }

    /// The writer.
    pub fn get_ref(&self) -> &W {
        &self.writer
    }

    /// The writer: bytes written through it directly are not shown to the closure.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.writer
    }
}

impl<W: AsyncWrite, F: FnMut(&[u8])> AsyncWrite for InspectWriter<W, F> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let me = self.project();
        let n = ready!(me.writer.poll_write(cx, buf))?;
        // A writer claiming more than it was given is the caller's to report (`copy`,
        // `write_all` do): the closure is shown only bytes that exist.
        let n_seen = n.min(buf.len());
        if n_seen > 0 {
            (me.f)(&buf[..n_seen]);
        }
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let me = self.project();
        let n = ready!(me.writer.poll_write_vectored(cx, bufs))?;
        for_each_filled(bufs.iter().map(|b| &**b), n, me.f);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().writer.poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().writer.poll_close(cx)
    }
}

impl<W: AsyncRead, F> AsyncRead for InspectWriter<W, F> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.project().writer.poll_read(cx, buf)
    }

    fn poll_read_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().writer.poll_read_vectored(cx, bufs)
    }
}

/// Shows `f` the first `n` bytes spread over `slices`, slice by slice, skipping empty ones.
fn for_each_filled<'a>(
    slices: impl Iterator<Item = &'a [u8]>,
    mut n: usize,
    f: &mut impl FnMut(&[u8]),
) {
    for s in slices {
        if n == 0 {
            break;
        }
        let take = n.min(s.len());
        if take > 0 {
            f(&s[..take]);
        }
        n -= take;
    }
}

impl<R: fmt::Debug, F> fmt::Debug for InspectReader<R, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InspectReader")
            .field("reader", &self.reader)
            .finish_non_exhaustive()
    }
}

impl<W: fmt::Debug, F> fmt::Debug for InspectWriter<W, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InspectWriter")
            .field("writer", &self.writer)
            .finish_non_exhaustive()
    }
}
