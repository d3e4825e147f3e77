//! `overlap::process` under cuts and aborts: children spawned, fed and read through cut
//! operations, waited for, killed and dropped at random points.
//!
//! - A `cat` relaying a stream: the usual writer and reader tasks (see `streams`) on its
//!   stdin and stdout, while a third task holds the `Child` through cut `wait`s and
//!   `try_wait`s, or drops it while it runs (it is then reaped in the background).
//! - `sh` printing a file to stdout and stderr, through a cut `output()` or `status()`, or
//!   read in part through cut reads before a cut `wait_with_output` takes the rest: a run
//!   that completes gives every byte, once, and the exit code.
//! - A child that only ends when killed (or, for a `cat`, when its stdin closes), through
//!   cut `kill`s and `wait`s, `start_kill`, `try_wait`, and drops with `kill_on_drop` on
//!   (and off, for the `cat`).
//!
//! Whatever was cut, no child is left running or as a zombie once the tasks are over: the
//! seed waits until this process has no child left (see [`all_reaped`]). Some seeds then
//! leave children running as the runtime ends (see [`outliving`]), which the orphan reaper
//! must reap.

use std::cell::Cell;
use std::future::Future;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::rc::Rc;
use std::time::Duration;

use overlap::io::AsyncReadExt;
use overlap::process::{Child, Command};

use crate::cut::{clear, cut, pause, pick, seed, Cut};
use crate::streams::{self, Tally};
use crate::support::{children, pattern_seeded, Rng};

thread_local! {
    /// Whether the seed being run had a child watched by the runtime (see [`any_watched`]).
    static WATCHED: Cell<bool> = const { Cell::new(false) };
    /// Whether it had one that may have been (see [`maybe_watched`]).
    static MAYBE_WATCHED: Cell<bool> = const { Cell::new(false) };
}

/// Whether a child was watched by the runtime since [`forget_watched`]: spawned as a
/// [`Child`], or by a `status()` or `output()` future that was polled. Without a pidfd, the
/// first child watched starts the runtime's signal reader.
pub fn any_watched() -> bool {
    WATCHED.with(Cell::get)
}

/// Whether a child may have been watched since [`forget_watched`]: also by a `status()` or
/// `output()` future cut before its first poll, whose child is watched if it still runs
/// when the future is dropped (and, exited by then, is reaped without being watched).
pub fn maybe_watched() -> bool {
    any_watched() || MAYBE_WATCHED.with(Cell::get)
}

/// Starts a seed with no child watched.
pub fn forget_watched() {
    WATCHED.with(|w| w.set(false));
    MAYBE_WATCHED.with(|w| w.set(false));
}

fn mark_watched() {
    WATCHED.with(|w| w.set(true));
}

/// `fut` (a `status()` or `output()`, its child spawned already), marking a child watched
/// once it is polled, and maybe watched at once.
fn watching<F: Future>(fut: F) -> impl Future<Output = F::Output> {
    MAYBE_WATCHED.with(|w| w.set(true));
    async move {
        mark_watched();
        fut.await
    }
}
use crate::sync::Tasks;

/// Spawns a random process actor (its tasks into `tasks`), with files it needs in `dir`;
/// the tallies of the streams it relays, to check at the end.
pub fn actor(rng: &mut Rng, tasks: &mut Tasks, dir: &Path, id: u32) -> Vec<Rc<Tally>> {
    let mut arng = Rng(rng.next() | 1);
    let kind = rng.below(4);
    match kind {
        0 => return cat_stream(rng, tasks, id),
        1 | 2 => {
            let path = dir.join(format!("out{id}"));
            let data = pattern_seeded(arng.below(200_000), id);
            std::fs::write(&path, &data).unwrap();
            let what = format!("sh printing {} bytes", data.len());
            tasks.spawn(what, true, async move {
                if kind == 1 {
                    output(&path, &data, arng).await
                } else {
                    read_then_output(&path, &data, arng).await
                }
            });
        }
        _ => tasks.spawn("kill".into(), true, async move { kill(arng).await }),
    }
    Vec::new()
}

