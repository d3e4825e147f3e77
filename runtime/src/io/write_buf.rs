//! `AsyncWriteBufExt::write_buf` and `write_all_buf`: tokio's writes that consume a buffer
//! ([`BytesMut`], `VecDeque<u8>`, a `Cursor` or a `&[u8]`) by what was written, on any
//! futures-io writer.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io::{self, Cursor, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::io::AsyncWrite;

use crate::codec::BytesMut;

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::codec::BytesMut {}
    impl Sealed for std::collections::VecDeque<u8> {}
    impl Sealed for &[u8] {}
    impl<T: AsRef<[u8]>> Sealed for std::io::Cursor<T> {}
}

/// A buffer [`write_buf`](AsyncWriteBufExt::write_buf) and
/// [`write_all_buf`](AsyncWriteBufExt::write_all_buf) take bytes from, dropping them from
/// its front as they are written: the ones tokio programs pass to theirs (whose bound is
/// `bytes`' `Buf`), [`BytesMut`], `VecDeque<u8>`, `std::io::Cursor<T: AsRef<[u8]>>` (from
/// its position) and `&[u8]` (the slice moves past what was written). Sealed.
pub trait WriteBufSource: sealed::Sealed {
    /// The bytes left, in order: a second slice only where they wrap (a `VecDeque`).
    #[doc(hidden)]
    fn remaining_slices(&self) -> (&[u8], &[u8]);

    /// How many bytes are left.
    #[doc(hidden)]
    fn remaining(&self) -> usize {
        let (first, second) = self.remaining_slices();
        first.len() + second.len()
    }

    /// Drops the first `n` bytes left (`n` is at most how many are left).
    #[doc(hidden)]
    fn consume(&mut self, n: usize);
}

impl WriteBufSource for BytesMut {
    fn remaining_slices(&self) -> (&[u8], &[u8]) {
        (self.chunk(), &[])
    }

    fn consume(&mut self, n: usize) {
        self.advance(n);
    }
}

impl WriteBufSource for VecDeque<u8> {
    fn remaining_slices(&self) -> (&[u8], &[u8]) {
        self.as_slices()
    }

    fn consume(&mut self, n: usize) {
        self.drain(..n);
    }
}

impl WriteBufSource for &[u8] {
    fn remaining_slices(&self) -> (&[u8], &[u8]) {
        (self, &[])
    }

    fn consume(&mut self, n: usize) {
        *self = &self[n..];
    }
}

impl<T: AsRef<[u8]>> WriteBufSource for Cursor<T> {
    fn remaining_slices(&self) -> (&[u8], &[u8]) {
        let all = self.get_ref().as_ref();
        // A position past the end (a `set_position` may put it there) leaves nothing.
        let start = usize::try_from(self.position()).map_or(all.len(), |p| p.min(all.len()));
        (&all[start..], &[])
    }

    fn consume(&mut self, n: usize) {
        let start = self.get_ref().as_ref().len() - self.remaining();
        self.set_position((start + n) as u64);
    }
}

/// Writes once from `buf`'s bytes, dropping from it what the writer took; `Ok(0)` without
/// a write when it has none, and an `InvalidData` error, `buf` untouched, when the writer
/// claims more than it was given.
fn poll_write_once<W: AsyncWrite + ?Sized, B: WriteBufSource + ?Sized>(
    writer: Pin<&mut W>,
    cx: &mut Context<'_>,
    buf: &mut B,
) -> Poll<io::Result<usize>> {
    let left = buf.remaining();
    if left == 0 {
        return Poll::Ready(Ok(0));
    }
    let (first, second) = buf.remaining_slices();
    let written = if second.is_empty() {
        writer.poll_write(cx, first)
    } else {
        writer.poll_write_vectored(cx, &[IoSlice::new(first), IoSlice::new(second)])
    };
    let n = match written {
        Poll::Ready(Ok(0)) => return Poll::Ready(Ok(0)),
        // A count past what it was given is an `InvalidData` error, as in `copy`.
        Poll::Ready(res) => super::copy::checked_write(res, left)?,
        Poll::Pending => return Poll::Pending,
    };
    buf.consume(n);
    Poll::Ready(Ok(n))
}

