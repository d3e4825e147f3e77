//! The read end of a pipe or FIFO.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_util::io::AsyncRead;
use overlap_runtime::{AsyncFd, Direction, ReadyEvent, Registered};

use crate::sys;

/// The read end of a pipe or FIFO.
///
/// A read returns 0 (end of file) once every write end is closed and the pipe is drained, and
/// keeps returning 0 after that. A short read drains the pipe, so the next read waits for the
/// next write instead of paying for an `EAGAIN`. Dropping the receiver closes the fd; writers
/// then get `BrokenPipe`.
#[derive(Debug)]
pub struct Receiver {
    fd: AsyncFd<OwnedFd>,
}

impl Receiver {
    /// Opens the FIFO at `path` for reading. Opening succeeds even with no writer yet; reads
    /// then return 0 until a writer opens it (and writes).
    pub fn open(path: impl AsRef<Path>) -> io::Result<Receiver> {
        let path = path.as_ref();
        let fd = sys::open(path, libc::O_RDONLY).map_err(|e| {
            io::Error::new(e.kind(), format!("failed to open {}: {e}", path.display()))
        })?;
        Receiver::from_owned_fd(fd)
    }

    /// Wraps the read end of a pipe (made non-blocking here). Fails with `InvalidInput` if
    /// `fd` is not a pipe or FIFO.
    pub fn from_owned_fd(fd: OwnedFd) -> io::Result<Receiver> {
        crate::check_pipe(&fd)?;
        Ok(Receiver {
            fd: AsyncFd::new(fd)?,
        })
    }

    /// Removes the fd from the reactor and returns it (still non-blocking).
    pub fn into_owned_fd(self) -> OwnedFd {
        self.fd.into_inner()
    }
}

impl AsyncRead for Receiver {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            match guard.try_io(|fd| sys::read(fd.as_raw_fd(), buf)) {
                Ok(Ok(n)) => {
                    if n > 0 && n < buf.len() {
                        // A short read means the pipe is empty now: wait for the next edge.
                        guard.clear_ready();
                    }
                    return Poll::Ready(Ok(n));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl Registered for Receiver {
    fn poll_readiness(&self, cx: &mut Context<'_>, dir: Direction) -> Poll<io::Result<ReadyEvent>> {
        self.fd.poll_readiness(cx, dir)
    }

    fn clear_readiness(&self, event: ReadyEvent) {
        self.fd.clear_readiness(event)
    }
}

impl AsRawFd for Receiver {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for Receiver {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.get_ref().as_fd()
    }
}
