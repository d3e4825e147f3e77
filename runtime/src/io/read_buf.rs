//! `AsyncReadBufExt::read_buf`: tokio's `read_buf`, a read appended to a growable buffer
//! ([`BytesMut`] or `Vec<u8>`), on any futures-io reader.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use futures_util::io::AsyncRead;

use crate::codec::BytesMut;

/// The most a `Vec<u8>` is offered in one read: its spare capacity must be zeroed before
/// a safe read may fill it, and zeroing a large spare capacity for each small read would
/// cost more than the reads.
const VEC_ROOM_MAX: usize = 64 * 1024;

/// How much room a full buffer gets before a read, as `bytes`' `chunk_mut` makes.
const ROOM_WHEN_FULL: usize = 64;

/// The room methods of [`ReadBufTarget`], the same for both buffers (whose inherent
/// `len`, `capacity`, `reserve`, `resize` and `truncate` they call).
macro_rules! room_methods {
    () => {
        fn open_room(&mut self, max: usize) -> usize {
            let len = self.len();
            if self.capacity() == len {
                self.reserve(ROOM_WHEN_FULL);
            }
            let room = (self.capacity() - len).min(max);
            self.resize(len + room, 0);
            len
        }

        fn all_bytes_mut(&mut self) -> &mut [u8] {
            self
        }

        fn cut_to(&mut self, len: usize) {
            self.truncate(len);
        }
    };
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::codec::BytesMut {}
    impl Sealed for Vec<u8> {}
}

/// A buffer [`read_buf`](AsyncReadBufExt::read_buf) appends to: the two that tokio programs
/// pass to theirs (whose bound is `bytes`' `BufMut`), [`BytesMut`] and `Vec<u8>`. Sealed.
pub trait ReadBufTarget: sealed::Sealed {
    /// Reads once from `reader` into room after the buffer's bytes, keeping what came.
    #[doc(hidden)]
    fn poll_append<R: AsyncRead + ?Sized>(
        &mut self,
        reader: Pin<&mut R>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>>;

    /// Appends zeroed room (the spare capacity, or 64 bytes made when there is none; at
    /// most `max`) and returns the length before it.
    #[doc(hidden)]
    fn open_room(&mut self, max: usize) -> usize;

    /// All the bytes, the room included.
    #[doc(hidden)]
    fn all_bytes_mut(&mut self) -> &mut [u8];

    /// Cuts the buffer back to `len` bytes.
    #[doc(hidden)]
    fn cut_to(&mut self, len: usize);
}

/// Room opened after a buffer's bytes for one receive, cut back on drop to the bytes
/// before it plus those kept: a receive dropped before it completes leaves the buffer as
/// it was.
struct OpenRoom<'a, B: ReadBufTarget> {
    buf: &'a mut B,
    before: usize,
    kept: usize,
}

impl<'a, B: ReadBufTarget> OpenRoom<'a, B> {
    /// Opens room after `buf`'s bytes (at most `max`), none of it kept yet.
    fn open(buf: &'a mut B, max: usize) -> Self {
        let before = buf.open_room(max);
        OpenRoom {
            buf,
            before,
            kept: 0,
        }
    }

    /// The room, to receive into.
    fn space(&mut self) -> &mut [u8] {
        &mut self.buf.all_bytes_mut()[self.before..]
    }

    /// Keeps the first `n` bytes of the room (as many as it has, if fewer) and returns how
    /// many were kept.
    fn keep(&mut self, n: usize) -> usize {
        self.kept = n.min(self.space().len());
        self.kept
    }
}

impl<B: ReadBufTarget> Drop for OpenRoom<'_, B> {
    fn drop(&mut self) {
        self.buf.cut_to(self.before + self.kept);
    }
}

/// Runs one receive into room opened after `buf`'s bytes (at most `max`), keeping the
/// bytes it reports: how sockets' `recv_buf`/`recv_buf_from` fill a [`ReadBufTarget`].
/// Dropped before it completes, it leaves `buf` as it was.
#[doc(hidden)]
pub async fn receive_into<B: ReadBufTarget, T>(
    buf: &mut B,
    max: usize,
    receive: impl AsyncFnOnce(&mut [u8]) -> io::Result<(usize, T)>,
) -> io::Result<(usize, T)> {
    let mut room = OpenRoom::open(buf, max);
    let (n, with) = receive(room.space()).await?;
    Ok((room.keep(n), with))
}

/// [`receive_into`] for a receive that does not wait (a socket's `try_recv_from`): how
/// the datagram sockets' `try_recv_buf`/`try_recv_buf_from` fill a [`ReadBufTarget`].
/// On an error (`WouldBlock` included) `buf` is as it was.
#[doc(hidden)]
pub fn receive_into_now<B: ReadBufTarget, T>(
    buf: &mut B,
    max: usize,
    receive: impl FnOnce(&mut [u8]) -> io::Result<(usize, T)>,
) -> io::Result<(usize, T)> {
    let mut room = OpenRoom::open(buf, max);
    let (n, with) = receive(room.space())?;
    Ok((room.keep(n), with))
}

