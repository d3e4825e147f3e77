//! `overlap::process::reap_orphans` under fire: a thread calls it without pause while
//! overlap children are spawned, waited for, killed and dropped on four runtimes at once,
//! beside children overlap did not spawn (std's, raw `fork`s, orphans of double forks
//! reparented to a subreaper). Every overlap child must keep the status it chose, every
//! other child must be reaped exactly once with its own, and no zombie may be left; on
//! the `waitid` path, on the `/proc` listing path (an exited overlap child kept unreaped
//! throughout), and on the `SIGCHLD` fallback (pidfds denied). An error from `/proc` must
//! not lose the statuses of what was reaped before it, and a spawn stuck before its exec
//! must hold up no other child's reap.
//!
//! Each test runs in a child process of its own (`run_in_child`): `reap_orphans` reaps any
//! child of the whole process that overlap did not spawn, and the subreaper flag and the
//! seccomp filters are the whole process's.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use overlap::io::{AsyncBufReadExt, BufReader};
use overlap::process::{reap_orphans, Command};
use overlap::stream::StreamExt;

use support::{children, process_state, run_in_child, until, within, KillIfPanicking};

/// A hang guard only: every wait here ends in milliseconds.
const HANG: Duration = Duration::from_secs(30);

/// The exit code the `n`th child of a test chooses.
fn code_of(n: usize) -> i32 {
    (n % 200) as i32
}

/// Pids with what each exited with (`code()`, or minus the signal), sorted by pid.
fn by_pid(statuses: &[(u32, ExitStatus)]) -> BTreeMap<u32, Vec<i32>> {
    let mut map = BTreeMap::<u32, Vec<i32>>::new();
    for (pid, status) in statuses {
        let how = status.code().unwrap_or_else(|| -status.signal().unwrap());
        map.entry(*pid).or_default().push(how);
    }
    map
}

/// This process's children that are zombies (exited, unreaped), as `/proc` lists them.
fn zombie_children() -> Vec<u32> {
    children()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .filter(|&p| process_state(p) == Some('Z'))
        .collect()
}

/// A thread calling `reap_orphans` without pause until stopped, keeping all it reaped; an
/// error there fails the test at [`stop`](ReapingThread::stop).
struct ReapingThread {
    stop: Arc<AtomicBool>,
    reaped: Arc<Mutex<Vec<(u32, ExitStatus)>>>,
    calls: Arc<AtomicU64>,
    thread: JoinHandle<()>,
}

