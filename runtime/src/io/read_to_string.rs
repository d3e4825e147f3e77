//! `read_to_string`: reads a stream to its end onto a `String`, which keeps what it held
//! when the bytes are not UTF-8.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_util::io::AsyncRead;

/// Reads `reader` to its end, appending to `buf`; returns how many bytes it appended.
///
/// As `std::io::Read::read_to_string` does: if the bytes read are not valid UTF-8, the call
/// fails with `ErrorKind::InvalidData` and `buf` is left as it was. futures-util's
/// `AsyncReadExt::read_to_string` empties `buf` instead, losing what it held
/// (futures-rs#2702). If the reader fails, the bytes read before are appended when they
/// are valid UTF-8 (else none are), and the reader's error is returned.
///
/// Reads as [`read_to_end`](fn@super::read_to_end) does (in time linear in the length,
/// `Interrupted` retried, a reader claiming more bytes than its room refused with
/// `InvalidData`), in place in `buf`'s own allocation.
///
/// Not cancel-safe: if the future is dropped before it completes, `buf` gets the bytes
/// read so far only if they are valid UTF-8 (a read stopped inside a character is not), so
/// those bytes can be lost, while `buf`'s earlier text never is.
///
/// ```
/// use overlap::io::{read_to_string, AsyncWriteExt};
///
/// overlap::block_on(async {
///     let (mut a, mut b) = overlap::io::duplex(64);
///     a.write_all(b"caf\xc3\xa9").await?;
///     a.close().await?;
///     let mut text = String::from("> ");
///     assert_eq!(read_to_string(&mut b, &mut text).await?, 5);
///     assert_eq!(text, "> café");
///
///     let (mut a, mut b) = overlap::io::duplex(64);
///     a.write_all(b"\xff").await?;
///     a.close().await?;
///     let err = read_to_string(&mut b, &mut text).await.unwrap_err();
///     assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
///     assert_eq!(text, "> café", "kept as it was");
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub fn read_to_string<'a, R>(reader: &'a mut R, buf: &'a mut String) -> ReadToString<'a, R>
where
    R: AsyncRead + Unpin + ?Sized,
{
    let bytes = std::mem::take(buf).into_bytes();
    let start = bytes.len();
    ReadToString {
        reader,
        string: buf,
        bytes: Some(bytes),
        start,
        filled: start,
    }
}

/// The future of [`read_to_string`].
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct ReadToString<'a, R: ?Sized> {
    reader: &'a mut R,
    /// Empty while the future runs: its text is the first `start` bytes of `bytes`.
    string: &'a mut String,
    /// The string's bytes, then the `filled - start` bytes read, then zeroes ready for the
    /// next reads; `None` once handed back to `string`.
    bytes: Option<Vec<u8>>,
    start: usize,
    filled: usize,
}

impl<R: ?Sized> ReadToString<'_, R> {
    /// Hands the bytes back to the string: with those read if they are valid UTF-8, else
    /// without. Returns whether they were appended.
    fn give_back(&mut self) -> bool {
        let Some(mut bytes) = self.bytes.take() else {
            return false;
        };
        bytes.truncate(self.filled);
        let appended = std::str::from_utf8(&bytes[self.start..]).is_ok();
        if !appended {
            bytes.truncate(self.start);
        }
        // A `String`'s own bytes, then (if any) bytes just checked: valid UTF-8, the
        // first part ending on a character boundary.
        *self.string = String::from_utf8(bytes).expect("a String's bytes and valid UTF-8");
        appended
    }
}

impl<R: AsyncRead + Unpin + ?Sized> Future for ReadToString<'_, R> {
    type Output = io::Result<usize>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let Some(bytes) = this.bytes.as_mut() else {
            return Poll::Ready(Ok(0));
        };
        let res = ready!(super::read_to_end::poll_fill(
            &mut *this.reader,
            cx,
            bytes,
            &mut this.filled
        ));
        let appended = this.give_back();
        Poll::Ready(match res {
            Ok(()) if appended => Ok(this.filled - this.start),
            Ok(()) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the stream's bytes are not valid UTF-8: nothing was appended to the string",
            )),
            Err(e) => Err(e),
        })
    }
}

impl<R: ?Sized> Drop for ReadToString<'_, R> {
    fn drop(&mut self) {
        self.give_back();
    }
}
