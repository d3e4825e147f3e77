//! `read_to_end`: reads a stream to its end into a `Vec`, zero-filling each byte of spare
//! room once.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_util::io::AsyncRead;

/// The least and the most room one growth step zero-fills.
const MIN_STEP: usize = 32;
const MAX_STEP: usize = 1 << 20;

/// Reads `reader` to its end, appending to `buf`; returns how many bytes it appended.
///
/// Does what `AsyncReadExt::read_to_end` does, in time linear in the length: futures-util's
/// version zero-fills all of the vector's spare capacity again after every `Pending`, which
/// grows with the square of the length for a large body read off a socket (each short
/// read leaves the buffer with room, each `Pending` re-fills it). This one zero-fills each
/// byte once, growing the vector by at most 1 MiB at a time.
///
/// `Interrupted` errors are retried. A reader claiming to have read more bytes than the room
/// it was given fails the call with `ErrorKind::InvalidData` (as in [`copy`](fn@super::copy)):
/// past its real bytes, the room holds only padding. On an error, as when the future is
/// dropped before it completes, `buf` keeps exactly the bytes read so far.
///
/// ```
/// use overlap::io::{read_to_end, AsyncWriteExt};
///
/// overlap::block_on(async {
///     let (mut a, mut b) = overlap::io::duplex(64);
///     let writer = overlap::spawn(async move {
///         a.write_all(&[7u8; 100_000]).await?;
///         a.close().await
///     });
///     let mut body = Vec::new();
///     assert_eq!(read_to_end(&mut b, &mut body).await?, 100_000);
///     writer.await.unwrap()?;
///     assert!(body.iter().all(|&x| x == 7));
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub fn read_to_end<'a, R>(reader: &'a mut R, buf: &'a mut Vec<u8>) -> ReadToEnd<'a, R>
where
    R: AsyncRead + Unpin + ?Sized,
{
    let start = buf.len();
    ReadToEnd {
        reader,
        buf,
        start,
        filled: start,
    }
}

/// The future of [`read_to_end`].
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct ReadToEnd<'a, R: ?Sized> {
    reader: &'a mut R,
    /// Holds `filled` bytes read, then zeroes ready for the next reads.
    buf: &'a mut Vec<u8>,
    start: usize,
    filled: usize,
}

impl<R: AsyncRead + Unpin + ?Sized> Future for ReadToEnd<'_, R> {
    type Output = io::Result<usize>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(poll_fill(&mut *this.reader, cx, this.buf, &mut this.filled))?;
        Poll::Ready(Ok(this.filled - this.start))
    }
}

/// Reads `reader` to its end into `buf`, whose first `filled` bytes are read (those past
/// them are zeroes, ready for the next reads). Once ready, `buf` holds exactly the
/// `filled` bytes read, whether the end came or an error did. Also [`read_to_string`]'s
/// engine.
///
/// [`read_to_string`]: fn@super::read_to_string
pub(super) fn poll_fill<R: AsyncRead + Unpin + ?Sized>(
    reader: &mut R,
    cx: &mut Context<'_>,
    buf: &mut Vec<u8>,
    filled: &mut usize,
) -> Poll<io::Result<()>> {
    loop {
        if *filled == buf.len() {
            let step = (*filled).clamp(MIN_STEP, MAX_STEP);
            buf.resize(*filled + step, 0);
        }
        let room = &mut buf[*filled..];
        let read = ready!(Pin::new(&mut *reader).poll_read(cx, room));
        let res = match super::copy::checked_read(read, room.len()) {
            Ok(0) => Ok(()),
            Ok(n) => {
                *filled += n;
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Err(e),
        };
        buf.truncate(*filled);
        return Poll::Ready(res);
    }
}

impl<R: ?Sized> Drop for ReadToEnd<'_, R> {
    fn drop(&mut self) {
        // Done or not, only the bytes read stay.
        self.buf.truncate(self.filled);
    }
}
