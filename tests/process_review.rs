//! An adversarial review of a child's life and statuses: exit codes, signals and core
//! dumps as every wait reports them; a stopped child, which has not exited; 200 children
//! awaited in a random order, each in its own way, and as many by two runtimes on two
//! threads at once; and signals to a reaped child whose pid another child took.
//!
//! The children's pipes and `output()` are in `process_review_io.rs`.

mod support;

use std::os::unix::process::ExitStatusExt;
use std::pin::pin;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use overlap::io::AsyncWriteExt;
use overlap::process::{Child, Command};
use overlap::time::timeout;
use support::{
    children, next_pid_is, poll_once, process_state, run_in_pid_namespace, settle, until, within,
    Rng, TempDir,
};

/// A hang guard only: every wait here ends in milliseconds.
const HANG: Duration = Duration::from_secs(30);

/// `sh -c script`.
fn sh(script: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script]);
    // SAFETY: the closure only calls `signal`, which is async-signal-safe, as a child
    // between fork and exec may.
    unsafe {
        cmd.pre_exec(|| {
            // A test run started by a non-interactive shell's `&` (a CI script in the
            // background) ignores SIGINT and SIGQUIT, and a child inherits ignored signals:
            // `kill -QUIT $$` would then do nothing. Each child starts with the defaults.
            for sig in [libc::SIGINT, libc::SIGQUIT] {
                libc::signal(sig, libc::SIG_DFL);
            }
            Ok(())
        });
    }
    cmd
}

/// A status taken apart: (exit code, signal, core dumped).
type Parts = (Option<i32>, Option<i32>, bool);

/// The parts of `status`.
fn parts(status: ExitStatus) -> Parts {
    (status.code(), status.signal(), status.core_dumped())
}

/// `script`'s status through `status()`, `output()`, and `exited()` then `wait()` (which
/// must agree), each run in `dir`.
async fn statuses(script: &str, dir: &TempDir) -> [ExitStatus; 3] {
    let by_status = sh(script).current_dir(dir.path()).status();
    let by_status = within(HANG, by_status, script).await.unwrap();
    let by_output = sh(script).current_dir(dir.path()).output();
    let by_output = within(HANG, by_output, script).await.unwrap().status;
    let mut child = sh(script).current_dir(dir.path()).spawn().unwrap();
    let seen = within(HANG, child.exited(), script).await.unwrap();
    assert_eq!(
        child.wait().await.unwrap(),
        seen,
        "{script}: exited vs wait"
    );
    [by_status, by_output, seen]
}

/// Whether a child may raise its core size limit to unlimited (`ulimit -c unlimited`).
fn core_unlimited() -> bool {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for getrlimit to fill.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut lim) }, 0);
    lim.rlim_max == libc::RLIM_INFINITY
}

/// Exit codes (255, and 256 which wraps to 0), deaths by signal, and a core dump come back
/// exact, and the same from `status`, `output`, `exited` (`waitid`) and `wait`
/// (`waitpid`). A core dump is looked for only where the kernel writes plain files.
#[test]
fn exit_codes_signals_and_core_dumps_are_exact_from_every_wait() {
    let dir = TempDir::new("process-review-status");
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    // A file name relative to the working directory: a dump lands in `dir`.
    let dumps_here = !pattern.starts_with('|') && !pattern.contains('/') && core_unlimited();
    overlap::block_on(async {
        let cases: [(&str, Parts); 7] = [
            ("exit 0", (Some(0), None, false)),
            ("exit 1", (Some(1), None, false)),
            ("exit 255", (Some(255), None, false)),
            ("exit 256", (Some(0), None, false)),
            ("kill -TERM $$", (None, Some(libc::SIGTERM), false)),
            ("kill -KILL $$", (None, Some(libc::SIGKILL), false)),
            // A signal whose default is a core dump, with dumps turned off.
            (
                "ulimit -c 0; kill -QUIT $$",
                (None, Some(libc::SIGQUIT), false),
            ),
        ];
        for (script, want) in cases {
            for (how, status) in ["status", "output", "exited"]
                .iter()
                .zip(statuses(script, &dir).await)
            {
                assert_eq!(parts(status), want, "{script} by {how}: {status:?}");
                assert_eq!(status.success(), want.0 == Some(0), "{script} by {how}");
            }
        }
        // Killed from here, and after the kill, every look gives the same.
        let mut child = sh("exec sleep 100").spawn().unwrap();
        child.start_kill().unwrap();
        let status = within(HANG, child.wait(), "killed").await.unwrap();
        assert_eq!(parts(status), (None, Some(libc::SIGKILL), false));
        assert_eq!(child.try_wait().unwrap(), Some(status));
        assert_eq!(child.exited().await.unwrap(), status);

        if !dumps_here {
            eprintln!("core_pattern {pattern:?} (or the hard limit) allows no dump here");
            return;
        }
        let script = "ulimit -c unlimited; kill -SEGV $$";
        for (how, status) in ["status", "output", "exited"]
            .iter()
            .zip(statuses(script, &dir).await)
        {
            let want = (None, Some(libc::SIGSEGV), true);
            assert_eq!(parts(status), want, "{script} by {how}: {status:?}");
        }
        let cores = std::fs::read_dir(dir.path()).unwrap().count();
        assert!(cores >= 1, "no core file beside a status that says dumped");
    });
}

