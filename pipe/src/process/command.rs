//! `Command`: an owned builder for a child process, like `std::process::Command`, whose
//! `spawn`, `output` and `status` run on the reactor.

use std::ffi::OsStr;
use std::future::Future;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{ExitStatus, Output, Stdio};

use super::{register, spawn, Child, DropKill};

/// A process to spawn: the builder of [`std::process::Command`], with async `output` and
/// `status` and a [`Child`] whose stdio pipes are async.
///
/// Each setter mirrors std's, with tokio's Unix ones (`uid`, `gid`, `process_group`, `arg0`,
/// `pre_exec`); anything else std offers is reachable through
/// [`as_std_mut`](Command::as_std_mut).
///
/// ```
/// use overlap::process::Command;
///
/// overlap::block_on(async {
///     let out = Command::new("sh")
///         .arg("-c")
///         .arg("echo \"$GREETING\"; exit 3")
///         .env("GREETING", "hello")
///         .output()
///         .await?;
///     assert_eq!(out.stdout, b"hello\n");
///     assert_eq!(out.status.code(), Some(3));
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
#[derive(Debug)]
pub struct Command {
    std: std::process::Command,
    stdin_set: bool,
    stdout_set: bool,
    stderr_set: bool,
    /// What dropping each `Child` kills.
    drop_kill: DropKill,
    /// The group given to [`process_group`](Command::process_group), if any: whether the
    /// child will lead a group of its own, which `kill_group_on_drop` needs.
    process_group: Option<i32>,
    /// The first program name, argument, `argv[0]` or working directory given with a NUL
    /// byte, said in words: std replaces it by a stand-in and refuses the spawn without
    /// saying which it was.
    nul: Option<String>,
}

