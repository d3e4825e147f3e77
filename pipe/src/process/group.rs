//! Signalling a child's whole process group: the child, spawned leading a group of its
//! own, and every process it started there (a shell's pipeline, a backgrounded `sleep`),
//! which a signal to the child alone leaves running.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use super::{Child, ExitWatch, Proc};
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
        self.proc_mut().signal_group(signal)
    }

    /// Whether dropping this `Child` sends `SIGKILL` to its whole process group, as
    /// [`send_signal_to_group`](Self::send_signal_to_group) does: the child and whatever it
    /// started there and left running (a shell script's background jobs, a pipeline). The
    /// child is then reaped in the background, as any dropped `Child` is. Off by default;
    /// set it when spawning with [`Command::kill_group_on_drop`](super::Command::kill_group_on_drop).
    ///
    /// Unlike [`kill_on_drop`](Self::kill_on_drop), the group is signalled even if the
    /// child itself has exited or was waited for already: its stragglers are the point.
    /// A reaped child's group is reached through its pidfd (Linux 6.9+); without that (an
    /// older kernel, or pidfds denied) the group of a child reaped by then is left alone,
    /// its id maybe another process's: wait with [`exited`](Self::exited), which does not
    /// reap, to have the drop reach the group in any case.
    ///
    /// The child must lead a group of its own (spawned with
    /// [`process_group(0)`](super::Command::process_group)). Turning this on checks that
    /// the group can be signalled, as `send_signal_to_group(0)` does, and fails as that
    /// does, changing nothing: with [`InvalidInput`](io::ErrorKind::InvalidInput) for a
    /// child in another group, [`Unsupported`](io::ErrorKind::Unsupported) for a child
    /// already reaped without a pidfd that reaches its group, `ECHILD` for one reaped
    /// elsewhere. Turning it off always succeeds.
    ///
    /// ```
    /// use overlap::io::AsyncReadExt;
    /// use std::process::Stdio;
    ///
    /// overlap::block_on(async {
    ///     // `sh` exits at once; its `sleep` holds stdout in the group.
    ///     let mut child = overlap::process::Command::new("sh")
    ///         .args(["-c", "sleep 100 & exit 0"])
    ///         .stdout(Stdio::piped())
    ///         .process_group(0)
    ///         .spawn()?;
    ///     child.kill_group_on_drop(true)?;
    ///     let mut stdout = child.stdout.take().unwrap();
    ///     assert!(child.exited().await?.success());
    ///     drop(child); // the `sleep` is killed
    ///     let mut out = Vec::new();
    ///     stdout.read_to_end(&mut out).await?; // end of file: nothing holds the pipe
    ///     assert!(out.is_empty());
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn kill_group_on_drop(&mut self, kill: bool) -> io::Result<()> {
        if kill {
            self.proc_mut().signal_group(0)?;
        }
        self.drop_kill.group = kill;
        Ok(())
    }
}

impl Proc {
    /// [`Child::send_signal_to_group`]: `signal` to the group the process leads (or led),
    /// through its pidfd where there is one.
    pub(super) fn signal_group(&mut self, signal: libc::c_int) -> io::Result<()> {
        let pidfd = match &self.exit {
            ExitWatch::Pidfd(fd) => Some(fd.get_ref().as_fd()),
            ExitWatch::Sigchld(..) => None,
        };
        signal_group(self.std.id(), pidfd, self.status.is_some(), signal)
    }
}

/// Sends `signal` to the group led by child `pid`, `reaped` or not at the caller's last
/// look, through `pidfd` (opened for it) where there is one, else by `kill(-pid)` while
/// the child is unreaped: see [`Child::send_signal_to_group`] for the rules.
pub(super) fn signal_group(
    pid: u32,
    pidfd: Option<BorrowedFd<'_>>,
    reaped: bool,
    signal: libc::c_int,
) -> io::Result<()> {
    if signal != 0 && !sys::is_signal(signal) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{signal} is not a signal number"),
        ));
    }
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
    if let Some(fd) = pidfd {
        match sys::pidfd_send_signal_to_group(fd, signal) {
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
                 the group before waiting for the child, or wait with `exited`, which \
                 does not reap"
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
