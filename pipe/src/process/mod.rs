//! Child processes on the reactor: their stdin, stdout and stderr are async pipe ends, and
//! their exit is awaited through a pidfd, so waiting never blocks the loop or a thread.
//!
//! Build the command with [`Command`] (std's builder, with async `output` and `status`) and
//! spawn it; or build a [`std::process::Command`] and pass it to [`spawn`] or [`output`]. Stdio
//! set to [`Stdio::piped`] comes back as [`Sender`]/[`Receiver`], with
//! `AsyncWrite`/`AsyncRead` (and `splice`). To feed one child's output to another, convert
//! the pipe end with `Stdio::try_from(end)`: that puts it back in blocking mode, which the
//! next program expects of its stdin (see [`Receiver::into_blocking_fd`]).
//!
//! # Dropping a `Child`
//! The process keeps running, as with std. A background task waits for it and reaps it, so
//! no zombie is left; if the runtime ends first (or the child is dropped outside one), a
//! process-wide thread takes over the waiting, started only while such orphans exist. Call
//! [`Child::kill`] first to stop it, or set [`Child::kill_on_drop`] (or
//! [`Child::kill_group_on_drop`], for what it started in its process group too).
//!
//! # Children overlap did not spawn
//! A subreaper, PID 1 in a container or a supervisor gets children it never spawned
//! (orphans reparented to it), and must reap them: [`reap_orphans`] does, and leaves every
//! child of overlap's alone, where `waitpid(-1)` would take their statuses. A process that
//! is not PID 1 becomes such a parent with [`set_child_subreaper`].
//!
//! ```
//! use overlap::io::{AsyncReadExt, AsyncWriteExt};
//! use std::process::{Command, Stdio};
//!
//! overlap::block_on(async {
//!     let mut child = overlap::process::spawn(
//!         Command::new("tr").arg("a-z").arg("A-Z").stdin(Stdio::piped()).stdout(Stdio::piped()),
//!     )?;
//!     let mut stdin = child.stdin.take().unwrap();
//!     stdin.write_all(b"shout").await?;
//!     drop(stdin); // end of input
//!     let mut out = String::new();
//!     child.stdout.take().unwrap().read_to_string(&mut out).await?;
//!     assert_eq!(out, "SHOUT");
//!     assert!(child.wait().await?.success());
//!     std::io::Result::Ok(())
//! })
//! .unwrap();
//! ```

mod check;
mod command;
mod drop_child;
mod exit_wait;
mod group;
mod kill;
mod orphans;
mod own_children;
mod reap_orphans;
mod subreaper;

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::process::{ExitStatus, Output, Stdio};
use std::time::Duration;

use overlap_runtime::signal::{signal, Signal, SignalKind};
use overlap_runtime::time::{interval_at, Instant, Interval};
use overlap_runtime::AsyncFd;

use crate::{sys, Receiver, Sender};

pub use command::Command;
use drop_child::DropKill;
pub use reap_orphans::reap_orphans;
pub use subreaper::{is_child_subreaper, set_child_subreaper};

/// The write end of a child's piped stdin ([`Child::stdin`]), under tokio's name: a pipe
/// [`Sender`].
pub type ChildStdin = Sender;
/// The read end of a child's piped stdout ([`Child::stdout`]), under tokio's name: a pipe
/// [`Receiver`].
pub type ChildStdout = Receiver;
/// The read end of a child's piped stderr ([`Child::stderr`]), under tokio's name: a pipe
/// [`Receiver`].
pub type ChildStderr = Receiver;

/// The read ends of a std child's output, [`std::process::ChildStdout`] and
/// [`std::process::ChildStderr`]: what [`Receiver::from_std`] takes over (tokio's
/// `ChildStdout::from_std` and `ChildStderr::from_std`). Sealed: implemented for those two
/// only.
pub trait StdChildOutput: Into<OwnedFd> + sealed::Sealed {}

impl StdChildOutput for std::process::ChildStdout {}
impl StdChildOutput for std::process::ChildStderr {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for std::process::ChildStdout {}
    impl Sealed for std::process::ChildStderr {}
}

