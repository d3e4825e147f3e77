//! The tests' side: this test binary started again as the init (the `init_entry` test,
//! selected by [`ARGS_ENV`]), its stdout (the main command's lines) read line by line, its
//! stderr (the init's log) collected by a task, and a guard that leaves no process behind
//! when a test fails: the main command's whole group is killed, and the init with it.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::rc::Rc;
use std::time::Duration;

use overlap::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use overlap::process::{Child, ChildStdin, ChildStdout, Command};
use overlap::stream::StreamExt;
use overlap::task::JoinHandle;

use crate::support::{live_group_members, until, within};

/// The variable that tells a copy of this binary to be the init: its arguments, each
/// followed by [`ARG_END`].
pub const ARGS_ENV: &str = "CONTAINER_INIT_ARGS";
/// With this variable set, the init runs on a paused clock: its grace period and timeout
/// pass as soon as it has nothing else to do.
pub const PAUSED_ENV: &str = "CONTAINER_INIT_PAUSED";
/// What ends each argument in [`ARGS_ENV`].
pub const ARG_END: char = '\u{1f}';
/// A hang guard only: nothing here takes near this long.
pub const HANG: Duration = Duration::from_secs(60);

/// The init's arguments as [`init_entry`](crate::init_entry) reads them from
/// [`ARGS_ENV`].
pub fn args_from_env() -> Option<Vec<OsString>> {
    let all = std::env::var(ARGS_ENV).ok()?;
    Some(all.split_terminator(ARG_END).map(OsString::from).collect())
}

/// A running init, started by [`start`].
pub struct Init {
    /// The init process; killed if the test drops it early.
    pub child: Child,
    /// Its pid.
    pub pid: u32,
    /// Its stdin (which the main command inherits), until the test drops it.
    pub stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: Rc<RefCell<String>>,
    stderr_task: Option<JoinHandle<()>>,
    /// Processes the test learned of (a group member, an orphan), each with its start
    /// time, so that the guard never kills another process that took its pid.
    watched: Vec<(u32, u64)>,
}

/// How an init ended.
#[derive(Debug)]
pub struct Ended {
    /// Its exit code.
    pub code: Option<i32>,
    /// The main command's lines it had not read yet.
    pub lines: Vec<String>,
    /// All the init wrote to stderr.
    pub stderr: String,
}

/// Starts the init with `args` (its own options, then the main command), on the real
/// clock.
pub fn start(args: &[&str]) -> Init {
    start_with(args, false)
}

/// As [`start`], the init on a paused clock.
pub fn start_paused(args: &[&str]) -> Init {
    start_with(args, true)
}