/// A child that stops itself (`SIGSTOP`) has not exited: `try_wait` says so, `wait` and
/// `exited` stay pending however often they are polled, and once continued the child's
/// own exit code comes back (not the stop).
async fn a_stopped_child_waits_to_be_continued() {
    // Killed on drop, so a failing test leaves no stopped child behind.
    let mut child = sh("kill -STOP $$; exit 9")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    until(|| process_state(pid) == Some('T'), "the child to stop").await;
    assert_eq!(child.try_wait().unwrap(), None);
    for _ in 0..3 {
        let mut wait = pin!(child.wait());
        assert!(
            poll_once(&mut wait).await.is_pending(),
            "wait on a stopped child"
        );
        settle().await;
        assert!(
            poll_once(&mut wait).await.is_pending(),
            "wait on a stopped child"
        );
    }
    {
        let mut exited = pin!(child.exited());
        assert!(poll_once(&mut exited).await.is_pending(), "exited: stopped");
        settle().await;
        assert!(poll_once(&mut exited).await.is_pending(), "exited: stopped");
    }
    assert_eq!(child.id(), Some(pid));
    child.send_signal(libc::SIGCONT).unwrap();
    let status = within(HANG, child.wait(), "the continued child")
        .await
        .unwrap();
    assert_eq!(parts(status), (Some(9), None, false));
    assert_eq!(child.id(), None);
}

#[test]
fn a_stopped_child_has_not_exited_until_it_is_continued() {
    overlap::block_on(a_stopped_child_waits_to_be_continued());
}

/// The same where exits are seen through `SIGCHLD`, which a stop sends too.
#[test]
fn a_stopped_child_has_not_exited_until_it_is_continued_without_pidfds() {
    support::run_in_child(
        "a_stopped_child_has_not_exited_until_it_is_continued_without_pidfds",
        || {
            support::seccomp::deny(&[(libc::SYS_pidfd_open, libc::ENOSYS)]);
            overlap::block_on(a_stopped_child_waits_to_be_continued());
        },
    );
}

/// `wait` and `exited` under a timeout on a paused clock, the child waiting for a line of
/// ours: the idle runtime jumps the clock to each deadline, each wait is dropped unfinished,
/// and nothing is lost: once the line is sent, every look gives the child's own code.
fn waits_timed_out_on_a_paused_clock_lose_nothing() {
    support::exit_if_still_running_after(HANG, "a wait hung");
    let rt = overlap::Runtime::builder()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let (mut tx, rx) = overlap::pipe::pipe().unwrap();
        let mut child = sh("read line; exit 5")
            .stdin(Stdio::try_from(rx).unwrap())
            .spawn()
            .unwrap();
        let pid = child.id();
        let hour = Duration::from_secs(3600);
        for _ in 0..3 {
            let start = overlap::time::Instant::now();
            assert!(timeout(hour, child.wait()).await.is_err(), "wait ended");
            assert!(start.elapsed() >= hour, "the timeout fired early");
            assert!(timeout(hour, child.exited()).await.is_err(), "exited ended");
            assert_eq!(child.try_wait().unwrap(), None);
            assert_eq!(child.id(), pid);
        }
        tx.write_all(b"go\n").await.unwrap();
        let status = child.wait().await.unwrap();
        assert_eq!(parts(status), (Some(5), None, false));
        assert_eq!(child.try_wait().unwrap(), Some(status));
        assert_eq!(child.exited().await.unwrap(), status);
        assert_eq!(child.id(), None);
    });
}