impl ReapingThread {
    fn start() -> ReapingThread {
        let stop = Arc::new(AtomicBool::new(false));
        let reaped = Arc::new(Mutex::new(Vec::new()));
        let calls = Arc::new(AtomicU64::new(0));
        let thread = std::thread::spawn({
            let (stop, reaped, calls) = (stop.clone(), reaped.clone(), calls.clone());
            move || {
                while !stop.load(Ordering::Relaxed) {
                    let now = reap_orphans().unwrap();
                    reaped.lock().unwrap().extend(now);
                    calls.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        ReapingThread {
            stop,
            reaped,
            calls,
            thread,
        }
    }

    /// Whether every pid of `pids` was reaped by this thread so far.
    fn has_reaped_all<'a>(&self, mut pids: impl Iterator<Item = &'a u32>) -> bool {
        let reaped = self.reaped.lock().unwrap();
        pids.all(|p| reaped.iter().any(|(r, _)| r == p))
    }

    /// Stops the thread and returns what it reaped, in order.
    fn stop(self) -> Vec<(u32, ExitStatus)> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("reap_orphans failed");
        assert!(self.calls.load(Ordering::Relaxed) > 0);
        Arc::try_unwrap(self.reaped).unwrap().into_inner().unwrap()
    }
}

/// Spawns `sh -c 'exit <code>'` with std, not overlap: `reap_orphans`'s to reap.
// Never waited for with std: `reap_orphans` reaps it.
#[allow(clippy::zombie_processes)]
fn std_stray(code: i32) -> u32 {
    let child = std::process::Command::new("sh")
        .args(["-c", &format!("exit {code}")])
        .spawn()
        .unwrap();
    child.id()
}

/// Forks a child that exits with `code` at once, behind std's and overlap's back.
fn forked_stray(code: i32) -> u32 {
    // SAFETY: the child of this multithreaded process calls only `_exit`, which is
    // async-signal-safe; the parent only reads the pid.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: `_exit` takes an integer and does not return.
        unsafe { libc::_exit(code) };
    }
    assert!(pid > 0, "fork: {}", std::io::Error::last_os_error());
    pid as u32
}

/// `sleep 60`, to be killed; its output goes nowhere, so that one left behind by a failed
/// test holds no pipe of the test's.
fn sleeper() -> Command {
    let mut cmd = Command::new("sleep");
    cmd.arg("60").stdout(Stdio::null()).stderr(Stdio::null());
    cmd
}

/// Runs overlap child `n` through one of eight ways of spawning and reaping it, checking
/// its status is the one it chose. Returns the pid of a child dropped unwaited (reaped in
/// the background, by a task or, once its runtime ended, the orphan reaper thread).
async fn run_overlap_child(n: usize) -> Option<u32> {
    let code = code_of(n);
    let exit = format!("exit {code}");
    let sh = |script: &str| {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        cmd
    };
    match n % 8 {
        0 => {
            let status = sh(&exit).spawn().unwrap().wait().await.unwrap();
            assert_eq!(status.code(), Some(code), "child {n}");
        }
        1 => {
            let mut child = sh(&exit).spawn().unwrap();
            let exited = child.exited().await.unwrap();
            overlap::yield_now().await;
            assert_eq!(exited.code(), Some(code), "child {n}");
            assert_eq!(child.wait().await.unwrap(), exited, "child {n}");
        }
        2 => {
            let status = sh(&exit).status().await.unwrap();
            assert_eq!(status.code(), Some(code), "child {n}");
        }
        3 => {
            let out = sh(&format!("echo child {n}; {exit}"))
                .output()
                .await
                .unwrap();
            assert_eq!(out.status.code(), Some(code), "child {n}");
            assert_eq!(out.stdout, format!("child {n}\n").into_bytes());
        }
        4 => {
            let mut cmd = std::process::Command::new("sh");
            let mut child = overlap::process::spawn(cmd.args(["-c", &exit])).unwrap();
            let status = loop {
                if let Some(status) = child.try_wait().unwrap() {
                    break status;
                }
                overlap::time::sleep(Duration::from_millis(1)).await;
            };
            assert_eq!(status.code(), Some(code), "child {n}");
        }
        5 => {
            let mut child = sleeper().spawn().unwrap();
            child.kill().await.unwrap();
            let status = child.try_wait().unwrap().unwrap();
            assert_eq!(status.signal(), Some(libc::SIGKILL), "child {n}");
        }
        6 => {
            let child = sh(&exit).spawn().unwrap();
            return child.id();
        }
        _ => {
            let child = sleeper().kill_on_drop(true).spawn().unwrap();
            return child.id();
        }
    }
    None
}

/// Overlap children per runtime, how many of them at a time, and the runtimes.
const PER_RUNTIME: usize = 96;
const AT_ONCE: usize = 8;
const RUNTIMES: usize = 4;
/// Children each of the two threads of strays spawns: std's, and raw forks.
const STRAYS: usize = 50;

/// Four runtimes on threads of their own run `PER_RUNTIME` overlap children each, two
/// threads spawn strays, and a thread reaps orphans throughout; with `keep_one`, an
/// exited overlap child stays a zombie all along, which `waitid(P_ALL)` may name first,
/// sending `reap_orphans` to its `/proc` listing.
async fn race(keep_one: bool) {
    let mut kept = match keep_one {
        true => {
            let mut kept = Command::new("sh").args(["-c", "exit 5"]).spawn().unwrap();
            let status = within(HANG, kept.exited(), "kept exits").await.unwrap();
            Some((kept.id().unwrap(), kept, status))
        }
        false => None,
    };
    let reaper = ReapingThread::start();
    let start = Arc::new(Barrier::new(RUNTIMES + 2));
    let runtimes: Vec<_> = (0..RUNTIMES)
        .map(|r| {
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                overlap::block_on(async {
                    let mut dropped = Vec::new();
                    for batch in (0..PER_RUNTIME).step_by(AT_ONCE) {
                        let runs = (batch..batch + AT_ONCE)
                            .map(|i| run_overlap_child(r * PER_RUNTIME + i));
                        let batch = futures_util::future::join_all(runs).await;
                        dropped.extend(batch.into_iter().flatten());
                    }
                    dropped
                })
            })
        })
        .collect();
    let spawners: Vec<_> = [std_stray as fn(i32) -> u32, forked_stray]
        .into_iter()
        .enumerate()
        .map(|(s, spawn)| {
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                let codes = (0..STRAYS).map(|i| code_of(1 + s * STRAYS + i));
                codes.map(|code| (spawn(code), code)).collect::<Vec<_>>()
            })
        })
        .collect();
    let dropped: Vec<u32> = runtimes
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let strays: Vec<(u32, i32)> = spawners
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    until(
        || {
            reaper.has_reaped_all(strays.iter().map(|(p, _)| p))
                && dropped.iter().all(|&p| process_state(p).is_none())
        },
        "every stray reaped, and every dropped child reaped in the background",
    )
    .await;
    let reaped = reaper.stop();
    let want: BTreeMap<u32, Vec<i32>> = strays.iter().map(|&(p, c)| (p, vec![c])).collect();
    assert_eq!(by_pid(&reaped), want, "each stray once, no overlap child");
    assert_eq!(reap_orphans().unwrap(), vec![]);
    if let Some((pid, mut kept, status)) = kept.take() {
        assert_eq!(zombie_children(), vec![pid], "only the kept one");
        assert_eq!(kept.wait().await.unwrap(), status);
    }
    assert_eq!(zombie_children(), Vec::<u32>::new());
}

