//! Signalling a child's whole process group: the child, spawned leading a group of its
//! own, and every process it started there (a shell's pipeline, a backgrounded `sleep`),
//! which a signal to the child alone leaves running.

use std::io;
use std::os::fd::AsFd;

use super::{Child, ExitWatch};
use crate::sys;

impl Child {
    /// Sends `signal` to every process in the child's process group, the child included:
    /// for a child spawned with [`Command::process_group(0)`](super::Command::process_group),
    /// whose group id is its pid. A shell script's child processes (a pipeline, a `sleep`
    /// in the background) are in that group and hold its stdout open; a signal to the
    /// child alone ([`send_signal`](Self::send_signal), [`kill`](Self::kill),
    /// `kill_on_drop`) leaves them running. Returns without waiting: call
    /// [`wait`](Self::wait) to reap the child. Neither tokio nor std has this call; their
    /// users write `libc::kill(-pid, sig)`, which is safe only while the child is unreaped
    /// (after that its pid may lead another process's group).
    ///
    /// The signal goes through the child's pidfd (Linux 6.9+), which names the group the
    /// child led even after the child was reaped: it reaches what is left of that group
    /// and never a group that a later process taking the pid leads. Without that (an older
    /// kernel, or pidfds denied) it is `kill(-pid, signal)`, made only while the child is
    /// unreaped and still this process's child (it is not reaped here); once it was
    /// reaped, that fails with [`Unsupported`](io::ErrorKind::Unsupported).
    ///
    /// A group with no process left to signal is no error. A child that was spawned
    /// without a group of its own (its group is this process's) is refused with
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) while it is unreaped, before any
    /// signal: the group it is in is not its own. `signal` 0 sends nothing and only
    /// checks; a number that is no signal fails with `InvalidInput`.
    ///
    /// ```
    /// use std::os::unix::process::ExitStatusExt;
    ///
    /// overlap::block_on(async {
    ///     // `sh` waits for a `sleep` of its own: killing `sh` alone would leave it.
    ///     let mut child = overlap::process::Command::new("sh")
    ///         .args(["-c", "sleep 100 & wait"])
    ///         .process_group(0)
    ///         .spawn()?;
    ///     child.send_signal_to_group(libc::SIGKILL)?;
    ///     assert_eq!(child.wait().await?.signal(), Some(libc::SIGKILL));
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn send_signal_to_group(&mut self, signal: i32) -> io::Result<()> {
        if signal != 0 && !sys::is_signal(signal) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{signal} is not a signal number"),
            ));
        }
        let proc = self.proc_mut();
        let pid = proc.std.id();
        let reaped = proc.status.is_some();
        if !reaped {
            // Unreaped, the pid is still the child's: its group is its own only if the
            // ids match. (Reaped elsewhere, the pid names nothing of ours: the pidfd below
            // still names the right group, and the fallback refuses.)
            if let Ok(pgid) = sys::getpgid(pid) {
                if pgid != pid {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!(
                            "child {pid} does not lead a process group (it is in group \
                             {pgid}): spawn it with `process_group(0)` to signal its group"
                        ),
                    ));
                }
            }
        }
        if let ExitWatch::Pidfd(fd) = &proc.exit {
            match sys::pidfd_send_signal_to_group(fd.get_ref().as_fd(), signal) {
                Ok(()) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(()),
                // EINVAL: a kernel before 6.9, which knows no group flag (the signal was
                // checked above); ENOSYS/EPERM/EACCES: missing or denied. `kill` instead.
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EINVAL | libc::ENOSYS | libc::EPERM | libc::EACCES)
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        if reaped {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "child {pid} was reaped, and without a pidfd that names its group \
                     (Linux 6.9+) the group id may be another process's by now: signal \
                     the group before waiting for the child"
                ),
            ));
        }
        // Still our child, exited or not (a zombie keeps the pid, and so the group id,
        // from reuse); `ECHILD` if it was reaped elsewhere, as `send_signal` gives.
        sys::waitable_child(pid)?;
        match sys::kill_group(pid, signal) {
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            other => other,
        }
    }
}