#[test]
fn waits_timed_out_on_a_paused_clock_keep_the_status() {
    support::run_in_child(
        "waits_timed_out_on_a_paused_clock_keep_the_status",
        waits_timed_out_on_a_paused_clock_lose_nothing,
    );
}

/// The same through `SIGCHLD`, which a paused clock leaves as the only way to see the exit.
#[test]
fn waits_timed_out_on_a_paused_clock_keep_the_status_without_pidfds() {
    support::run_in_child(
        "waits_timed_out_on_a_paused_clock_keep_the_status_without_pidfds",
        || {
            support::seccomp::deny(&[(libc::SYS_pidfd_open, libc::ENOSYS)]);
            waits_timed_out_on_a_paused_clock_lose_nothing();
        },
    );
}

/// The five ways the children of the 200 below end and are awaited.
#[derive(Clone, Copy, Debug)]
enum Way {
    /// `exit n`, awaited with `wait`.
    Exits,
    /// Killed by `SIGTERM` from itself, seen with `exited`, then reaped by `try_wait`.
    Terminates,
    /// Reads its stdin until `wait` closes it, then `exit 3`.
    ReadsStdin,
    /// Sleeps until `kill` ends it.
    Sleeps,
    /// `exit n`, found by polling `try_wait`.
    ExitsPolled,
}

/// Spawns children `first..first + n` at once, of the five kinds in turn, and awaits
/// them in a random order from `seed` (some long exited by their turn, some still
/// running), checking that each status is exactly its own.
async fn spawn_and_await_in_random_order(first: usize, n: usize, seed: u64) {
    let ways = [
        Way::Exits,
        Way::Terminates,
        Way::ReadsStdin,
        Way::Sleeps,
        Way::ExitsPolled,
    ];
    let mut kids: Vec<(usize, Way, Child)> = (first..first + n)
        .map(|i| {
            let way = ways[i % ways.len()];
            let mut cmd = match way {
                Way::Exits | Way::ExitsPolled => sh(&format!("exit {}", i % 256)),
                Way::Terminates => sh("kill -TERM $$"),
                Way::ReadsStdin => sh("cat >/dev/null; exit 3"),
                Way::Sleeps => sh("exec sleep 1000"),
            };
            if let Way::ReadsStdin = way {
                cmd.stdin(Stdio::piped());
            }
            // Killed on drop, so a failing test leaves no sleeper behind.
            (i, way, cmd.kill_on_drop(true).spawn().unwrap())
        })
        .collect();
    let mut rng = Rng(seed);
    for k in (1..kids.len()).rev() {
        kids.swap(k, rng.below(k + 1));
    }
    for (i, way, mut child) in kids {
        let what = format!("child {i} ({way:?}, seed {seed:#x})");
        let status = match way {
            Way::Exits | Way::ReadsStdin => within(HANG, child.wait(), &what).await.unwrap(),
            Way::Terminates => {
                let seen = within(HANG, child.exited(), &what).await.unwrap();
                assert_eq!(child.try_wait().unwrap(), Some(seen), "{what}");
                seen
            }
            Way::Sleeps => {
                within(HANG, child.kill(), &what).await.unwrap();
                child.try_wait().unwrap().expect("reaped by kill")
            }
            Way::ExitsPolled => {
                let mut found = None;
                let look = || {
                    found = child.try_wait().unwrap();
                    found.is_some()
                };
                until(look, &what).await;
                found.unwrap()
            }
        };
        let want = match way {
            Way::Exits | Way::ExitsPolled => (Some((i % 256) as i32), None, false),
            Way::Terminates => (None, Some(libc::SIGTERM), false),
            Way::ReadsStdin => (Some(3), None, false),
            Way::Sleeps => (None, Some(libc::SIGKILL), false),
        };
        assert_eq!(parts(status), want, "{what}");
        assert_eq!(child.id(), None, "{what}: reaped");
    }
}

/// 200 children spawned at once, of five kinds, awaited in a seeded random order: each
/// status is exactly its own, and no child is left.
#[test]
fn two_hundred_children_awaited_in_a_seeded_random_order_each_give_their_status() {
    // Alone in a process, so that no other test's child is counted as left.
    support::run_in_child(
        "two_hundred_children_awaited_in_a_seeded_random_order_each_give_their_status",
        || {
            overlap::block_on(spawn_and_await_in_random_order(0, 200, 0x5eed_0200));
            assert_eq!(children(), "", "children left");
        },
    );
}