/// A running child process, from [`spawn`].
#[derive(Debug)]
pub struct Child {
    /// The write end of the child's stdin, if it was [`Stdio::piped`]. Dropping it closes
    /// the child's input.
    pub stdin: Option<Sender>,
    /// The read end of the child's stdout, if it was piped.
    pub stdout: Option<Receiver>,
    /// The read end of the child's stderr, if it was piped.
    pub stderr: Option<Receiver>,
    /// `None` once handed to the background reaper (in `drop`).
    proc: Option<Proc>,
    /// What dropping it kills.
    drop_kill: DropKill,
}

/// The process itself: std's handle, what tells its exit, and the status once reaped.
#[derive(Debug)]
struct Proc {
    std: std::process::Child,
    exit: ExitWatch,
    status: Option<ExitStatus>,
}

/// How a child's exit is noticed.
#[derive(Debug)]
enum ExitWatch {
    /// A pidfd on the reactor: readable once the process has exited (Linux 5.3+).
    Pidfd(AsyncFd<OwnedFd>),
    /// No `pidfd_open` (older kernels, or valgrind): every `SIGCHLD` makes each waiter look
    /// with a non-blocking `waitpid`; so does each tick, since the signal may never come:
    /// blocked in every thread (a mask a parent left across `exec`), or its handler
    /// replaced by other code. No ticks on a paused clock (see `poll_exit`): there only
    /// `SIGCHLD` is waited for.
    Sigchld(Signal, Interval),
}

/// How often a child watched through `SIGCHLD` is looked at without one.
const LOOK_WITHOUT_SIGCHLD: Duration = Duration::from_millis(100);

impl ExitWatch {
    fn new(pid: u32) -> io::Result<ExitWatch> {
        match sys::pidfd_open(pid) {
            Ok(fd) => AsyncFd::new(fd).map(ExitWatch::Pidfd),
            // ENOSYS: a kernel before 5.3 (or gVisor, valgrind); EPERM/EACCES: a seccomp
            // profile that denies the syscall (older container runtimes, systemd's
            // `SystemCallFilter`). The child is ours all the same: watch it through SIGCHLD.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOSYS | libc::EPERM | libc::EACCES)
                ) =>
            {
                ExitWatch::sigchld()
            }
            Err(e) => Err(e),
        }
    }

    /// The `SIGCHLD` watch, with its ticks.
    fn sigchld() -> io::Result<ExitWatch> {
        let first = Instant::now() + LOOK_WITHOUT_SIGCHLD;
        let ticks = interval_at(first, LOOK_WITHOUT_SIGCHLD);
        Ok(ExitWatch::Sigchld(signal(SignalKind::child())?, ticks))
    }
}

/// Spawns `cmd`. Piped stdio becomes async pipe ends in the returned [`Child`]. Must be
/// called inside a runtime: outside one it fails with `ErrorKind::Other` before the
/// program is started.
///
/// Otherwise fails as [`Command::spawn`] does (`NotFound` for a missing program, with the
/// kernel's error otherwise), except that an environment variable set under a name the
/// child could not get it by (empty, or with `=` in it: std would pass `env("A=B", "c")`
/// on as a variable `A` set to `B=c`) is `InvalidInput` naming it, before anything runs.
/// Where the kernel lacks `pidfd_open` (Linux before 5.3) or a seccomp filter denies it,
/// the exit is noticed through `SIGCHLD` instead.
pub fn spawn(cmd: &mut std::process::Command) -> io::Result<Child> {
    // Before the fork: outside a runtime the child's pipes and exit could not be watched,
    // and the program must not run at all then (not run, and be killed).
    overlap_runtime::check_io_runtime()?;
    check::env_names(cmd)?;
    register(own_children::spawn(cmd)?)
}

