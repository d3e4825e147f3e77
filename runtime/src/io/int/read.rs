//! `AsyncReadIntExt`: tokio's `read_u8` … `read_f64_le` on any futures-io reader, each a
//! [`ReadInt`] future filling a fixed array.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_util::io::AsyncRead;

/// Writes the methods of `AsyncReadIntExt` from `for_each_number!`'s rows.
macro_rules! read_methods {
    ($($ty:ident, $n:literal, $order:literal, $read:ident, $write:ident, $from:ident, $to:ident;)*) => {
        $(
            #[doc = concat!("Reads the next `size_of::<", stringify!($ty), ">()` bytes as ",
                $order, "`", stringify!($ty), "`.")]
            ///
            /// Fails with `ErrorKind::UnexpectedEof` if the stream ends first. Not cancel-safe:
            /// see [`AsyncReadIntExt`].
            fn $read(&mut self) -> ReadInt<'_, Self, $ty, $n> {
                ReadInt::new(self, $ty::$from)
            }
        )*
    };
}

/// Reads numbers in binary form, as tokio's `AsyncReadExt` does: `read_u8` … `read_u128`,
/// `read_i8` … `read_i128`, `read_f32`, `read_f64`, big-endian (network order), and the
/// same with `_le` for little-endian.
///
/// Implemented for every `AsyncRead + Unpin` reader; its method names differ from those of
/// futures' [`AsyncReadExt`](futures_util::io::AsyncReadExt), so both traits may be imported.
///
/// Each method returns a [`ReadInt`] future that reads exactly the value's width in bytes,
/// from as many reads as the stream needs; `Interrupted` errors are retried. If the stream
/// ends before the value is complete, it fails with `ErrorKind::UnexpectedEof`; a reader
/// claiming more bytes than it was given room for makes it fail with `ErrorKind::InvalidData`.
///
/// # Cancel safety
///
/// Not cancel-safe, as tokio's are not: if the future is dropped (say, when another branch
/// of `select!` wins) after reading part of the value, those bytes are lost and the stream
/// is left in the middle of the value.
///
/// # Examples
///
/// A frame prefixed with its length as a big-endian `u32`:
///
/// ```
/// use overlap::io::{AsyncReadExt, AsyncReadIntExt, AsyncWriteExt};
///
/// overlap::block_on(async {
///     let (mut a, mut b) = overlap::io::duplex(64);
///     a.write_all(&5u32.to_be_bytes()).await?;
///     a.write_all(b"hello").await?;
///     a.write_all(&[0x01, 0x02]).await?;
///
///     let len = b.read_u32().await?;
///     let mut frame = vec![0; len as usize];
///     b.read_exact(&mut frame).await?;
///     assert_eq!(frame, b"hello");
///     assert_eq!(b.read_u16_le().await?, 0x0201);
///
///     a.close().await?;
///     let err = b.read_u8().await.unwrap_err();
///     assert_eq!(err.kind(), overlap::io::ErrorKind::UnexpectedEof);
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub trait AsyncReadIntExt: AsyncRead + Unpin {
    for_each_number!(read_methods);
}

impl<R: AsyncRead + Unpin + ?Sized> AsyncReadIntExt for R {}

/// The future of each [`AsyncReadIntExt`] method: reads `N` bytes into an array, then
/// decodes them into a `T`.
///
/// Not cancel-safe: see [`AsyncReadIntExt`].
#[must_use = "futures do nothing unless polled"]
pub struct ReadInt<'a, R: ?Sized, T, const N: usize> {
    reader: &'a mut R,
    /// The first `filled` bytes are read.
    buf: [u8; N],
    filled: usize,
    decode: fn([u8; N]) -> T,
}

impl<'a, R: ?Sized, T, const N: usize> ReadInt<'a, R, T, N> {
    fn new(reader: &'a mut R, decode: fn([u8; N]) -> T) -> Self {
        ReadInt {
            reader,
            buf: [0; N],
            filled: 0,
            decode,
        }
    }
}

impl<R: ?Sized, T, const N: usize> fmt::Debug for ReadInt<'_, R, T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadInt")
            .field("width", &N)
            .field("filled", &self.filled)
            .finish_non_exhaustive()
    }
}

impl<R: AsyncRead + Unpin + ?Sized, T, const N: usize> Future for ReadInt<'_, R, T, N> {
    type Output = io::Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let this = &mut *self;
        while this.filled < N {
            let room = &mut this.buf[this.filled..];
            let read = ready!(Pin::new(&mut *this.reader).poll_read(cx, room));
            match crate::io::copy::checked_read(read, room.len()) {
                Ok(0) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "the stream ended after {} of the {N} bytes of a number",
                            this.filled
                        ),
                    )))
                }
                Ok(n) => this.filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok((this.decode)(this.buf)))
    }
}
