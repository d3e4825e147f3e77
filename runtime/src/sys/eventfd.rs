//! An eventfd used to wake `epoll_wait` from other threads.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A non-blocking, close-on-exec eventfd.
#[derive(Debug)]
pub(crate) struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    pub(crate) fn new() -> io::Result<EventFd> {
        // SAFETY: eventfd takes no pointers; the flags are valid constants.
        let fd = syscall!(eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK))?;
        // SAFETY: `fd` was just returned by eventfd and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(EventFd { fd })
    }

    /// Adds one to the counter, which makes the fd readable (a new edge for epoll).
    ///
    /// If the counter is about to overflow (EAGAIN), it is reset and the write retried, so a
    /// wake is never lost.
    pub(crate) fn notify(&self) {
        let one: u64 = 1;
        loop {
            // SAFETY: the buffer is a valid, live u64 of exactly the 8 bytes passed.
            let res = syscall!(write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8));
            match res {
                Ok(_) => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.reset(),
                // An eventfd write can fail only as above; anything else means the fd is gone,
                // and then there is nothing left to wake.
                Err(_) => return,
            }
        }
    }

    /// Reads the counter back to zero.
    pub(crate) fn reset(&self) {
        let mut buf: u64 = 0;
        // SAFETY: the buffer is a valid, writable u64 of exactly the 8 bytes passed.
        let _ = syscall!(read(self.fd.as_raw_fd(), (&mut buf as *mut u64).cast(), 8));
    }
}

impl AsRawFd for EventFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
