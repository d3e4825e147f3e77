//! What the signal module needs from libc: `sigaction`, the self-pipe, and a write that a
//! signal handler may make.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Installs `handler` for `signum` (with `SA_RESTART`, so interrupted syscalls of other
/// code resume instead of failing with `EINTR`).
pub(crate) fn install(signum: libc::c_int, handler: extern "C" fn(libc::c_int)) -> io::Result<()> {
    // SAFETY: an all-zero sigaction is a valid value (no flags, empty mask, SIG_DFL).
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = handler as libc::sighandler_t;
    sa.sa_flags = libc::SA_RESTART;
    // SAFETY: `sa.sa_mask` is a valid sigset_t to clear.
    syscall!(sigemptyset(&mut sa.sa_mask))?;
    // SAFETY: `sa` is a valid sigaction; the old action is not asked for (null).
    syscall!(sigaction(signum, &sa, std::ptr::null_mut()))?;
    Ok(())
}

/// A non-blocking, close-on-exec pipe: (read end, write end).
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two fds pipe2 writes.
    syscall!(pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC))?;
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A new close-on-exec fd for the open file behind `fd`.
pub(crate) fn dup(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC takes an integer (the lowest fd number to use).
    let new = syscall!(fcntl(fd, libc::F_DUPFD_CLOEXEC, 0))?;
    // SAFETY: the fd was just created and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Writes one byte to `fd`, leaving `errno` as it was: callable from a signal handler
/// (`write` is async-signal-safe, and the interrupted code may be about to read `errno`).
/// A full pipe (`EAGAIN`) is fine: a byte already waits there.
pub(crate) fn poke_from_handler(fd: RawFd) {
    // SAFETY: __errno_location returns this thread's errno slot, valid for the thread's life.
    let errno = unsafe { *libc::__errno_location() };
    let byte = 1u8;
    // SAFETY: `byte` is one readable byte for the duration of the call.
    let _ = unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Reads `fd` (non-blocking) until it is empty; true if it held anything.
pub(crate) fn drain(fd: RawFd) -> bool {
    let mut buf = [0u8; 64];
    let mut got = false;
    loop {
        // SAFETY: `buf` is valid for writes of its length.
        match syscall!(read(fd, buf.as_mut_ptr().cast(), buf.len())) {
            Ok(n) if n > 0 => got = true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // Empty (EAGAIN), or no writer (0, never here): done.
            _ => return got,
        }
    }
}