/// Prints the file at `path` to stdout and stderr, then exits with `code`.
fn printer(path: &Path, code: i32) -> std::process::Command {
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.args(["-c", r#"cat "$1"; cat "$1" >&2; exit "$2""#, "sh"])
        .arg(path)
        .arg(code.to_string());
    cmd
}

/// A few runs of `printer` through cut `output()`s, or of `sh -c 'exit N'` and `true`
/// through cut `status()`es.
async fn output(path: &Path, data: &[u8], mut rng: Rng) {
    for _ in 0..1 + rng.below(3) {
        let code = rng.below(4) as i32;
        match rng.below(4) {
            0 | 1 => {
                let mut std = printer(path, code);
                let res = if rng.below(2) == 0 {
                    // Killed if cut (and reaped in the background either way).
                    let mut cmd = Command::from(std);
                    cmd.kill_on_drop(rng.below(2) == 0);
                    cut(pick(&mut rng), watching(cmd.output())).await
                } else {
                    cut(pick(&mut rng), watching(overlap::process::output(&mut std))).await
                };
                if let Some(res) = res {
                    let out = res.unwrap_or_else(|e| failed("output", &e));
                    assert_eq!(out.status.code(), Some(code), "seed {}: output", seed());
                    assert!(
                        out.stdout == data && out.stderr == data,
                        "seed {}: output gave {} and {} bytes of {}",
                        seed(),
                        out.stdout.len(),
                        out.stderr.len(),
                        data.len()
                    );
                }
            }
            2 => {
                let mut cmd = Command::new("/bin/sh");
                cmd.args(["-c", &format!("exit {code}")]);
                if let Some(res) = cut(pick(&mut rng), watching(cmd.status())).await {
                    let status = res.unwrap_or_else(|e| failed("status", &e));
                    assert_eq!(status.code(), Some(code), "seed {}: status", seed());
                }
            }
            _ => {
                let mut cmd = Command::new("true");
                if let Some(res) = cut(pick(&mut rng), watching(cmd.status())).await {
                    let status = res.unwrap_or_else(|e| failed("status", &e));
                    assert!(status.success(), "seed {}: true: {status}", seed());
                }
            }
        }
        pause(&mut rng).await;
    }
}

/// Reads part of `printer`'s stdout through cut reads, then hands the pipe back for a cut
/// `wait_with_output`, which must give exactly the rest.
async fn read_then_output(path: &Path, data: &[u8], mut rng: Rng) {
    let code = rng.below(4) as i32;
    let mut child = Command::from(printer(path, code))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| failed("spawn", &e));
    mark_watched();
    let mut stdout = child.stdout.take().unwrap();
    let (mut read, until) = (0, rng.below(data.len() + 1));
    let mut buf = vec![0u8; 70_000];
    while read < until {
        let want = 1 + rng.below(buf.len());
        match cut(pick(&mut rng), stdout.read(&mut buf[..want])).await {
            Some(Ok(n)) => {
                assert!(
                    n > 0 && buf[..n] == data[read..read + n],
                    "seed {}: child stdout: {n} wrong bytes at {read}",
                    seed()
                );
                read += n;
            }
            Some(Err(e)) => failed("read stdout", &e),
            None => pause(&mut rng).await,
        }
    }
    child.stdout = Some(stdout);
    let Some(res) = cut(pick(&mut rng), child.wait_with_output()).await else {
        return;
    };
    let out = res.unwrap_or_else(|e| failed("wait_with_output", &e));
    assert_eq!(out.status.code(), Some(code), "seed {}: exit code", seed());
    assert!(
        out.stdout == data[read..] && out.stderr == data,
        "seed {}: wait_with_output gave {} + {read} and {} bytes of {}",
        seed(),
        out.stdout.len(),
        out.stderr.len(),
        data.len()
    );
}

/// A `cat` relaying a stream, its `Child` held by a task of its own.
fn cat_stream(rng: &mut Rng, tasks: &mut Tasks, id: u32) -> Vec<Rc<Tally>> {
    let mut child = Command::new("/bin/cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| failed("spawn", &e));
    mark_watched();
    let (w, r) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
    let data = streams::data_for(rng, id);
    let t = Rc::new(Tally::new(format!(
        "pipe | cat | pipe ({} bytes)",
        data.len()
    )));
    let stop = (rng.below(8) == 0).then(|| rng.below(data.len() + 1));
    let writer = streams::writer(Box::new(w), data.clone(), t.clone(), Rng(rng.next() | 1));
    tasks.spawn(format!("{} writer", t.what), true, writer);
    let reader = streams::reader(Box::new(r), data, t.clone(), Rng(rng.next() | 1), stop);
    tasks.spawn(format!("{} reader", t.what), true, reader);
    let (t2, mut wrng) = (t.clone(), Rng(rng.next() | 1));
    tasks.spawn(format!("{} waiter", t.what), true, async move {
        // Dropped (not killed: its stdin and stdout are the other tasks') at any point.
        for _ in 0..wrng.below(8) {
            let id = child.id();
            match wrng.below(3) {
                0 => {
                    if let Some(status) =
                        child.try_wait().unwrap_or_else(|e| failed("try_wait", &e))
                    {
                        cat_ended(&t2, &child, status);
                    } else {
                        assert!(id.is_some(), "seed {}: running, no pid", seed());
                    }
                }
                1 => {
                    if let Some(res) = cut(pick(&mut wrng), child.wait()).await {
                        cat_ended(&t2, &child, res.unwrap_or_else(|e| failed("wait", &e)));
                    }
                }
                _ => pause(&mut wrng).await,
            }
        }
        if wrng.below(2) == 0 {
            let status = child.wait().await.unwrap_or_else(|e| failed("wait", &e));
            cat_ended(&t2, &child, status);
        }
    });
    vec![t]
}

/// `cat` ended: well, unless its reader went away first (`SIGPIPE`); reaped, so no pid.
fn cat_ended(t: &Tally, child: &Child, status: ExitStatus) {
    assert!(
        status.success() || t.reader_gone(),
        "seed {}: {}: cat ended with {status} while its reader lives",
        seed(),
        t.what
    );
    assert_eq!(child.id(), None, "seed {}: reaped, yet a pid", seed());
}

/// A child that ends only when killed (`sleep`, so `kill_on_drop` is on) or when its stdin
/// closes (`cat`, `kill_on_drop` either way), through cut kills and waits and drops.
async fn kill(mut rng: Rng) {
    let sleeper = rng.below(2) == 0;
    let mut cmd = if sleeper {
        let mut cmd = Command::new("/bin/sleep");
        cmd.arg("30").kill_on_drop(true);
        cmd
    } else {
        let mut cmd = Command::new("/bin/cat");
        cmd.stdin(Stdio::piped()).kill_on_drop(rng.below(2) == 0);
        cmd
    };
    let mut child = cmd
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| failed("spawn", &e));
    mark_watched();
    let mut killed = false;
    let mut status = None;
    for _ in 0..rng.below(6) {
        match rng.below(5) {
            0 => {
                // Cut, it may not even have sent the signal.
                if let Some(res) = cut(pick(&mut rng), child.kill()).await {
                    res.unwrap_or_else(|e| failed("kill", &e));
                    status = child.try_wait().unwrap_or_else(|e| failed("try_wait", &e));
                    assert!(status.is_some(), "seed {}: killed, not reaped", seed());
                    killed = true;
                }
            }
            1 => {
                child
                    .start_kill()
                    .unwrap_or_else(|e| failed("start_kill", &e));
                killed = true;
            }
            2 => {
                // Left to wait for a wake only once killed: nothing else ends a `sleep`.
                let how = match pick(&mut rng) {
                    Cut::Never | Cut::AfterPending(_) if !killed => Cut::AfterPending(1),
                    how => how,
                };
                if let Some(res) = cut(how, child.wait()).await {
                    status = Some(res.unwrap_or_else(|e| failed("wait", &e)));
                }
            }
            3 => {
                if let Some(s) = child.try_wait().unwrap_or_else(|e| failed("try_wait", &e)) {
                    status = Some(s);
                }
            }
            _ => return drop(child),
        }
        pause(&mut rng).await;
    }
    if rng.below(3) == 0 {
        return drop(child);
    }
    if status.is_none() {
        child.kill().await.unwrap_or_else(|e| failed("kill", &e));
        status = child.try_wait().unwrap_or_else(|e| failed("try_wait", &e));
    }
    let status = status.expect("reaped");
    // `wait` closes a `cat`'s stdin, which may end it before a kill.
    assert!(
        status.signal() == Some(libc::SIGKILL) || (!sleeper && status.success()),
        "seed {}: {} ended with {status}",
        seed(),
        if sleeper { "sleep" } else { "cat" }
    );
    assert_eq!(child.id(), None, "seed {}: reaped, yet a pid", seed());
    let again = child.wait().await.unwrap_or_else(|e| failed("wait", &e));
    assert_eq!(again, status, "seed {}: a second wait", seed());
}

fn failed(op: &str, e: &std::io::Error) -> ! {
    clear(op, e);
    panic!("seed {}: process {op}: {e:?}", seed());
}

/// Waits (on a running clock) until every child spawned was reaped, whether its `Child`
/// was waited for, dropped or aborted with its task (see [`all_gone`]).
pub async fn all_reaped() {
    if overlap::time::is_paused() {
        overlap::time::resume();
    }
    let start = std::time::Instant::now();
    while !all_gone() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "seed {}: children left unreaped: {}",
            seed(),
            children()
        );
        overlap::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Whether this process has no child left (not even a zombie), and no orphan reaper
/// thread either: that thread closes an orphan's pidfd just after reaping it, and ends
/// once it has none left (a `status()` or `output()` future dropped before its first poll
/// outside a runtime leaves its child to it).
pub fn all_gone() -> bool {
    let reaper = || {
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return false;
        };
        tasks.flatten().any(|t| {
            let name = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            // The kernel keeps 15 bytes of "overlap-orphan-reaper".
            name.starts_with("overlap-orphan-")
        })
    };
    children().is_empty() && !reaper()
}