impl Command {
    /// A command running `program`, found on `PATH` unless it is a path itself.
    ///
    /// A NUL byte in `program`, in an argument, in `argv[0]`, in the working directory or
    /// in an environment variable makes [`spawn`](Command::spawn),
    /// [`output`](Command::output) and [`status`](Command::status) fail with
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) saying which it was, before anything
    /// runs (as with std, setting it again does not undo that).
    pub fn new(program: impl AsRef<OsStr>) -> Command {
        let program = program.as_ref();
        let mut cmd = Command::from(std::process::Command::new(program));
        cmd.note_nul(program, || "the program name".to_owned());
        cmd
    }

    /// Remembers `what` (said by `say`) if it is the first input with a NUL byte.
    fn note_nul(&mut self, what: &OsStr, say: impl FnOnce() -> String) {
        if self.nul.is_none() && what.as_bytes().contains(&0) {
            self.nul = Some(format!(
                "{} {what:?} contains a NUL byte, which cannot be passed to a program",
                say()
            ));
        }
    }

    /// The next argument's number, counting from 1 after the program.
    fn next_arg(&self) -> usize {
        self.std.get_args().len() + 1
    }

    /// Adds an argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        let n = self.next_arg();
        self.note_nul(arg.as_ref(), || format!("argument {n}"));
        self.std.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for arg in args {
            self.arg(arg);
        }
        self
    }

    /// Sets an environment variable for the child. A name the child could not get it by,
    /// empty or with `=` in it, makes [`spawn`](Command::spawn), [`output`](Command::output)
    /// and [`status`](Command::status) fail with
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) naming it, before anything runs (std
    /// would pass `env("A=B", "c")` on as a variable `A` set to `B=c`).
    pub fn env(&mut self, key: impl AsRef<OsStr>, val: impl AsRef<OsStr>) -> &mut Command {
        self.std.env(key, val);
        self
    }

    /// Sets environment variables for the child (each as [`env`](Command::env) does).
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.std.envs(vars);
        self
    }

    /// Removes an environment variable from the child's environment.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Command {
        self.std.env_remove(key);
        self
    }

    /// Starts the child with an empty environment (plus what `env` adds afterwards).
    pub fn env_clear(&mut self) -> &mut Command {
        self.std.env_clear();
        self
    }

    /// The child's working directory.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Command {
        let dir = dir.as_ref();
        self.note_nul(dir.as_os_str(), || "the working directory".to_owned());
        self.std.current_dir(dir);
        self
    }

    /// The child's stdin. [`Stdio::piped`] makes [`Child::stdin`] an async `Sender`.
    pub fn stdin(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.std.stdin(cfg);
        self.stdin_set = true;
        self
    }

    /// The child's stdout. [`Stdio::piped`] makes [`Child::stdout`] an async `Receiver`.
    pub fn stdout(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.std.stdout(cfg);
        self.stdout_set = true;
        self
    }

    /// The child's stderr. [`Stdio::piped`] makes [`Child::stderr`] an async `Receiver`.
    pub fn stderr(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.std.stderr(cfg);
        self.stderr_set = true;
        self
    }

    /// Whether each [`Child`] spawned from here is killed if dropped while it runs (see
    /// [`Child::kill_on_drop`]). Off by default.
    pub fn kill_on_drop(&mut self, kill: bool) -> &mut Command {
        self.drop_kill.child = kill;
        self
    }

    /// Whether [`kill_on_drop`](Command::kill_on_drop) is on, as tokio's getter.
    pub fn get_kill_on_drop(&self) -> bool {
        self.drop_kill.child
    }

    /// Whether dropping each [`Child`] spawned from here sends `SIGKILL` to its whole
    /// process group: the child and what it started there and left running, even once the
    /// child itself has exited or was waited for (see [`Child::kill_group_on_drop`]). Off
    /// by default.
    ///
    /// The child must lead a group of its own: with this on, [`spawn`](Command::spawn),
    /// [`output`](Command::output) and [`status`](Command::status) fail with
    /// [`InvalidInput`](io::ErrorKind::InvalidInput), before anything runs, unless
    /// [`process_group(0)`](Command::process_group) was set on this `Command`. (A group
    /// made another way, through [`as_std_mut`](Command::as_std_mut), a `setsid` in
    /// [`pre_exec`](Command::pre_exec), or on a `std::process::Command` this one was made
    /// `From`, is not seen here: turn it on with
    /// [`Child::kill_group_on_drop`] after the spawn, which checks the child itself.)
    ///
    /// ```
    /// use overlap::io::AsyncReadExt;
    /// use std::process::Stdio;
    ///
    /// overlap::block_on(async {
    ///     let mut child = overlap::process::Command::new("sh")
    ///         .args(["-c", "sleep 100 & sleep 100 & wait"])
    ///         .stdout(Stdio::piped())
    ///         .process_group(0)
    ///         .kill_group_on_drop(true)
    ///         .spawn()?;
    ///     let mut stdout = child.stdout.take().unwrap();
    ///     drop(child); // `sh` and both `sleep`s are killed
    ///     let mut out = Vec::new();
    ///     stdout.read_to_end(&mut out).await?; // end of file: nothing holds the pipe
    ///     assert!(out.is_empty());
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn kill_group_on_drop(&mut self, kill: bool) -> &mut Command {
        self.drop_kill.group = kill;
        self
    }

    /// Whether [`kill_group_on_drop`](Command::kill_group_on_drop) is on.
    pub fn get_kill_group_on_drop(&self) -> bool {
        self.drop_kill.group
    }

    /// Sets the child's user id (`setuid` before `exec`), as std's `CommandExt::uid`.
    pub fn uid(&mut self, id: u32) -> &mut Command {
        std::os::unix::process::CommandExt::uid(&mut self.std, id);
        self
    }

    /// Sets the child's group id (`setgid` before `exec`), as std's `CommandExt::gid`.
    pub fn gid(&mut self, id: u32) -> &mut Command {
        std::os::unix::process::CommandExt::gid(&mut self.std, id);
        self
    }

    /// Puts the child in process group `pgroup` (`0`: a new group led by the child, so a
    /// Ctrl-C in the terminal does not reach it), as std's `CommandExt::process_group`.
    pub fn process_group(&mut self, pgroup: i32) -> &mut Command {
        std::os::unix::process::CommandExt::process_group(&mut self.std, pgroup);
        self.process_group = Some(pgroup);
        self
    }

    /// Sets the child's `argv[0]` (what it sees as its own name), as std's
    /// `CommandExt::arg0`.
    pub fn arg0(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        self.note_nul(arg.as_ref(), || "argv[0]".to_owned());
        std::os::unix::process::CommandExt::arg0(&mut self.std, arg);
        self
    }

    /// Schedules `f` to run in the child after `fork` and before `exec`, as tokio's
    /// `Command::pre_exec` and std's `CommandExt::pre_exec`: for the process settings no
    /// setter here makes, such as a new session with a controlling terminal (`setsid`,
    /// then `ioctl(TIOCSCTTY)` on a pseudo-terminal given as the child's stdin). Several
    /// closures run in the order they were given, after std has set up the child's stdio,
    /// working directory and ids; an `Err` from one stops the spawn, and
    /// [`spawn`](Command::spawn) returns that error.
    ///
    /// # Safety
    /// As std's: `f` runs in the forked child, a copy of this process with only the
    /// calling thread, so it must call only async-signal-safe functions (no allocation, no
    /// locks another thread may have held at the fork, no `println!`), and must not touch
    /// the file descriptors std uses to report a failed spawn.
    ///
    /// ```
    /// use overlap::process::Command;
    ///
    /// overlap::block_on(async {
    ///     let mut cmd = Command::new("sh");
    ///     // The shell's pid, then its session id (the sixth field of its stat).
    ///     cmd.args(["-c", "echo $$ $(cut -d' ' -f6 /proc/$$/stat)"]);
    ///     // SAFETY: setsid is async-signal-safe, and the closure allocates nothing.
    ///     unsafe {
    ///         cmd.pre_exec(|| match libc::setsid() {
    ///             -1 => Err(std::io::Error::last_os_error()),
    ///             _ => Ok(()),
    ///         });
    ///     }
    ///     let out = String::from_utf8(cmd.output().await?.stdout).unwrap();
    ///     let (pid, sid) = out.trim().split_once(' ').unwrap();
    ///     assert_eq!(pid, sid, "the child leads a session of its own");
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub unsafe fn pre_exec<F>(&mut self, f: F) -> &mut Command
    where
        F: FnMut() -> io::Result<()> + Send + Sync + 'static,
    {
        // SAFETY: std's contract for the closure is this function's, which the caller
        // upholds (see `# Safety`).
        unsafe { std::os::unix::process::CommandExt::pre_exec(&mut self.std, f) };
        self
    }

    /// The std builder inside, to read its settings (`get_program`, `get_args`, ...).
    pub fn as_std(&self) -> &std::process::Command {
        &self.std
    }

    /// The std builder inside, for the settings this type does not mirror.
    pub fn as_std_mut(&mut self) -> &mut std::process::Command {
        &mut self.std
    }

    /// The std builder inside, this one taken apart (tokio's `into_std`): the program,
    /// arguments, environment, working directory, ids and stdio set so far, as
    /// [`as_std`](Command::as_std) shows them, for code that wants std's type (to spawn a
    /// blocking child, or hand it to a crate that takes one). What only this type knows is
    /// lost, as with tokio's: [`kill_on_drop`](Command::kill_on_drop) and
    /// [`kill_group_on_drop`](Command::kill_group_on_drop), std's `Child` having no such
    /// setting; and which setting had a NUL byte, whose spawn std then refuses with
    /// an `InvalidInput` error of its own that does not say which. Back the other way with
    /// `Command::from(std)`.
    ///
    /// ```
    /// use std::process::Stdio;
    ///
    /// let mut cmd = overlap::process::Command::new("sh");
    /// cmd.args(["-c", "echo \"$GREETING\""]).env("GREETING", "hi").kill_on_drop(true);
    /// cmd.stdout(Stdio::piped());
    /// let mut std_cmd: std::process::Command = cmd.into_std();
    /// assert_eq!(std_cmd.get_program(), "sh");
    /// let out = std_cmd.output().unwrap(); // std's, blocking
    /// assert_eq!(out.stdout, b"hi\n");
    /// ```
    pub fn into_std(self) -> std::process::Command {
        self.std
    }

    /// Spawns the child; stdio not set is inherited, as with std. Must be called inside a
    /// runtime. Fails as [`spawn`](super::spawn) does.
    pub fn spawn(&mut self) -> io::Result<Child> {
        self.check()?;
        let mut child = spawn(&mut self.std)?;
        child.drop_kill = self.drop_kill;
        Ok(child)
    }

    /// Runs the child to completion, collecting its stdout and stderr. As with std, stdin
    /// defaults to `/dev/null` and stdout and stderr to pipes; what was set explicitly is
    /// kept. Dropping the future drops the child (killed only with
    /// [`kill_on_drop`](Command::kill_on_drop); reaped in the background either way). It
    /// ends when the pipes reach end of file, so a background process the child left holding
    /// them is waited for too (see [`Child::wait_with_output`]).
    ///
    /// As with tokio, the child is spawned when this is *called*, and the future borrows
    /// nothing: `Command::new("ls").output()` may be stored and awaited later, and a pipe end
    /// given to [`stdout`](Command::stdout) goes with the temporary `Command`, so its reader
    /// sees end of file once the child exits. (A `Command` kept in a variable holds such a
    /// pipe end until it is dropped.)
    pub fn output(&mut self) -> impl Future<Output = io::Result<Output>> + 'static {
        let defaults = [
            (!self.stdin_set).then(Stdio::null),
            (!self.stdout_set).then(Stdio::piped),
            (!self.stderr_set).then(Stdio::piped),
        ];
        let [stdin, stdout, stderr] = defaults;
        if let Some(s) = stdin {
            self.std.stdin(s);
        }
        if let Some(s) = stdout {
            self.std.stdout(s);
        }
        if let Some(s) = stderr {
            self.std.stderr(s);
        }
        let child = self.spawn_unregistered();
        self.reset_defaults();
        async move { child?.register()?.wait_with_output().await }
    }

    /// Runs the child to completion and returns its exit status. Stdio not set is
    /// inherited, as with std. A piped stdin is closed before waiting; what the child
    /// writes to a piped stdout or stderr is read and dropped until it exits: nobody else
    /// could read it, a child filling the pipe would never exit, and a closed pipe would
    /// kill one that writes (`SIGPIPE`).
    ///
    /// The child is spawned when this is called, the future borrows nothing, and dropping
    /// the future drops the child (see [`output`](Command::output)).
    pub fn status(&mut self) -> impl Future<Output = io::Result<ExitStatus>> + 'static {
        let child = self.spawn_unregistered();
        async move { Self::wait_discarding(child?.register()?).await }
    }

    /// `status`'s and `output`'s spawn: the process starts now, but it is watched (and its
    /// pipes registered) only when the future is first polled, so a future made before
    /// entering the runtime (`block_on(cmd.status())`) still works.
    fn spawn_unregistered(&mut self) -> io::Result<Unregistered> {
        self.check()?;
        super::check::env_names(&self.std)?;
        Ok(Unregistered {
            std: Some(super::own_children::spawn(&mut self.std)?),
            drop_kill: self.drop_kill,
        })
    }

    /// Refuses the spawn if a NUL byte was given where no C string can hold it, or the
    /// group of a child that would not lead one is to be killed on drop.
    fn check(&self) -> io::Result<()> {
        if let Some(said) = &self.nul {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, said.clone()));
        }
        super::check::group_of_its_own(self.drop_kill.group, self.process_group)
    }

    /// `status`'s wait: closes stdin, reads and drops piped output until the child exits.
    async fn wait_discarding(mut child: Child) -> io::Result<ExitStatus> {
        drop(child.stdin.take());
        let (out, err) = (child.stdout.take(), child.stderr.take());
        let discard = async move {
            futures_util::future::join(discard(out), discard(err)).await;
            // The pipes ended (or failed) first: the exit decides.
            std::future::pending::<std::convert::Infallible>().await
        };
        let wait = std::pin::pin!(child.wait());
        let discard = std::pin::pin!(discard);
        match futures_util::future::select(wait, discard).await {
            futures_util::future::Either::Left((status, _)) => status,
            futures_util::future::Either::Right((never, _)) => match never {},
        }
    }

    /// Undoes `output`'s defaults, so the next `spawn` or `status` inherits again.
    fn reset_defaults(&mut self) {
        if !self.stdin_set {
            self.std.stdin(Stdio::inherit());
        }
        if !self.stdout_set {
            self.std.stdout(Stdio::inherit());
        }
        if !self.stderr_set {
            self.std.stderr(Stdio::inherit());
        }
    }
}