/// The same through `SIGCHLD`: one signal may stand for many exits, and each child's
/// wait must look for itself.
#[test]
fn two_hundred_children_awaited_in_a_seeded_random_order_without_pidfds() {
    support::run_in_child(
        "two_hundred_children_awaited_in_a_seeded_random_order_without_pidfds",
        || {
            support::seccomp::deny(&[(libc::SYS_pidfd_open, libc::ENOSYS)]);
            overlap::block_on(spawn_and_await_in_random_order(0, 200, 0x5eed_0201));
            assert_eq!(children(), "", "children left");
        },
    );
}

/// Two runtimes on two threads, started together, each spawning 60 children and
/// awaiting them in its own random order: neither takes the other's statuses.
fn two_runtime_threads_await_their_children() {
    let start = Arc::new(Barrier::new(2));
    let side = |first: usize, seed: u64| {
        let start = start.clone();
        std::thread::spawn(move || {
            let rt = overlap::Runtime::new().unwrap();
            start.wait();
            rt.block_on(spawn_and_await_in_random_order(first, 60, seed));
        })
    };
    let (a, b) = (side(0, 11), side(60, 12));
    a.join().unwrap();
    b.join().unwrap();
    assert_eq!(children(), "", "children left");
}

#[test]
fn children_of_two_runtime_threads_are_each_awaited_with_their_status() {
    support::run_in_child(
        "children_of_two_runtime_threads_are_each_awaited_with_their_status",
        two_runtime_threads_await_their_children,
    );
}

/// The same where exits are seen through `SIGCHLD`, which every child's exit sends to
/// the whole process: each runtime looks at its own children only.
#[test]
fn children_of_two_runtime_threads_are_each_awaited_with_their_status_without_pidfds() {
    support::run_in_child(
        "children_of_two_runtime_threads_are_each_awaited_with_their_status_without_pidfds",
        || {
            support::seccomp::deny(&[(libc::SYS_pidfd_open, libc::ENOSYS)]);
            two_runtime_threads_await_their_children();
        },
    );
}

/// A child reaped (with `kill_on_drop` and `kill_group_on_drop` on), whose pid another
/// child then takes, leading a group of the same id: `kill`, `start_kill`, `send_signal`,
/// `send_signal_to_group` and the drop of the old `Child` reach nothing; the new child
/// ends with its own code.
#[test]
fn signals_to_a_reaped_child_never_reach_the_child_that_took_its_pid() {
    run_in_pid_namespace(
        "signals_to_a_reaped_child_never_reach_the_child_that_took_its_pid",
        || overlap::block_on(pid_taken_after_the_reap()),
    );
}

async fn pid_taken_after_the_reap() {
    let mut old = sh("exit 1")
        .process_group(0)
        .kill_on_drop(true)
        .kill_group_on_drop(true)
        .spawn()
        .unwrap();
    let pid = old.id().unwrap();
    let old_status = old.wait().await.unwrap();
    assert_eq!(old_status.code(), Some(1));
    assert_eq!(old.id(), None);

    next_pid_is(pid);
    let mut new = sh("cat >/dev/null; exit 2")
        .stdin(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    assert_eq!(new.id(), Some(pid), "the pid reused");
    old.kill().await.unwrap();
    old.start_kill().unwrap();
    old.send_signal(libc::SIGTERM).unwrap();
    old.send_signal(0).unwrap();
    // Through the pidfd (Linux 6.9+) the old group, now empty; without it, refused.
    if let Err(e) = old.send_signal_to_group(libc::SIGKILL) {
        assert_eq!(e.kind(), std::io::ErrorKind::Unsupported, "{e}");
    }
    assert_eq!(old.try_wait().unwrap(), Some(old_status));
    assert_eq!(old.exited().await.unwrap(), old_status);
    drop(old);
    settle().await;
    assert_eq!(new.try_wait().unwrap(), None, "the new child was signalled");
    let status = within(HANG, new.wait(), "the new child").await.unwrap();
    assert_eq!(parts(status), (Some(2), None, false));
    assert_eq!(children(), "", "children left");
}
