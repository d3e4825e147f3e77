//! `AsyncWriteIntExt`: tokio's `write_u8` … `write_f64_le` on any futures-io writer, each a
//! [`WriteInt`] future writing out a fixed array.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_util::io::AsyncWrite;

use crate::io::copy::write_some;

/// Writes the methods of `AsyncWriteIntExt` from `for_each_number!`'s rows.
macro_rules! write_methods {
    ($($ty:ident, $n:literal, $order:literal, $read:ident, $write:ident, $from:ident, $to:ident;)*) => {
        $(
            #[doc = concat!("Writes `n` as ", $order, "`", stringify!($ty),
                "`: all of its `size_of::<", stringify!($ty), ">()` bytes.")]
            ///
            /// Does not flush. Fails with `ErrorKind::WriteZero` if the writer accepts no
            /// more bytes. Not cancel-safe: see [`AsyncWriteIntExt`].
            fn $write(&mut self, n: $ty) -> WriteInt<'_, Self, $n> {
                WriteInt::new(self, n.$to())
            }
        )*
    };
}

/// Writes numbers in binary form, as tokio's `AsyncWriteExt` does: `write_u8` …
/// `write_u128`, `write_i8` … `write_i128`, `write_f32`, `write_f64`, big-endian (network
/// order), and the same with `_le` for little-endian.
///
/// Implemented for every `AsyncWrite + Unpin` writer; its method names differ from those of
/// futures' [`AsyncWriteExt`](futures_util::io::AsyncWriteExt), so both traits may be
/// imported.
///
/// Each method returns a [`WriteInt`] future that writes the value's bytes, from as many
/// writes as the stream needs; `Interrupted` errors are retried, and a write that accepts
/// nothing (`Ok(0)`) fails with `ErrorKind::WriteZero`, and one that claims more bytes than
/// it was given with `ErrorKind::InvalidData`. Like `write_all`, it does not
/// flush: a buffered writer needs `flush` (or `close`) afterwards.
///
/// # Cancel safety
///
/// Not cancel-safe, as tokio's are not: if the future is dropped after writing part of the
/// value, that part has gone out and the rest never will, so the peer sees a torn value.
///
/// # Examples
///
/// A frame prefixed with its length as a big-endian `u32`, over loopback TCP:
///
/// ```
/// use overlap::io::{AsyncReadExt, AsyncWriteExt, AsyncWriteIntExt};
/// use overlap::net::{TcpListener, TcpStream};
///
/// overlap::block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0").await?;
///     let mut client = TcpStream::connect(listener.local_addr()?).await?;
///     let (mut server, _) = listener.accept().await?;
///
///     let frame = b"hello";
///     client.write_u32(frame.len() as u32).await?;
///     client.write_all(frame).await?;
///     client.write_i16_le(-2).await?;
///     client.close().await?;
///
///     let mut got = Vec::new();
///     server.read_to_end(&mut got).await?;
///     assert_eq!(got, b"\0\0\0\x05hello\xfe\xff");
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub trait AsyncWriteIntExt: AsyncWrite + Unpin {
    for_each_number!(write_methods);
}

impl<W: AsyncWrite + Unpin + ?Sized> AsyncWriteIntExt for W {}

/// The future of each [`AsyncWriteIntExt`] method: writes out an array of `N` bytes.
///
/// Not cancel-safe: see [`AsyncWriteIntExt`].
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct WriteInt<'a, W: ?Sized, const N: usize> {
    writer: &'a mut W,
    /// The first `written` bytes have gone out.
    buf: [u8; N],
    written: usize,
}

impl<'a, W: ?Sized, const N: usize> WriteInt<'a, W, N> {
    fn new(writer: &'a mut W, buf: [u8; N]) -> Self {
        WriteInt {
            writer,
            buf,
            written: 0,
        }
    }
}

impl<W: AsyncWrite + Unpin + ?Sized, const N: usize> Future for WriteInt<'_, W, N> {
    type Output = io::Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        while this.written < N {
            let rest = &this.buf[this.written..];
            this.written += ready!(write_some(Pin::new(&mut *this.writer), cx, rest))?;
        }
        Poll::Ready(Ok(()))
    }
}