/// The second half of [`spawn`]: watches a child std has spawned and makes its piped stdio
/// async, in the current runtime. On failure the child is killed and reaped.
pub(crate) fn register(mut std: std::process::Child) -> io::Result<Child> {
    // A child that exits before this is set up is still found: every wait first reaps
    // without blocking.
    let exit = ExitWatch::new(std.id());
    let stdin = std
        .stdin
        .take()
        .map(|s| Sender::from_owned_fd(OwnedFd::from(s)))
        .transpose();
    let stdout = std
        .stdout
        .take()
        .map(|s| Receiver::from_owned_fd(OwnedFd::from(s)))
        .transpose();
    let stderr = std
        .stderr
        .take()
        .map(|s| Receiver::from_owned_fd(OwnedFd::from(s)))
        .transpose();
    let (exit, stdin, stdout, stderr) = match (exit, stdin, stdout, stderr) {
        (Ok(exit), Ok(stdin), Ok(stdout), Ok(stderr)) => (exit, stdin, stdout, stderr),
        (exit, stdin, stdout, stderr) => {
            // Out of fds, say: the child is not left running unwatched (nor, once it
            // exits, as a zombie). Stop and reap it before reporting, unless it is no longer
            // ours (`ECHILD`: reaped elsewhere, its pid maybe another process's by now).
            if matches!(own_children::try_wait(&mut std), Ok(None)) {
                let pidfd = match &exit {
                    Ok(ExitWatch::Pidfd(fd)) => Some(fd.get_ref().as_fd()),
                    _ => None,
                };
                let _ = kill::signal(&mut std, pidfd, libc::SIGKILL);
                let _ = own_children::wait(&mut std);
            }
            let err = [exit.err(), stdin.err(), stdout.err(), stderr.err()];
            let first = err.into_iter().flatten().next();
            return Err(first.unwrap_or_else(|| io::Error::other("spawn setup failed")));
        }
    };
    Ok(Child {
        stdin,
        stdout,
        stderr,
        proc: Some(Proc {
            std,
            exit,
            status: None,
        }),
        drop_kill: DropKill::default(),
    })
}

/// Runs `cmd` to completion and collects its stdout and stderr, like
/// [`std::process::Command::output`] but without blocking the loop. stdout and stderr are
/// piped and stdin is `/dev/null`, whatever `cmd` set ([`Command::output`] keeps explicit
/// settings). Afterwards `cmd`'s stdio is back to the default (inherited), so a later
/// `spawn` of it does not get pipes nobody reads. Like [`Child::wait_with_output`], it
/// waits for the pipes' end of file, which a background process the child started may hold
/// back.
///
/// ```
/// overlap::block_on(async {
///     let out = overlap::process::output(std::process::Command::new("echo").arg("hi")).await?;
///     assert!(out.status.success());
///     assert_eq!(out.stdout, b"hi\n");
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub async fn output(cmd: &mut std::process::Command) -> io::Result<Output> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = spawn(cmd);
    cmd.stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    child?.wait_with_output().await
}

impl Child {
    /// The child's process id, or `None` once it has been reaped (by [`wait`](Self::wait),
    /// [`try_wait`](Self::try_wait) or [`kill`](Self::kill)), when the id may already belong
    /// to another process (as tokio's `Child::id`).
    ///
    /// ```
    /// overlap::block_on(async {
    ///     let mut child = overlap::process::Command::new("true").spawn()?;
    ///     assert!(child.id().is_some());
    ///     child.wait().await?;
    ///     assert_eq!(child.id(), None, "reaped: the pid is free for reuse");
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn id(&self) -> Option<u32> {
        let proc = self.proc();
        proc.status.is_none().then(|| proc.std.id())
    }

    fn proc(&self) -> &Proc {
        self.proc
            .as_ref()
            .expect("a Child's process is only taken in drop")
    }

    fn proc_mut(&mut self) -> &mut Proc {
        self.proc
            .as_mut()
            .expect("a Child's process is only taken in drop")
    }

