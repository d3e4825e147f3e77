//! Starting a worker and watching it: the listeners the master binds once and every worker
//! inherits, the spawn (this binary again, in a process group of its own that dies with
//! it), and the task that follows one worker's heartbeat and exit for the master.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::{UnixListener as StdUnixListener, UnixStream as StdUnixStream};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use overlap::io::AsyncReadExt;
use overlap::net::UnixStream;
use overlap::process::{Child, Command};
use overlap::sync::mpsc;

use super::heartbeat::{Beat, Heartbeat};
use super::sys;
use super::worker::WORKER_ENV;

/// The sockets every worker accepts on, bound by the master and kept across workers.
#[derive(Debug)]
pub struct Listeners {
    /// On `127.0.0.1`, at a port the kernel picked.
    pub tcp: std::net::TcpListener,
    /// The Unix listener and its path, if the pool has one.
    pub unix: Option<(StdUnixListener, PathBuf)>,
}

impl Listeners {
    /// TCP on `127.0.0.1:0`, and a Unix listener at `dir/pool.sock` if `dir` is given.
    pub fn bind(unix_dir: Option<&Path>) -> io::Result<Listeners> {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0")?;
        let unix = match unix_dir {
            Some(dir) => {
                let path = dir.join("pool.sock");
                Some((StdUnixListener::bind(&path)?, path))
            }
            None => None,
        };
        Ok(Listeners { tcp, unix })
    }
}

/// How every worker is started.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    /// Answered requests after which a worker exits to be replaced.
    pub max_requests: Option<u32>,
    /// How often a worker beats.
    pub beat_interval: Duration,
    /// Set last, over the pool's own variables (a test's broken setting).
    pub extra_env: Vec<(String, String)>,
}

/// Spawns a worker with the listeners at fds 3 (and 4) and its end of a fresh heartbeat
/// socket after them; returns the child and the master's end.
pub fn spawn_worker(l: &Listeners, spec: &WorkerSpec) -> io::Result<(Child, UnixStream)> {
    let (ours, theirs) = StdUnixStream::pair()?;
    let mut sources = vec![sys::dup_high(l.tcp.as_fd())?];
    if let Some((unix, _)) = &l.unix {
        sources.push(sys::dup_high(unix.as_fd())?);
    }
    sources.push(sys::dup_high(theirs.as_fd())?);
    let listeners = if l.unix.is_some() { "2" } else { "1" };
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args([
        "worker_process",
        "--exact",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(WORKER_ENV, "1")
    .env("PREFORK_LISTENERS", listeners)
    .env(
        "PREFORK_MAX_REQUESTS",
        spec.max_requests.unwrap_or(0).to_string(),
    )
    .env(
        "PREFORK_BEAT_MS",
        spec.beat_interval.as_millis().to_string(),
    )
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .process_group(0)
    .kill_group_on_drop(true);
    for (k, v) in &spec.extra_env {
        cmd.env(k, v);
    }
    sys::place_fds(&mut cmd, sources.iter().map(|f| f.as_raw_fd()).collect());
    let child = cmd.spawn()?;
    // The worker has its copies; ours go (`sources` and `theirs` drop here).
    Ok((child, UnixStream::from_std(ours)?))
}

/// What the master can ask of a worker's watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    /// `SIGTERM` to the worker: finish and exit.
    Term,
    /// `SIGKILL` to its whole group.
    Kill,
}

/// What a worker's watch tells the master.
#[derive(Debug)]
pub enum Report {
    /// It said `ready`: it serves.
    Ready,
    /// No heartbeat within the timeout: its group was killed.
    HeartbeatMissed,
    /// Exited (and reaped, its group killed), with what it wrote to stderr (up to 4 KiB).
    Exited {
        status: io::Result<ExitStatus>,
        stderr: String,
    },
}

/// Follows one worker until it exits: its heartbeat (a hung one's group is killed), the
/// master's commands, and its exit, after which what is left of its group is killed, the
/// worker reaped, and its stderr read. Each report goes out tagged with `id`.
pub async fn watch(
    id: u64,
    mut child: Child,
    beats: UnixStream,
    beat_timeout: Duration,
    mut cmds: mpsc::UnboundedReceiver<Cmd>,
    out: mpsc::UnboundedSender<(u64, Report)>,
) {
    enum Step {
        Exit(io::Result<ExitStatus>),
        Beat(Beat),
        Cmd(Option<Cmd>),
    }
    let mut heartbeat = Heartbeat::new(beats, beat_timeout);
    let (mut beating, mut commanded) = (true, true);
    let status = loop {
        // `exited` leaves the worker a zombie, so its group id stays its own until the
        // group is killed below.
        let step = overlap::select! {
            s = child.exited() => Step::Exit(s),
            b = heartbeat.next(), if beating => Step::Beat(b),
            c = cmds.recv(), if commanded => Step::Cmd(c),
        };
        match step {
            Step::Exit(status) => break status,
            Step::Beat(Beat::Ready) => drop(out.send((id, Report::Ready))),
            Step::Beat(Beat::Alive) => {}
            Step::Beat(Beat::Missed { .. }) => {
                let _ = out.send((id, Report::HeartbeatMissed));
                let _ = child.send_signal_to_group(libc::SIGKILL);
                beating = false;
            }
            Step::Beat(Beat::Closed) => beating = false,
            Step::Cmd(Some(Cmd::Term)) => drop(child.send_signal(libc::SIGTERM)),
            Step::Cmd(Some(Cmd::Kill)) => drop(child.send_signal_to_group(libc::SIGKILL)),
            Step::Cmd(None) => commanded = false,
        }
    };
    // A worker's own children (a SPAWNed `sleep`) die with it.
    let _ = child.send_signal_to_group(libc::SIGKILL);
    let status = match status {
        Ok(_) => child.wait().await,
        Err(e) => Err(e),
    };
    let mut stderr = String::new();
    if let Some(err) = child.stderr.take() {
        let mut bytes = Vec::new();
        // Its group is dead, so nothing holds the pipe: end of file comes.
        let _ = err.take(4096).read_to_end(&mut bytes).await;
        stderr = String::from_utf8_lossy(&bytes).trim_end().to_owned();
    }
    let _ = out.send((id, Report::Exited { status, stderr }));
}