#[test]
fn overlap_children_of_four_runtimes_keep_their_statuses_beside_strays() {
    run_in_child(
        "overlap_children_of_four_runtimes_keep_their_statuses_beside_strays",
        || overlap::block_on(race(false)),
    );
}

#[test]
fn the_proc_listing_path_keeps_statuses_under_the_same_race() {
    run_in_child(
        "the_proc_listing_path_keeps_statuses_under_the_same_race",
        || overlap::block_on(race(true)),
    );
}

#[test]
fn the_sigchld_fallback_keeps_statuses_under_the_same_race() {
    run_in_child(
        "the_sigchld_fallback_keeps_statuses_under_the_same_race",
        || {
            // No pidfds: every exit is watched through `SIGCHLD` and `waitid(P_PID)`.
            support::seccomp::deny(&[(libc::SYS_pidfd_open, libc::ENOSYS)]);
            overlap::block_on(race(true))
        },
    );
}

#[test]
fn std_children_waited_by_std_are_each_reaped_once() {
    run_in_child("std_children_waited_by_std_are_each_reaped_once", || {
        overlap::block_on(std_waits_racing())
    });
}

/// Four threads spawn std children and wait for each with std while a thread reaps
/// orphans: each exit is seen exactly once, by std's `wait` or by `reap_orphans` (std's
/// `wait` then failing with `ECHILD`), with the code the child chose.
async fn std_waits_racing() {
    let reaper = ReapingThread::start();
    let waiters: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                (0..20)
                    .map(|i| {
                        let code = code_of(t * 20 + i);
                        let mut child = std::process::Command::new("sh")
                            .args(["-c", &format!("exit {code}")])
                            .spawn()
                            .unwrap();
                        let waited = child.wait().map_err(|e| e.raw_os_error());
                        (child.id(), code, waited.map(|s| s.code().unwrap()))
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let runs: Vec<_> = waiters
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    until(
        || runs.iter().all(|&(p, ..)| process_state(p).is_none()),
        "every child reaped",
    )
    .await;
    let reaped = by_pid(&reaper.stop());
    for &(pid, code, waited) in &runs {
        match waited {
            Ok(got) => assert_eq!((got, reaped.get(&pid)), (code, None), "child {pid}"),
            Err(errno) => assert_eq!(
                (errno, reaped.get(&pid)),
                (Some(libc::ECHILD), Some(&vec![code])),
                "child {pid}"
            ),
        }
    }
    assert!(reaped.keys().all(|p| runs.iter().any(|r| r.0 == *p)));
    assert_eq!(zombie_children(), Vec::<u32>::new());
}

/// Double forks at once, below this subreaper.
const ORPHANS: usize = 12;

#[test]
fn orphans_of_double_forks_are_each_reaped_once_by_their_subreaper() {
    run_in_child(
        "orphans_of_double_forks_are_each_reaped_once_by_their_subreaper",
        || overlap::block_on(double_forks()),
    );
}

/// `ORPHANS` shells each leave a background subshell that waits for its input and exits
/// with its own code; the shells exit, their subshells are reparented to this subreaper,
/// and a thread calling `reap_orphans` must reap each exactly once, past an exited overlap
/// child kept a zombie throughout.
async fn double_forks() {
    overlap::process::set_child_subreaper(true).unwrap();
    let mut kept = Command::new("sh").args(["-c", "exit 5"]).spawn().unwrap();
    let kept_status = within(HANG, kept.exited(), "kept exits").await.unwrap();
    let reaper = ReapingThread::start();
    let mut orphans = BTreeMap::new();
    let mut inputs = Vec::new();
    let mut guards = Vec::new();
    for n in 0..ORPHANS {
        let code = code_of(n + 1);
        // A background list reads /dev/null unless told otherwise: fd 3 is the input.
        let script = format!("exec 3<&0; (read x <&3; exit {code}) & echo $!");
        let mut shell = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let input = shell.stdin.take().unwrap();
        let mut lines = BufReader::new(shell.stdout.take().unwrap()).lines();
        let orphan: u32 = lines.next().await.unwrap().unwrap().parse().unwrap();
        guards.push(KillIfPanicking(orphan));
        let status = within(HANG, shell.wait(), "the shell exits").await.unwrap();
        assert_eq!(status.code(), Some(0));
        orphans.insert(orphan, vec![code]);
        inputs.push(input);
    }
    // Every orphan is this process's child now, and still waits for its input.
    let listed = children();
    for orphan in orphans.keys() {
        assert!(listed.split_whitespace().any(|p| p == orphan.to_string()));
    }
    assert_eq!(reaper.stop(), vec![], "nothing exited yet");
    let reaper = ReapingThread::start();
    drop(inputs);
    until(
        || reaper.has_reaped_all(orphans.keys()),
        "every orphan reaped",
    )
    .await;
    assert_eq!(by_pid(&reaper.stop()), orphans);
    assert_eq!(zombie_children(), vec![kept.id().unwrap()]);
    assert_eq!(kept.wait().await.unwrap(), kept_status);
    assert_eq!(reap_orphans().unwrap(), vec![]);
    assert_eq!(zombie_children(), Vec::<u32>::new());
}

#[test]
fn an_error_from_proc_keeps_the_statuses_already_reaped() {
    run_in_child(
        "an_error_from_proc_keeps_the_statuses_already_reaped",
        || overlap::block_on(proc_denied()),
    );
}

/// A std child and then an exited overlap child, both zombies; with every `openat`
/// denied (so `/proc` cannot be read), `reap_orphans` reaps the std child, which
/// `waitid(P_ALL)` names first (the older child of this thread), then meets overlap's and
/// needs the listing: it must hand back the std child's status, not fail and lose it. The
/// next call has nothing reaped to hand back, and reports the error.
// The std child is `reap_orphans`'s to reap, not std's `wait`'s.
#[allow(clippy::zombie_processes)]
async fn proc_denied() {
    let mut stray = std::process::Command::new("sh")
        .args(["-c", "exit 7"])
        .spawn()
        .unwrap();
    let mut ours = Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
    let status = within(HANG, ours.exited(), "ours exits").await.unwrap();
    until(|| process_state(stray.id()) == Some('Z'), "the stray exits").await;
    support::seccomp::deny(&[(libc::SYS_openat, libc::EACCES)]);
    let first = reap_orphans().map(|r| by_pid(&r));
    assert_eq!(first.unwrap(), BTreeMap::from([(stray.id(), vec![7])]));
    let second = reap_orphans().map(|r| by_pid(&r));
    assert_eq!(
        second.map_err(|e| e.raw_os_error()),
        Err(Some(libc::EACCES))
    );
    // The stray was reaped once, by the first call: std finds it gone.
    let err = stray.try_wait().unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ECHILD));
    assert_eq!(ours.wait().await.unwrap(), status);
    assert_eq!(reap_orphans().unwrap(), vec![], "no child left");
}