    /// Waits for the child to exit and reaps it. Closes the child's stdin first (as std
    /// does), so a child reading it to the end can finish. Returns at once if it was already
    /// reaped. Cancel-safe: dropping the future loses nothing, though stdin, closed when it
    /// is first polled, stays closed (as with tokio's).
    ///
    /// Spends a unit of the task's cooperative budget when it returns (as tokio's does), so
    /// a loop that awaits it again after the exit still lets the other tasks run.
    ///
    /// Awaited in another runtime than the one that spawned the child (that one dropped, or
    /// not running), it watches the child from there. Outside any runtime it fails with an
    /// `Other` error while the child runs, and a later wait inside one goes on; a child
    /// that has already exited is reaped there too, and its status returned.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        self.wait_for_exit(Proc::poll_exit).await
    }

    /// Reaps the child if it has exited, without waiting.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.proc_mut().try_reap()
    }

    /// Sends `SIGKILL` and waits for the child to exit, reaping it (as tokio's `kill`). A
    /// child that was already reaped is left alone; one reaped elsewhere gets no signal (see
    /// [`start_kill`](Self::start_kill)). Cancel-safe: dropped before it is done,
    /// the signal has been sent and [`wait`](Self::wait) reaps the child later.
    ///
    /// ```
    /// overlap::block_on(async {
    ///     let mut child = overlap::process::Command::new("sleep").arg("100").spawn()?;
    ///     child.kill().await?;
    ///     assert_eq!(child.try_wait()?.map(|s| s.success()), Some(false));
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub async fn kill(&mut self) -> io::Result<()> {
        self.start_kill()?;
        self.wait().await.map(drop)
    }

    /// Sends `SIGKILL` and returns without waiting (tokio's `start_kill`, std's `kill`):
    /// call [`wait`](Self::wait) to reap the child. A child that was already reaped is left
    /// alone, and one that has exited is reaped instead. A child reaped elsewhere (by the
    /// kernel, when this process ignores `SIGCHLD`) gets no signal either, since its pid may
    /// name another process by now: that fails with `ECHILD`, as its `wait` does. The signal
    /// goes through the child's pidfd (Linux 5.3+), so even a child reaped by another
    /// thread's `waitpid(-1)` just before cannot turn it onto a process that took its pid;
    /// where pidfds are missing or denied it is `kill(pid)`, as std's.
    ///
    /// ```
    /// use std::os::unix::process::ExitStatusExt;
    ///
    /// overlap::block_on(async {
    ///     let mut child = overlap::process::Command::new("sleep").arg("100").spawn()?;
    ///     child.start_kill()?;
    ///     assert_eq!(child.wait().await?.signal(), Some(libc::SIGKILL));
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn start_kill(&mut self) -> io::Result<()> {
        self.send_signal(libc::SIGKILL)
    }

    /// Sends `signal` (`libc::SIGTERM`, say, to ask the child to end before killing it)
    /// and returns without waiting: [`start_kill`](Self::start_kill) with any signal, with
    /// its rules. A child already reaped gets nothing, and one that has exited is reaped
    /// instead (its status is then [`try_wait`](Self::try_wait)'s); a child reaped
    /// elsewhere gets nothing and fails with `ECHILD`. The signal goes through the child's
    /// pidfd, so it cannot reach another process that took the child's pid, as a
    /// `libc::kill(pid, ..)` could (tokio and std have no such call). `signal` 0 sends
    /// nothing and only checks; a number that is no signal fails with `InvalidInput`.
    ///
    /// ```
    /// use std::os::unix::process::ExitStatusExt;
    /// use std::time::Duration;
    ///
    /// overlap::block_on(async {
    ///     let mut child = overlap::process::Command::new("sleep").arg("100").spawn()?;
    ///     // Ask first; kill if it has not ended within a grace period.
    ///     child.send_signal(libc::SIGTERM)?;
    ///     let status = match overlap::time::timeout(Duration::from_secs(5), child.wait()).await {
    ///         Ok(status) => status?,
    ///         Err(_) => {
    ///             child.kill().await?;
    ///             child.wait().await?
    ///         }
    ///     };
    ///     assert_eq!(status.signal(), Some(libc::SIGTERM));
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn send_signal(&mut self, signal: i32) -> io::Result<()> {
        let proc = self.proc_mut();
        // Reaped (now, if it has exited), or no longer ours (`ECHILD`: reaped elsewhere, its
        // pid maybe another process's by now): no signal.
        if proc.try_reap()?.is_some() {
            return Ok(());
        }
        proc.signal(signal).map_err(|e| match e.raw_os_error() {
            Some(libc::EINVAL) => io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{signal} is not a signal number"),
            ),
            _ => e,
        })
    }

    /// Whether dropping this `Child` while the process runs sends it `SIGKILL` (before it is
    /// reaped in the background). Off by default, as in std: the process outlives its handle.
    /// What the child started keeps running: see
    /// [`kill_group_on_drop`](Self::kill_group_on_drop) for that.
    pub fn kill_on_drop(&mut self, kill: bool) {
        self.drop_kill.child = kill;
    }

    /// Waits for the child to exit while reading its stdout and stderr (those that are
    /// piped) to the end, all at once, so a child filling one pipe cannot stall. Closes
    /// stdin first.
    ///
    /// Not cancel-safe: it owns the `Child`, so dropping the future drops the output read so
    /// far and the `Child` (see [dropping a `Child`](crate::process#dropping-a-child)).
    ///
    /// # A background process holding the pipes
    /// The output is complete at end of file, not at the child's exit: a process the child
    /// started in the background (`sh -c 'daemon &'`) inherits its stdout and stderr, and
    /// this returns only once that process has closed them too (or exited), with what it
    /// wrote included; as std's and tokio's `wait_with_output` and `output` do. Give such a
    /// process other stdio (`daemon >/dev/null 2>&1 &`) for the output to end with the
    /// child, or read the pipes yourself alongside [`wait`](Self::wait) and stop at its exit.
    ///
    /// ```
    /// overlap::block_on(async {
    ///     let child = overlap::process::Command::new("sh")
    ///         .args(["-c", "(sleep 0.1; echo late) & echo early"])
    ///         .stdout(std::process::Stdio::piped())
    ///         .spawn()?;
    ///     let out = child.wait_with_output().await?;
    ///     // `sh` exited at once; its background subshell's line came later, and is here.
    ///     assert_eq!(out.stdout, b"early\nlate\n");
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub async fn wait_with_output(mut self) -> io::Result<Output> {
        drop(self.stdin.take());
        async fn read_all(pipe: Option<Receiver>) -> io::Result<Vec<u8>> {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                // Linear in the output's length, unlike `AsyncReadExt::read_to_end`.
                overlap_runtime::io::read_to_end(&mut p, &mut buf).await?;
            }
            Ok(buf)
        }
        let (out, err) = (self.stdout.take(), self.stderr.take());
        let (stdout, stderr, status) =
            futures_util::future::try_join3(read_all(out), read_all(err), self.wait()).await?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }
}