fn start_with(args: &[&str], paused: bool) -> Init {
    let encoded: String = args.iter().map(|a| format!("{a}{ARG_END}")).collect();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "init_entry",
        "--exact",
        "--nocapture",
        "--quiet",
        "--test-threads=1",
    ])
    .env(ARGS_ENV, encoded)
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .kill_on_drop(true);
    if paused {
        cmd.env(PAUSED_ENV, "1");
    }
    let mut child = cmd.spawn().unwrap();
    let pid = child.id().unwrap();
    let stdin = child.stdin.take();
    let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let stderr = Rc::new(RefCell::new(String::new()));
    let mut pipe = child.stderr.take().unwrap();
    let sink = stderr.clone();
    let stderr_task = overlap::spawn(async move {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = pipe.read(&mut buf).await {
            sink.borrow_mut()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    Init {
        child,
        pid,
        stdin,
        stdout,
        stderr,
        stderr_task: Some(stderr_task),
        watched: Vec::new(),
    }
}

/// Whether `line` is the test harness's own (`running 1 test`), not the main command's.
fn harness_line(line: &str) -> bool {
    line.is_empty() || line == "running 1 test"
}

impl Init {
    /// The main command's next line.
    pub async fn line(&mut self) -> String {
        loop {
            let line = within(HANG, self.stdout.next(), "a line from the init")
                .await
                .transpose()
                .unwrap()
                .expect("the init's stdout ended early");
            if !harness_line(&line) {
                return line;
            }
        }
    }

    /// The main command's next line, `prefix` and a pid: the pid, watched by the guard.
    pub async fn pid_line(&mut self, prefix: &str) -> u32 {
        let line = self.line().await;
        let pid = line
            .strip_prefix(prefix)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{line:?}: not {prefix:?} and a pid"));
        self.watch(pid);
        pid
    }

    /// Has the guard kill process `pid` when the test ends, if it is still the same process.
    pub fn watch(&mut self, pid: u32) {
        if let Some(start) = start_time(pid) {
            self.watched.push((pid, start));
        }
    }

    /// All the init has written to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.borrow().clone()
    }

    /// The main command's pid (and process group id), from the init's `-v` log.
    pub async fn main_pid(&self) -> u32 {
        until(
            || main_pid_in(&self.stderr()).is_some(),
            "the init's `started` line",
        )
        .await;
        main_pid_in(&self.stderr()).unwrap()
    }

    /// Sends `signal` to the init.
    pub fn send(&mut self, signal: libc::c_int) {
        self.child.send_signal(signal).unwrap();
    }

    /// Reads the main command's output to its end and waits for the init to exit. The
    /// guard stays: it acts when the `Init` is dropped, after the test's last check.
    pub async fn finish(&mut self) -> Ended {
        drop(self.stdin.take());
        let mut lines = Vec::new();
        let read_all = async {
            while let Some(line) = self.stdout.next().await.transpose().unwrap() {
                if !harness_line(&line) {
                    lines.push(line);
                }
            }
        };
        within(HANG, read_all, "the init's stdout to end").await;
        let status = within(HANG, self.child.wait(), "the init to exit")
            .await
            .unwrap();
        let task = self.stderr_task.take().unwrap();
        within(HANG, task, "the init's stderr to end")
            .await
            .unwrap();
        Ended {
            code: status.code(),
            lines,
            stderr: self.stderr(),
        }
    }
}

/// The pid in the init's `started pid N` log line, if it is there yet.
fn main_pid_in(stderr: &str) -> Option<u32> {
    let (_, rest) = stderr.split_once("container_init: started pid ")?;
    rest.split_whitespace().next()?.parse().ok()
}

impl Drop for Init {
    fn drop(&mut self) {
        // Whatever the test did, no process it started survives it: what is still below
        // the init, the main command's group, and the processes the test learned of.
        let mut doomed = descendants(self.pid);
        if let Some(main) = main_pid_in(&self.stderr()) {
            doomed.extend(live_group_members(main));
        }
        for &(pid, start) in &self.watched {
            if start_time(pid) == Some(start) {
                doomed.push(pid);
            }
        }
        for pid in doomed {
            // Gone since it was listed is no error.
            let _ = crate::sys::kill(pid, libc::SIGKILL);
        }
        // Then `child` drops: `kill_on_drop` ends the init if it still runs.
    }
}

/// The processes below `pid` (its children, theirs, ...), from a scan of `/proc`.
fn descendants(pid: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(p) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some(ppid) = parent_of(p) {
            parents.push((p, ppid));
        }
    }
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|&&(_, pp)| pp == parent)
                .map(|&(p, _)| p),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// When process `pid` started (field 22 of `/proc/<pid>/stat`), or `None` once it is gone.
fn start_time(pid: u32) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
}

/// Runs the init with `args` to its end, its stdin closed at once: its exit code, the
/// main command's lines and the init's stderr.
pub async fn run(args: &[&str]) -> Ended {
    start(args).finish().await
}

/// The lines of `text` that hold `needle`.
pub fn lines_with<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.contains(needle)).collect()
}

/// The fields of `/proc/<pid>/stat` after the command name (state, ppid, pgrp, ...), or
/// `None` once the process is gone.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, in parentheses, may hold spaces and ')': split after the last one.
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// The parent of process `pid`, or `None` once it is gone.
pub fn parent_of(pid: u32) -> Option<u32> {
    stat_fields(pid)?.get(1)?.parse().ok()
}

/// The process group of process `pid`, or `None` once it is gone.
pub fn group_of(pid: u32) -> Option<u32> {
    stat_fields(pid)?.get(2)?.parse().ok()
}

/// The children of process `pid` (zombies included), of all its threads, sorted.
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut pids = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return pids;
    };
    for task in tasks.flatten() {
        let list = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        pids.extend(list.split_whitespace().map(|p| p.parse::<u32>().unwrap()));
    }
    pids.sort_unstable();
    pids
}

/// The open fds of process `pid`, split by their close-on-exec flag (from
/// `/proc/<pid>/fdinfo`): those an `exec` keeps, and those it closes.
pub fn fds_by_cloexec(pid: u32) -> (BTreeSet<u32>, BTreeSet<u32>) {
    const O_CLOEXEC: u32 = libc::O_CLOEXEC as u32;
    let (mut kept, mut closed) = (BTreeSet::new(), BTreeSet::new());
    for entry in std::fs::read_dir(format!("/proc/{pid}/fdinfo"))
        .unwrap()
        .flatten()
    {
        let fd: u32 = entry.file_name().to_str().unwrap().parse().unwrap();
        // Closed between the listing and the read: not open any more.
        let Ok(info) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let flags = info
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .map(|f| u32::from_str_radix(f.trim(), 8).unwrap())
            .unwrap();
        if flags & O_CLOEXEC == 0 {
            kept.insert(fd);
        } else {
            closed.insert(fd);
        }
    }
    (kept, closed)
}