impl From<std::process::Command> for Command {
    /// Takes over a std builder. Its stdio settings cannot be read back, so `output` then
    /// treats them as unset: its defaults (stdin `/dev/null`, stdout and stderr piped)
    /// apply to that run, and afterwards all three are inherited. Set stdio through this
    /// type's methods to have `output`, `spawn` and `status` keep it.
    fn from(std: std::process::Command) -> Command {
        Command {
            std,
            stdin_set: false,
            stdout_set: false,
            stderr_set: false,
            drop_kill: DropKill::default(),
            process_group: None,
            nul: None,
        }
    }
}

/// Reads `pipe` to its end (or first error), dropping what comes.
async fn discard(pipe: Option<crate::Receiver>) {
    use futures_util::io::AsyncReadExt;
    if let Some(mut pipe) = pipe {
        let mut scratch = [0u8; 8192];
        while let Ok(1..) = pipe.read(&mut scratch).await {}
    }
}

/// A child spawned by `status` or `output` whose future was not polled yet.
struct Unregistered {
    std: Option<std::process::Child>,
    drop_kill: DropKill,
}

impl Unregistered {
    fn register(mut self) -> io::Result<Child> {
        let std = self.std.take().expect("registered once");
        let mut child = register(std)?;
        child.drop_kill = self.drop_kill;
        Ok(child)
    }
}

