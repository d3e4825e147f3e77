//! Plain writes to a file descriptor the caller does not own (a standard stream).

use std::io;
use std::os::fd::RawFd;

/// One `write(2)` of `buf` to `fd`: how many bytes it took, or its error (`EINTR` and
/// `EAGAIN` included, for the caller to handle).
pub(crate) fn write(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes; a bad `fd` is only an error.
    let n = crate::syscall!(write(fd, buf.as_ptr().cast(), buf.len()))?;
    Ok(n as usize)
}