/// Whether this kernel has `pidfd_open` (and no filter denies it): a child is then watched
/// through a pidfd, else through `SIGCHLD`, which starts the runtime's signal reader.
pub fn pidfd_works() -> bool {
    // SAFETY: pidfd_open takes a pid and flags, no pointers.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) };
    if fd < 0 {
        return false;
    }
    // SAFETY: `fd` was just opened here and is closed once.
    unsafe { libc::close(fd as libc::c_int) };
    true
}

/// Children still running as the runtime ends: some dropped now (their reaper tasks go
/// with the runtime), the rest returned, to be dropped once it is gone. Either way the
/// orphan reaper takes them over: no zombie is left.
pub fn outliving(rng: &mut Rng) -> Vec<Child> {
    let mut kept = Vec::new();
    for _ in 0..1 + rng.below(3) {
        let mut cmd = if rng.below(2) == 0 {
            let mut cmd = Command::new("/bin/sleep");
            cmd.arg("0.05");
            cmd
        } else {
            // Ends once its stdin closes, with the `Child`.
            let mut cmd = Command::new("/bin/cat");
            cmd.stdin(Stdio::piped());
            cmd
        };
        let child = cmd
            .stdout(Stdio::null())
            .kill_on_drop(rng.below(2) == 0)
            .spawn()
            .unwrap_or_else(|e| failed("spawn", &e));
        if rng.below(2) == 0 {
            drop(child);
        } else {
            kept.push(child);
        }
    }
    kept
}