impl ReadBufTarget for BytesMut {
    fn poll_append<R: AsyncRead + ?Sized>(
        &mut self,
        reader: Pin<&mut R>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        // The spare capacity, as bytes' `BytesMut` offers it; 64 bytes made when there is none.
        let spare = self.capacity() - self.len();
        let min_room = if spare == 0 { ROOM_WHEN_FULL } else { 1 };
        self.poll_read_from(reader, cx, min_room, usize::MAX)
    }

    room_methods!();
}

impl ReadBufTarget for Vec<u8> {
    fn poll_append<R: AsyncRead + ?Sized>(
        &mut self,
        reader: Pin<&mut R>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        let len = self.open_room(VEC_ROOM_MAX);
        let room = self.len() - len;
        let result = reader.poll_read(cx, &mut self[len..]);
        let got = match &result {
            Poll::Ready(Ok(n)) => (*n).min(room),
            _ => 0,
        };
        self.truncate(len + got);
        result.map_ok(|n| n.min(room))
    }

    room_methods!();
}

/// Runs one non-blocking read (`read`, a stream's `try_read`) into the room after `buf`'s
/// bytes, keeping what it reports: how the streams' `try_read_buf` fill a
/// [`ReadBufTarget`], with the room of [`read_buf`](AsyncReadBufExt::read_buf).
#[doc(hidden)]
pub fn read_into_now<B: ReadBufTarget>(
    buf: &mut B,
    read: impl FnOnce(&mut [u8]) -> io::Result<usize> + Unpin,
) -> io::Result<usize> {
    /// A reader that is `read`, once.
    struct ReadOnce<F>(Option<F>);

    impl<F: FnOnce(&mut [u8]) -> io::Result<usize> + Unpin> AsyncRead for ReadOnce<F> {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(match self.0.take() {
                Some(read) => read(buf),
                None => Err(io::ErrorKind::WouldBlock.into()),
            })
        }
    }

    let mut cx = Context::from_waker(Waker::noop());
    match buf.poll_append(Pin::new(&mut ReadOnce(Some(read))), &mut cx) {
        Poll::Ready(result) => result,
        // A `ReadOnce` is always ready; were it not, nothing was read.
        Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
    }
}

/// tokio's `AsyncReadExt::read_buf` on every futures-io reader: reads once, appending
/// what came to a [`BytesMut`] or `Vec<u8>`. Its name differs from those of futures'
/// [`AsyncReadExt`](futures_util::io::AsyncReadExt), so both traits may be imported.
pub trait AsyncReadBufExt: AsyncRead + Unpin {
    /// Reads once into the room after `buf`'s bytes and returns how many bytes came: 0 only
    /// at the end of the stream (a full buffer is first given room, so 0 never means
    /// "no room", as with tokio's `BytesMut` and `Vec`). The buffer keeps its earlier bytes.
    ///
    /// A `BytesMut` is offered all its spare capacity (64 bytes are made when it has none);
    /// a `Vec<u8>` at most 64 KiB of it, since its room must be zeroed first (safe code may
    /// only hand a reader initialised memory): reserve what you expect, as with tokio.
    ///
    /// # Cancel safety
    /// Cancel-safe: dropped before it completes, it has read nothing.
    ///
    /// ```
    /// use overlap::codec::BytesMut;
    /// use overlap::io::{AsyncReadBufExt, AsyncWriteExt};
    ///
    /// overlap::block_on(async {
    ///     let (mut a, mut b) = overlap::io::duplex(64);
    ///     a.write_all(b"hello").await?;
    ///     let mut buf = BytesMut::from(&b"> "[..]);
    ///     let n = b.read_buf(&mut buf).await?;
    ///     assert_eq!((n, &buf[..]), (5, &b"> hello"[..]));
    ///     drop(a);
    ///     let mut vec = Vec::new();
    ///     assert_eq!(b.read_buf(&mut vec).await?, 0); // the end
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    fn read_buf<'a, B: ReadBufTarget>(&'a mut self, buf: &'a mut B) -> ReadBuf<'a, Self, B> {
        ReadBuf { reader: self, buf }
    }
}

impl<R: AsyncRead + Unpin + ?Sized> AsyncReadBufExt for R {}

/// The future of [`AsyncReadBufExt::read_buf`].
#[must_use = "futures do nothing unless polled"]
pub struct ReadBuf<'a, R: ?Sized, B> {
    reader: &'a mut R,
    buf: &'a mut B,
}

impl<R: AsyncRead + Unpin + ?Sized, B: ReadBufTarget> Future for ReadBuf<'_, R, B> {
    type Output = io::Result<usize>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.buf.poll_append(Pin::new(&mut *this.reader), cx)
    }
}

impl<R: ?Sized, B> fmt::Debug for ReadBuf<'_, R, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadBuf").finish_non_exhaustive()
    }
}
