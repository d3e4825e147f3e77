//! Waiting for a child's exit: [`Child::wait`] reaps the child, [`Child::exited`] leaves it
//! a zombie, its pid (and the group id it leads) kept from reuse until it is reaped.

use std::io;
use std::os::fd::AsFd;
use std::process::ExitStatus;
use std::task::{ready, Context, Poll};

use overlap_runtime::{Direction, Registered};

use super::{Child, ExitWatch, Proc};
use crate::sys::{self, ChildId};

impl Child {
    /// Waits for the child to exit and returns its exit status *without reaping it*: the
    /// child stays a zombie, so its pid, and the process group id it leads (with
    /// [`Command::process_group(0)`](super::Command::process_group)), cannot be taken by
    /// another process. [`id`](Self::id) keeps returning the pid, and a later
    /// [`wait`](Self::wait) or [`try_wait`](Self::try_wait) (or dropping the `Child`) reaps
    /// the child and returns the same status. A child already reaped gives the status it
    /// was reaped with; one reaped elsewhere fails with `ECHILD`, as `wait` does.
    ///
    /// For what must happen between a child's exit and its reaping: signalling what is left
    /// of a group it led with [`send_signal_to_group`](Self::send_signal_to_group) (whose
    /// `kill(-pid)` fallback, without pidfds, works only until the reap), or reading
    /// `/proc/<pid>` of the zombie. Calls that reap an exited child on the way
    /// ([`send_signal`](Self::send_signal), [`kill`](Self::kill),
    /// [`start_kill`](Self::start_kill)) end that time.
    ///
    /// Closes the child's stdin first, as `wait` does, so a child reading it to the end can
    /// finish. Cancel-safe: dropping the future changes nothing (beyond stdin, closed when
    /// it is first polled). The exit is seen as `wait` sees it: through the pidfd (then
    /// `waitid(P_PIDFD, .., WNOWAIT)`), or where pidfds are missing or denied through
    /// `SIGCHLD` (then `waitid(P_PID, .., WNOWAIT)`, right while the child is unreaped).
    /// Outside any runtime it fails with an `Other` error while the child runs (one that
    /// has already exited gives its status there too).
    ///
    /// ```
    /// use std::os::unix::process::ExitStatusExt;
    ///
    /// overlap::block_on(async {
    ///     // `sh` leads a group of its own and exits, leaving its `sleep` behind.
    ///     let mut child = overlap::process::Command::new("sh")
    ///         .args(["-c", "sleep 100 & exit 3"])
    ///         .process_group(0)
    ///         .spawn()?;
    ///     let status = child.exited().await?;
    ///     assert_eq!(status.code(), Some(3));
    ///     assert!(child.id().is_some(), "not reaped: the pid and group id are still its");
    ///     // So the group id still names its group, even through `kill(-pid)`.
    ///     child.send_signal_to_group(libc::SIGKILL)?;
    ///     assert_eq!(child.wait().await?, status);
    ///     assert_eq!(child.id(), None);
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub async fn exited(&mut self) -> io::Result<ExitStatus> {
        self.wait_for_exit(Proc::poll_exited).await
    }

    /// Closes stdin, then waits with `poll` (reaping or not), spending a unit of the task's
    /// cooperative budget when it returns: `wait` and `exited`.
    pub(super) async fn wait_for_exit(
        &mut self,
        poll: fn(&mut Proc, &mut Context<'_>) -> Poll<io::Result<ExitStatus>>,
    ) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        let proc = self.proc_mut();
        let poll = |cx: &mut Context<'_>| overlap_runtime::coop_budgeted(cx, |cx| poll(proc, cx));
        overlap_runtime::own_waits(poll).await
    }
}

impl Proc {
    /// Ready with the exit status once the process has exited, reaping it.
    pub(super) fn poll_exit(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<ExitStatus>> {
        self.poll_until(cx, Proc::try_reap)
    }

    /// Ready with the exit status once the process has exited, leaving it unreaped (or the
    /// status it was reaped with, if it was).
    fn poll_exited(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<ExitStatus>> {
        self.poll_until(cx, Proc::exit_status_unreaped)
    }

    /// The exit status if the process has exited, without reaping it.
    fn exit_status_unreaped(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.status.is_some() {
            return Ok(self.status);
        }
        // Unreaped (at our last look), the pid still names the child.
        let by_pid = ChildId::Pid(self.std.id());
        match &self.exit {
            ExitWatch::Pidfd(fd) => {
                match sys::exit_status_unreaped(ChildId::Pidfd(fd.get_ref().as_fd())) {
                    // Linux 5.3 has pidfds, but `waitid` takes them from 5.4 on.
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                        sys::exit_status_unreaped(by_pid)
                    }
                    other => other,
                }
            }
            ExitWatch::Sigchld(..) => sys::exit_status_unreaped(by_pid),
        }
    }

    /// Ready with what `look` finds once it finds a status, looking again each time the
    /// exit watch says the process may have ended.
    ///
    /// A pidfd registered with another runtime (the `Child` moved, or its runtime ended) is
    /// opened again in the one polling now: the process is not reaped yet, so its pid still
    /// names it. Outside any runtime, either watch fails with an `Other` error.
    fn poll_until(
        &mut self,
        cx: &mut Context<'_>,
        look: fn(&mut Proc) -> io::Result<Option<ExitStatus>>,
    ) -> Poll<io::Result<ExitStatus>> {
        let mut rewatched = false;
        loop {
            if let Some(status) = look(self)? {
                return Poll::Ready(Ok(status));
            }
            match &mut self.exit {
                ExitWatch::Pidfd(fd) => {
                    let event = match fd.poll_readiness(cx, Direction::Read) {
                        Poll::Ready(Err(e)) if !rewatched => {
                            rewatched = true;
                            self.exit = ExitWatch::new(self.std.id()).map_err(|_| e)?;
                            continue;
                        }
                        other => ready!(other)?,
                    };
                    // Readable means exited. Only a readiness that still finds the child
                    // running (a spurious one) is cleared.
                    if let Some(status) = look(self)? {
                        return Poll::Ready(Ok(status));
                    }
                    if let ExitWatch::Pidfd(fd) = &self.exit {
                        fd.clear_readiness(event);
                    }
                }
                ExitWatch::Sigchld(sig, ticks) => {
                    // Outside any runtime nothing would hand `SIGCHLD` out or fire a tick
                    // (the listener and the timer would panic): fail as a pidfd does there.
                    if overlap_runtime::check_io_runtime().is_err() {
                        return Poll::Ready(Err(io::Error::other(
                            "a child's exit was waited for outside an overlap runtime: wait \
                             inside `overlap::block_on` or `Runtime::block_on`",
                        )));
                    }
                    if sig.poll_recv(cx).is_pending() {
                        // Not on a paused clock: an idle runtime would jump to each tick at
                        // once, a busy loop that runs the clock ahead while the child runs.
                        if overlap_runtime::time::is_paused() {
                            return Poll::Pending;
                        }
                        ready!(ticks.poll_tick(cx));
                    }
                }
            }
        }
    }
}
