//! `poll(2)` on one fd, for a blocking-pool thread that must wait on an fd it does not own
//! the mode of (a standard stream left non-blocking by another process).

use std::io;
use std::os::fd::RawFd;

/// Blocks until `fd` has any of `events` (`libc::POLLIN`, `libc::POLLOUT`), or an error or
/// hang-up state, which the next read or write then reports. Retries on `EINTR`.
pub(crate) fn wait_fd(fd: RawFd, events: libc::c_short) -> io::Result<()> {
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    loop {
        // SAFETY: `pfd` is one valid, writable pollfd for the whole call.
        match crate::syscall!(poll(&mut pfd, 1, -1)) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
            Ok(_) => return Ok(()),
        }
    }
}