impl Proc {
    /// Sends `signal` to the process, not reaped at the caller's last look, through its
    /// pidfd (see [`kill::signal`]).
    fn signal(&mut self, signal: libc::c_int) -> io::Result<()> {
        let pidfd = match &self.exit {
            ExitWatch::Pidfd(fd) => Some(fd.get_ref().as_fd()),
            ExitWatch::Sigchld(..) => None,
        };
        kill::signal(&mut self.std, pidfd, signal)
    }

    fn try_reap(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = own_children::try_wait(&mut self.std)?;
        }
        Ok(self.status)
    }
}

impl Child {
    /// A child whose stdio was taken (or never piped), its exit watched by `exit`.
    fn stdio_taken(std: std::process::Child, exit: ExitWatch, drop_kill: DropKill) -> Child {
        Child {
            stdin: None,
            stdout: None,
            stderr: None,
            proc: Some(Proc {
                std,
                exit,
                status: None,
            }),
            drop_kill,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ExitWatch, Proc};
    use std::future::poll_fn;
    use std::process::Command;

    /// The fallback for kernels without `pidfd_open` (normal runs use the pidfd): a child
    /// awaited through `SIGCHLD` (and its ticks) is seen to exit, with its status.
    #[test]
    fn the_sigchld_fallback_sees_the_exit() {
        overlap::block_on(async {
            let std = Command::new("sh").args(["-c", "exit 7"]).spawn().unwrap();
            let mut proc = Proc {
                std,
                exit: ExitWatch::sigchld().unwrap(),
                status: None,
            };
            let status = poll_fn(|cx| proc.poll_exit(cx)).await.unwrap();
            assert_eq!(status.code(), Some(7));
            // A child that exits later is also seen (the signal arrives after the poll).
            let std = Command::new("sleep").arg("0.05").spawn().unwrap();
            let mut proc = Proc {
                std,
                exit: ExitWatch::sigchld().unwrap(),
                status: None,
            };
            assert!(poll_fn(|cx| proc.poll_exit(cx)).await.unwrap().success());
        });
    }
}