#[test]
fn a_spawn_held_up_before_its_exec_holds_up_no_other_childs_wait() {
    run_in_child(
        "a_spawn_held_up_before_its_exec_holds_up_no_other_childs_wait",
        || overlap::block_on(held_up_spawn()),
    );
}

/// How long the guard below lets a wait be held up before it lets the spawn go on, and
/// the test fail: a hang guard only.
const HELD_UP: Duration = Duration::from_secs(10);

/// A spawn on another thread stays between its fork and its exec (its `pre_exec` waits
/// for a byte), as a slow fork of a big process, an exec from a slow file system or a
/// blocking `pre_exec` would: meanwhile, another child, exited already, must still be
/// reaped by its `wait` (which must not wait for that spawn). (Its exit comes first: the
/// forked copy stuck before its exec holds copies of this process's fds, so a child that
/// waited for a pipe of ours to close would wait for that copy too.)
async fn held_up_spawn() {
    // Exited before the spawn starts, and left unreaped: its `wait` reaps it meanwhile.
    let mut first = Command::new("sh").args(["-c", "exit 4"]).spawn().unwrap();
    let exited = within(HANG, first.exited(), "first exits").await.unwrap();
    let (mut started, started_tx) = UnixStream::pair().unwrap();
    let (release_rx, mut release) = UnixStream::pair().unwrap();
    let (started_fd, release_fd) = (started_tx.as_raw_fd(), release_rx.as_raw_fd());
    let sender_fd = release.as_raw_fd();
    let held = std::thread::spawn(move || {
        let mut cmd = Command::new("true");
        // The closure closes its copy of the sending end, so that the parent's end alone
        // decides: a byte, or end of file once this process is gone (a failed test then
        // leaves nothing behind).
        // SAFETY: the closure calls only `close`, `write` and `read` (async-signal-safe),
        // allocating nothing, on fds that `started_tx` and `release_rx` (moved into it) and
        // `release` (which outlives the spawn) keep open in the parent.
        unsafe {
            cmd.pre_exec(move || {
                let _ = (&started_tx, &release_rx);
                libc::close(sender_fd);
                libc::write(started_fd, [1u8].as_ptr().cast(), 1);
                let mut byte = 0u8;
                libc::read(release_fd, (&mut byte as *mut u8).cast(), 1);
                Ok(())
            });
        }
        overlap::block_on(async { cmd.spawn().unwrap().wait().await.unwrap() })
    });
    let mut byte = [0u8];
    started.read_exact(&mut byte).unwrap(); // the spawn is between its fork and its exec
    let guard_done = Arc::new(AtomicBool::new(false));
    let released_by_guard = Arc::new(AtomicBool::new(false));
    let guard = std::thread::spawn({
        let (done, released) = (guard_done.clone(), released_by_guard.clone());
        let mut release = release.try_clone().unwrap();
        move || {
            let start = std::time::Instant::now();
            while !done.load(Ordering::SeqCst) && start.elapsed() < HELD_UP {
                std::thread::sleep(Duration::from_millis(10));
            }
            if !done.load(Ordering::SeqCst) {
                released.store(true, Ordering::SeqCst);
                release.write_all(&[1]).unwrap();
            }
        }
    });
    let status = first.wait().await.unwrap();
    guard_done.store(true, Ordering::SeqCst);
    assert!(
        !released_by_guard.load(Ordering::SeqCst),
        "the wait was held up by the spawn"
    );
    assert_eq!((status, status.code()), (exited, Some(4)));
    release.write_all(&[1]).unwrap();
    assert!(held.join().unwrap().success());
    guard.join().unwrap();
    assert_eq!(zombie_children(), Vec::<u32>::new());
}
