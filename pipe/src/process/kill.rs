//! Sending a signal (`SIGKILL`, or one the user names) to a child that is ours and not
//! reaped yet, through its pidfd where there is one: `kill(pid)` could signal another
//! process if something else reaped the child (a `waitpid(-1)` in another thread) just
//! before, and the pid was used again.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::process::Child;

use super::own_children;
use crate::sys;

/// Sends `signal` to `child`, which was still running and unreaped at the caller's last
/// look, through `pidfd` (opened for it) or, without one, a pidfd opened now. Falls back to
/// `kill(pid)` where pidfds are missing or denied. A child reaped elsewhere meanwhile gets
/// no signal: that is `ECHILD`, as its `wait` gives.
pub(super) fn signal(
    child: &mut Child,
    pidfd: Option<BorrowedFd<'_>>,
    signal: libc::c_int,
) -> io::Result<()> {
    let opened;
    let pidfd = match pidfd {
        Some(fd) => fd,
        None => match sys::pidfd_open(child.id()) {
            Ok(fd) => {
                // The pidfd names our child only if the pid was still our unreaped child
                // once it was open; reaped by now (here or elsewhere): no signal.
                if own_children::try_wait(child)?.is_some() {
                    return Ok(());
                }
                opened = fd;
                opened.as_fd()
            }
            Err(_) => return sys::kill(child.id(), signal),
        },
    };
    match sys::pidfd_send_signal(pidfd, signal) {
        // Reaped elsewhere since the caller looked: `ECHILD` from the look again.
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => own_children::try_wait(child).map(drop),
        // Missing (a kernel before 5.1) or denied by a seccomp profile: `kill`, the
        // window and all, as without a pidfd.
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ENOSYS | libc::EPERM | libc::EACCES)
            ) =>
        {
            sys::kill(child.id(), signal)
        }
        other => other,
    }
}
