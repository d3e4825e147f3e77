//! The futures-io traits for [`File`].
//!
//! Each call spends one unit of the task's cooperative budget, so a loop of small reads
//! served from the buffer still lets other tasks run; a call that returns `Pending` (waiting
//! for a job) gives it back.

use std::io::{self, SeekFrom};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_util::io::{AsyncBufRead, AsyncRead, AsyncSeek, AsyncWrite};

use super::File;

impl AsyncRead for File {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let this = self.get_mut();
        ready!(overlap_runtime::coop_budgeted(cx, |cx| this.poll_fill(cx, buf.len())))?;
        let available = this.read.available();
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        this.read.consume(n);
        Poll::Ready(Ok(n))
    }
}

impl AsyncBufRead for File {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        ready!(overlap_runtime::coop_budgeted(cx, |cx| this.poll_fill(cx, 0)))?;
        Poll::Ready(Ok(this.read.available()))
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        self.get_mut().read.consume(amt);
    }
}

impl AsyncWrite for File {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        overlap_runtime::coop_budgeted(cx, |cx| this.poll_write_buf(cx, buf))
    }

    /// Takes the slices in order, as many as the write buffer has room for (futures-io's
    /// default would take only the first).
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        overlap_runtime::coop_budgeted(cx, |cx| this.poll_write_slices(cx, bufs))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_flush_writes(cx)
    }

    /// The same as `poll_flush`: the fd itself closes when the `File` is dropped.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_flush_writes(cx)
    }
}

impl File {
    /// `poll_write_vectored` without the budget.
    fn poll_write_slices(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self;
        let mut taken = 0;
        for buf in bufs.iter().filter(|b| !b.is_empty()) {
            match this.poll_write_buf(cx, buf) {
                Poll::Ready(Ok(n)) => {
                    taken += n;
                    if n < buf.len() {
                        break;
                    }
                }
                // What was taken is reported; the error comes back from the next call.
                Poll::Ready(Err(e)) if taken == 0 => return Poll::Ready(Err(e)),
                Poll::Ready(Err(e)) => {
                    this.error = Some(e);
                    break;
                }
                Poll::Pending if taken == 0 => return Poll::Pending,
                Poll::Pending => break,
            }
        }
        Poll::Ready(Ok(taken))
    }
}

impl AsyncSeek for File {
    /// Writes out buffered bytes, drops read-ahead, then seeks in a job. Call again with the
    /// same `pos` after `Pending`: a call with the `pos` of the seek in flight is taken as
    /// that retry, so one dropped while pending and then asked for again counts once (see
    /// [`File::seek`], which has no such ambiguity).
    fn poll_seek(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        pos: SeekFrom,
    ) -> Poll<io::Result<u64>> {
        self.get_mut().poll_seek_to(cx, pos)
    }
}

/// The file's descriptor, shared with the pool's jobs. Its offset may be ahead of what was
/// read (read-ahead) or behind what was written (bytes still buffered or in a job): use
/// positioned calls (`pread`/`pwrite`) on it, or call `flush` first and read the position
/// with `seek`.
///
/// ```
/// use std::os::fd::AsRawFd;
///
/// overlap::block_on(async {
///     let path = std::env::temp_dir().join(format!("overlap-doc-asfd-{}", std::process::id()));
///     let file = overlap::fs::File::create(&path).await.unwrap();
///     assert!(file.as_raw_fd() >= 0);
///     drop(file);
///     std::fs::remove_file(&path).unwrap();
/// });
/// ```
impl std::os::fd::AsRawFd for File {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.std.as_raw_fd()
    }
}

/// As [`AsRawFd`](std::os::fd::AsRawFd): the descriptor, with its offset caveat.
impl std::os::fd::AsFd for File {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.std.as_fd()
    }
}

/// The same as [`File::from_std`].
impl From<std::fs::File> for File {
    fn from(std: std::fs::File) -> File {
        File::from_std(std)
    }
}