/// tokio's `AsyncWriteExt::write_buf` and `write_all_buf` on every futures-io writer: the
/// bytes written are dropped from the front of the buffer, so what is left in it is
/// exactly what has not been written. Their names differ from those of futures'
/// [`AsyncWriteExt`](futures_util::io::AsyncWriteExt), so both traits may be imported.
pub trait AsyncWriteBufExt: AsyncWrite + Unpin {
    /// Writes once from `buf`'s bytes and drops from it the bytes written, returning how
    /// many. A buffer with no bytes gives `Ok(0)` at once, without a write. A writer that
    /// claims to have taken more bytes than it was given is an
    /// [`InvalidData`](io::ErrorKind::InvalidData) error, the buffer left as it was (as
    /// with [`copy`](crate::io::copy)), where tokio's `advance` would panic.
    ///
    /// # Cancel safety
    /// Cancel-safe: dropped before it completes, it has written nothing and `buf` is as it
    /// was.
    ///
    /// ```
    /// use overlap::codec::BytesMut;
    /// use overlap::io::{AsyncReadExt, AsyncWriteBufExt};
    ///
    /// overlap::block_on(async {
    ///     let (mut a, mut b) = overlap::io::duplex(4);
    ///     let mut buf = BytesMut::from(&b"hello"[..]);
    ///     let n = a.write_buf(&mut buf).await?; // the pipe takes 4 bytes
    ///     assert_eq!((n, &buf[..]), (4, &b"o"[..]));
    ///     let mut got = [0u8; 4];
    ///     b.read_exact(&mut got).await?;
    ///     assert_eq!(&got, b"hell");
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    fn write_buf<'a, B: WriteBufSource + ?Sized>(
        &'a mut self,
        buf: &'a mut B,
    ) -> WriteBuf<'a, Self, B> {
        WriteBuf { writer: self, buf }
    }

    /// Writes until `buf` has no bytes left, dropping each write's bytes from it as that
    /// write completes. A write of 0 bytes fails with
    /// [`WriteZero`](io::ErrorKind::WriteZero), an over-claiming writer as with
    /// [`write_buf`](Self::write_buf), and `Interrupted` is retried; on any error, `buf`
    /// holds the bytes not written.
    ///
    /// # Cancel safety
    /// Dropped before it completes (a `select!` branch that lost, a `timeout`), it leaves
    /// in `buf` exactly the bytes not written yet: a new `write_all_buf(&mut buf)` goes on
    /// where it stopped, with no byte lost or sent twice (tokio's contract too).
    ///
    /// ```
    /// use std::collections::VecDeque;
    /// use overlap::io::{AsyncReadExt, AsyncWriteBufExt};
    ///
    /// overlap::block_on(async {
    ///     let (mut a, mut b) = overlap::io::duplex(64);
    ///     let mut queue: VecDeque<u8> = b"world".iter().copied().collect();
    ///     queue.extend(b"!");
    ///     for &byte in b" ,olleh".iter() {
    ///         queue.push_front(byte); // wraps around: two slices
    ///     }
    ///     a.write_all_buf(&mut queue).await?;
    ///     assert!(queue.is_empty());
    ///     drop(a);
    ///     let mut got = String::new();
    ///     b.read_to_string(&mut got).await?;
    ///     assert_eq!(got, "hello, world!");
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    fn write_all_buf<'a, B: WriteBufSource + ?Sized>(
        &'a mut self,
        buf: &'a mut B,
    ) -> WriteAllBuf<'a, Self, B> {
        WriteAllBuf { writer: self, buf }
    }
}

impl<W: AsyncWrite + Unpin + ?Sized> AsyncWriteBufExt for W {}

/// The future of [`AsyncWriteBufExt::write_buf`].
#[must_use = "futures do nothing unless polled"]
pub struct WriteBuf<'a, W: ?Sized, B: ?Sized> {
    writer: &'a mut W,
    buf: &'a mut B,
}

impl<W: AsyncWrite + Unpin + ?Sized, B: WriteBufSource + ?Sized> Future for WriteBuf<'_, W, B> {
    type Output = io::Result<usize>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        poll_write_once(Pin::new(&mut *this.writer), cx, &mut *this.buf)
    }
}

/// The future of [`AsyncWriteBufExt::write_all_buf`].
#[must_use = "futures do nothing unless polled"]
pub struct WriteAllBuf<'a, W: ?Sized, B: ?Sized> {
    writer: &'a mut W,
    buf: &'a mut B,
}

impl<W: AsyncWrite + Unpin + ?Sized, B: WriteBufSource + ?Sized> Future for WriteAllBuf<'_, W, B> {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            match poll_write_once(Pin::new(&mut *this.writer), cx, &mut *this.buf) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<W: ?Sized, B: ?Sized> fmt::Debug for WriteBuf<'_, W, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteBuf").finish_non_exhaustive()
    }
}

impl<W: ?Sized, B: ?Sized> fmt::Debug for WriteAllBuf<'_, W, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteAllBuf").finish_non_exhaustive()
    }
}
