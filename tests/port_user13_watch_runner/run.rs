//! One run of the command: the child in a process group of its own, its stdout and stderr
//! read line by line by a task each and forwarded with a prefix, its end (an exit, or the
//! run's timeout), and killing it (the whole group, then the wait that reaps it).

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use overlap::io::{AsyncBufReadExt, BufReader};
use overlap::process::{Child, Command};
use overlap::sync::broadcast;
use overlap::task::JoinSet;
use overlap::time::{sleep, Sleep};

use super::runner::Event;

/// Which pipe a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Out,
    Err,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Exited with this code (0: success).
    Exited(i32),
    /// Ended by this signal, not one the runner sent.
    Signaled(i32),
    /// Over the run's time limit: killed.
    TimedOut,
    /// Killed for a newer change, a rerun, or the runner's shutdown.
    Superseded,
    /// The command could not be started: the reason, naming the program.
    SpawnFailed(String),
}

impl Outcome {
    fn of(status: ExitStatus) -> Outcome {
        match (status.code(), status.signal()) {
            (Some(code), _) => Outcome::Exited(code),
            (None, Some(sig)) => Outcome::Signaled(sig),
            (None, None) => unreachable!("a status is an exit or a signal"),
        }
    }
}

/// How long the readers may go on after the child's exit: a process it left in the
/// background may hold its pipes open (their output is then cut, the run reported ended).
const DRAIN: Duration = Duration::from_secs(5);

/// A running child.
#[derive(Debug)]
pub struct Run {
    pub n: u64,
    pub pid: u32,
    child: Child,
    readers: JoinSet<()>,
    deadline: Option<Sleep>,
}

/// How the wait for a run ended.
#[derive(Debug)]
pub enum End {
    Exited(io::Result<ExitStatus>),
    TimedOut,
}

impl Run {
    /// Starts run `n` of `argv` in `dir`, its lines sent to `events` as `[prefix n] line`.
    pub fn start(
        n: u64,
        argv: &[String],
        dir: &Path,
        prefix: &str,
        limit: Option<Duration>,
        events: &broadcast::Sender<Event>,
    ) -> io::Result<Run> {
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group, so that a kill reaches what `sh` started too (a compiler, a
            // `sleep`), which holds the pipes as long as it lives.
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd.spawn()?;
        let pid = child.id().expect("not reaped yet");
        let mut readers = JoinSet::new();
        let out = child.stdout.take().expect("piped");
        let err = child.stderr.take().expect("piped");
        let tag = format!("[{prefix} {n}]");
        readers.spawn(forward(out, Stream::Out, n, tag.clone(), events.clone()));
        readers.spawn(forward(err, Stream::Err, n, tag, events.clone()));
        Ok(Run {
            n,
            pid,
            child,
            readers,
            deadline: limit.map(sleep),
        })
    }

    /// Waits for the child's exit or the time limit. Cancel-safe: `Child::wait` is, and the
    /// deadline stays where it was.
    pub async fn wait(&mut self) -> End {
        match &mut self.deadline {
            Some(deadline) => overlap::select! {
                status = self.child.wait() => End::Exited(status),
                // By bare name, `select!` would borrow `deadline` (a `&mut Sleep` bound
                // without `mut`) again, which E0596 refuses; moved in, as tokio does.
                _ = { deadline } => End::TimedOut,
            },
            None => End::Exited(self.child.wait().await),
        }
    }

    /// Kills the run's process group, then reaps the child.
    pub async fn kill(&mut self) -> io::Result<ExitStatus> {
        // SAFETY: kill takes integers only. The group's id is the child's pid (it was made
        // the group's leader), which no other process can take while the child is unreaped,
        // and it is reaped only below.
        let res = unsafe { libc::kill(-(self.pid as libc::pid_t), libc::SIGKILL) };
        if res != 0 {
            // ESRCH: the whole group is gone already; the child still waits to be reaped.
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ESRCH) {
                return Err(e);
            }
        }
        self.child.kill().await?;
        self.child.wait().await
    }

    /// Waits for the readers to reach the ends of the pipes (bounded by `DRAIN`), so that
    /// every line of the run is out before its end is reported.
    pub async fn drain(&mut self) {
        let all = async { while self.readers.join_next().await.is_some() {} };
        if overlap::time::timeout(DRAIN, all).await.is_err() {
            self.readers.shutdown().await;
        }
    }

    /// The outcome of a wait that ended with the child's exit.
    pub fn outcome(end: io::Result<ExitStatus>) -> Outcome {
        match end {
            Ok(status) => Outcome::of(status),
            Err(e) => Outcome::SpawnFailed(format!("lost the child: {e}")),
        }
    }
}

/// Reads `pipe` line by line, each sent as an `Event::Line` with `tag` before it; a line
/// that is not UTF-8 is sent with its bad bytes replaced.
async fn forward(
    pipe: overlap::process::ChildStdout,
    stream: Stream,
    run: u64,
    tag: String,
    events: broadcast::Sender<Event>,
) {
    let mut reader = BufReader::new(pipe);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        let text = format!("{tag} {}", String::from_utf8_lossy(&line));
        let _ = events.send(Event::Line { run, stream, text });
    }
}
