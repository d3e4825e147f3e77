//! One job's run: `sh -c cmd` leading a process group of its own, its stdout and stderr
//! pumped through pipes into the job's log files and, a whole line at a time, onto the
//! console; a timeout or a cancellation stops the whole group (SIGTERM, then SIGKILL after
//! the grace period), and whatever the group still holds after the leader is reaped is
//! killed too, so no backgrounded grandchild outlives its job or keeps a pipe open.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use overlap::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use overlap::process::{Child, ChildStderr, ChildStdout, Command};
use overlap::sync::{mpsc, watch, CancellationToken};

use super::buildfile::Job;

/// How a job ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Succeeded,
    /// Exit code, or `128 + signal` for a leader killed by a signal no one here sent.
    Failed(i32),
    TimedOut,
    /// Stopped by a failure elsewhere or by Ctrl-C.
    Cancelled,
    UpToDate,
    /// Never started: a dependency did not succeed, or the build stopped first.
    NotRun,
    /// The runner could not start or watch it (spawn failed, a log not writable).
    Error(String),
}

/// What the runner learns from one run.
#[derive(Debug)]
pub struct Ran {
    pub outcome: Outcome,
    pub pid: Option<u32>,
}

pub fn log_path(dir: &Path, job: &str, stream: &str) -> std::path::PathBuf {
    dir.join("logs").join(format!("{job}.{stream}"))
}

/// Copies `from` to the log file and, line by line with `[job] ` in front, to the console.
/// A last line without a newline gets one on the console (the log keeps the exact bytes).
async fn pump(
    from: impl overlap::io::AsyncRead + Unpin,
    log: &Path,
    prefix: String,
    console: mpsc::UnboundedSender<Vec<u8>>,
) -> io::Result<u64> {
    let mut file = overlap::fs::File::create(log).await?;
    let mut from = BufReader::with_capacity(64 * 1024, from);
    let mut line = Vec::new();
    let mut total = 0;
    loop {
        line.clear();
        let n = from.read_until(b'\n', &mut line).await?;
        if n == 0 {
            break;
        }
        total += n as u64;
        file.write_all(&line).await?;
        let mut out = Vec::with_capacity(prefix.len() + line.len() + 1);
        out.extend_from_slice(prefix.as_bytes());
        out.extend_from_slice(&line);
        if !out.ends_with(b"\n") {
            out.push(b'\n');
        }
        // A console gone (the build is being torn down) loses lines, not the log.
        let _ = console.send(out);
    }
    file.flush().await?;
    Ok(total)
}

/// SIGTERM to the group; SIGKILL to it if, after `grace`, the leader has not exited or
/// the pipes are still held open (by a grandchild still cleaning up); reaps the leader.
async fn stop_group(
    child: &mut Child,
    grace: Duration,
    mut drained: watch::Receiver<bool>,
) -> io::Result<ExitStatus> {
    child.send_signal_to_group(libc::SIGTERM)?;
    let both = overlap::future::join(child.wait(), drained.wait_for(|done| *done));
    match overlap::time::timeout(grace, both).await {
        Ok((status, _)) => status,
        Err(_) => {
            child.send_signal_to_group(libc::SIGKILL)?;
            child.wait().await
        }
    }
}

/// Kills what is left of the group after its leader was reaped (a grandchild that ignored
/// SIGTERM, or one a successful job left in the background). Through the pidfd this is
/// safe after the reap; on a kernel before 6.9 it is refused and the leftovers stay.
fn kill_leftovers(child: &mut Child) -> io::Result<()> {
    match child.send_signal_to_group(libc::SIGKILL) {
        Err(e) if e.kind() == io::ErrorKind::Unsupported => Ok(()),
        other => other,
    }
}

/// The child, its whole group killed when this is dropped: `kill_on_drop` kills only the
/// leader, so a build dropped half-way (a `timeout` around it, its task aborted) would
/// leave every backgrounded grandchild running, holding the pipes.
struct GroupGuard(Child);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        // After a finished run this finds the group empty (no error); before, it kills it.
        let _ = self.0.send_signal_to_group(libc::SIGKILL);
    }
}

impl std::ops::Deref for GroupGuard {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for GroupGuard {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

enum Stop {
    Exited(io::Result<ExitStatus>),
    TimedOut,
    Cancelled,
}

/// Runs `job` in `dir` to the end (or until stopped), its output pumped as described above.
pub async fn run(
    dir: &Path,
    job: &Job,
    grace: Duration,
    console: mpsc::UnboundedSender<Vec<u8>>,
    cancel: CancellationToken,
) -> Ran {
    let spawned = Command::new("sh")
        .args(["-c", &job.cmd])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(c) => GroupGuard(c),
        Err(e) => {
            return Ran {
                outcome: Outcome::Error(format!("spawn: {e}")),
                pid: None,
            }
        }
    };
    let pid = child.id();
    let out: ChildStdout = child.stdout.take().unwrap();
    let err: ChildStderr = child.stderr.take().unwrap();
    let (out_log, err_log) = (
        log_path(dir, &job.name, "stdout"),
        log_path(dir, &job.name, "stderr"),
    );
    let (drained_tx, drained) = watch::channel(false);
    let pumps = async {
        let both = overlap::future::join(
            pump(out, &out_log, format!("[{}] ", job.name), console.clone()),
            pump(err, &err_log, format!("[{}!] ", job.name), console),
        )
        .await;
        drained_tx.send_replace(true);
        both
    };
    let watch = async {
        let deadline = async {
            match job.timeout {
                Some(t) => overlap::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        let stop = overlap::select! {
            status = child.wait() => Stop::Exited(status),
            () = { deadline } => Stop::TimedOut,
            () = cancel.cancelled() => Stop::Cancelled,
        };
        let stop = match stop {
            Stop::Exited(status) => Stop::Exited(status),
            other => match stop_group(&mut child, grace, drained).await {
                Ok(_) => other,
                Err(e) => Stop::Exited(Err(e)),
            },
        };
        (stop, kill_leftovers(&mut child))
    };
    let ((out, err), (stop, leftovers)) = overlap::future::join(pumps, watch).await;
    let outcome = match stop {
        Stop::TimedOut => Outcome::TimedOut,
        Stop::Cancelled => Outcome::Cancelled,
        Stop::Exited(Err(e)) => Outcome::Error(format!("wait: {e}")),
        Stop::Exited(Ok(status)) => match (status.code(), status.signal()) {
            (Some(0), _) => Outcome::Succeeded,
            (Some(code), _) => Outcome::Failed(code),
            (None, sig) => Outcome::Failed(128 + sig.unwrap_or(0)),
        },
    };
    let outcome = match (out, err, leftovers) {
        (Err(e), _, _) | (_, Err(e), _) => Outcome::Error(format!("log: {e}")),
        (_, _, Err(e)) => Outcome::Error(format!("killing leftovers: {e}")),
        _ => outcome,
    };
    Ran { outcome, pid }
}