impl Drop for Unregistered {
    /// The future was dropped before its first poll: no zombie is left, and `kill_on_drop`
    /// and `kill_group_on_drop` are honoured. Inside a runtime the child is then dropped as a [`Child`] is, waited for
    /// by a background task; outside one (or if its exit cannot be watched) the orphan
    /// reaper thread waits for it. Its piped stdio closes now, as for a dropped [`Child`]:
    /// kept open, a child reading its stdin or filling its stdout would wait on the pipe
    /// for ever.
    fn drop(&mut self) {
        let Some(mut std) = self.std.take() else {
            return;
        };
        drop((std.stdin.take(), std.stdout.take(), std.stderr.take()));
        if self.drop_kill.group {
            // Before any reap, as a `Child` does; not reaped, the pid still names the
            // child, so `kill(-pid)` reaches its group even where no pidfd does.
            let _ = super::group::signal_group(std.id(), None, false, libc::SIGKILL);
        }
        // Reaped now, or no longer ours (`ECHILD`: reaped elsewhere, its pid maybe
        // another process's by now): nothing to kill or wait for.
        if !matches!(super::own_children::try_wait(&mut std), Ok(None)) {
            return;
        }
        if overlap_runtime::check_io_runtime().is_ok() {
            if let Ok(exit) = super::ExitWatch::new(std.id()) {
                // Dropped at once: killed if so, and waited for in the background.
                // Its group was signalled above: not twice.
                let drop_kill = DropKill {
                    group: false,
                    ..self.drop_kill
                };
                drop(super::Child::stdio_taken(std, exit, drop_kill));
                return;
            }
        }
        if self.drop_kill.child {
            let _ = super::kill::signal(&mut std, None, libc::SIGKILL);
        }
        super::orphans::adopt(std);
    }
}
