//! The pool's own system calls, the only `unsafe` of the program: placing the inherited
//! sockets at fixed fd numbers in a worker (`dup2` between fork and exec), marking them
//! close-on-exec once the worker has them, and the `kill(pid, 0)` a test uses to see a
//! process is gone. overlap offers none of them: they are about fds and processes it does
//! not own (the inheritance tokio users write the same way, with `pre_exec`).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use overlap::process::Command;

/// A close-on-exec copy of `fd` numbered 100 or above, so that placing several copies at
/// 3, 4, 5 in the child cannot overwrite one another's source.
pub fn dup_high(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC takes an integer; `fd` is open (borrowed).
    let dup = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 100) };
    if dup < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the fd was just made and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(dup) })
}

/// Makes the child see `sources[i]` at fd `3 + i`, inheritable (`dup2` clears
/// close-on-exec on the copy). The sources must stay open until the spawn returns.
pub fn place_fds(cmd: &mut Command, sources: Vec<RawFd>) {
    // SAFETY: between fork and exec the closure only calls dup2, which is
    // async-signal-safe, on integers copied into it; every source is >= 100 (`dup_high`),
    // so no target 3.. overwrites a source not yet placed.
    unsafe {
        cmd.pre_exec(move || {
            for (i, &src) in sources.iter().enumerate() {
                if libc::dup2(src, 3 + i as RawFd) == -1 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// Takes fd `fd`, inherited from the master, marking it close-on-exec so the worker's own
/// children (a `SPAWN`ed `sleep`) do not hold the listener or the heartbeat socket.
/// `EBADF` if nothing is open there.
///
/// # Safety
/// `fd` must be open and owned by nobody else in this process (an inherited fd that no
/// other code took).
pub unsafe fn take_inherited(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_SETFD takes integers; a closed fd is refused with EBADF.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: open (checked above) and owned by nobody else (the caller's promise).
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `kill(pid, 0)`: `Ok` while a process (a zombie too) has that pid, `ESRCH` once none
/// has.
pub fn probe(pid: u32) -> io::Result<()> {
    // SAFETY: kill takes integers only; signal 0 sends nothing.
    if unsafe { libc::kill(pid as libc::pid_t, 0) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
