//! Child processes under faults: spawns that fail leave no fd behind and say why, pipes
//! that break or end early give errors or end of file (never a hang), and children dropped,
//! moved or half-awaited are still reaped.

mod support;

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Stdio;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::process::Command;
use overlap::time::sleep;
use support::{children, exhaust_fds, gone, open_fds, pattern_seeded, poll_once, within, TempDir};

const HANG: Duration = Duration::from_secs(30);

/// A command with all three stdio piped.
fn piped(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Every way a spawn can fail before the program runs gives the kernel's error, and no
/// pipe end (nor pidfd) stays open in the parent.
#[test]
fn failed_spawns_say_why_and_leak_no_fd() {
    support::run_in_child(
        "failed_spawns_say_why_and_leak_no_fd",
        failed_spawns_say_why_and_leak_no_fd_alone,
    );
}

fn failed_spawns_say_why_and_leak_no_fd_alone() {
    let dir = TempDir::new("process-faults");
    let not_exec = dir.join("not-exec");
    std::fs::write(&not_exec, "#!/bin/sh\necho no\n").unwrap();
    std::fs::set_permissions(&not_exec, std::fs::Permissions::from_mode(0o644)).unwrap();
    overlap::block_on(async {
        let before = open_fds();
        let kind = |mut cmd: Command| cmd.spawn().map(drop).unwrap_err();

        let e = kind(piped("/nonexistent/overlap-no-such-program"));
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
        let e = kind(piped("overlap-no-such-program-on-path"));
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
        let e = kind(piped(&not_exec));
        assert_eq!(e.raw_os_error(), Some(libc::EACCES), "{e}");
        let e = kind(piped(dir.path()));
        assert_eq!(e.raw_os_error(), Some(libc::EACCES), "{e}");
        let mut cmd = piped("true");
        cmd.current_dir(dir.join("missing"));
        let e = kind(cmd);
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
        let mut cmd = piped("true");
        // SAFETY: the closure only returns an error made from a number: it allocates
        // nothing and touches no state shared with the parent.
        unsafe {
            cmd.as_std_mut()
                .pre_exec(|| Err(io::Error::from_raw_os_error(libc::EDOM)));
        }
        let e = kind(cmd);
        assert_eq!(e.raw_os_error(), Some(libc::EDOM), "{e}");

        // The same through `output()` and `status()`.
        let e = piped("/nonexistent/x").output().await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
        let e = piped("/nonexistent/x").status().await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
        let e = overlap::process::output(&mut std::process::Command::new("/nonexistent/x"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
        assert_eq!(open_fds(), before, "fds leaked by failed spawns");
    });
}

/// The child closes its stdin at once and lives on; a large write gets `BrokenPipe` (not
/// a hang, not death by `SIGPIPE`), and the child's status is still there.
#[test]
fn writing_to_a_stdin_the_child_closed_is_broken_pipe() {
    support::run_in_child(
        "writing_to_a_stdin_the_child_closed_is_broken_pipe",
        writing_to_a_stdin_the_child_closed_is_broken_pipe_alone,
    );
}

fn writing_to_a_stdin_the_child_closed_is_broken_pipe_alone() {
    overlap::block_on(async {
        let before = open_fds();
        let mut child = Command::new("sh")
            .args(["-c", "exec 0<&-; echo closed; sleep 0.2; exit 4"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut line = [0u8; 7];
        stdout.read_exact(&mut line).await.unwrap();
        assert_eq!(&line, b"closed\n");
        let mut stdin = child.stdin.take().unwrap();
        let e = within(HANG, stdin.write_all(&vec![7u8; 4 << 20]), "write_all")
            .await
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe, "{e}");
        drop(stdin);
        let status = within(HANG, child.wait(), "wait").await.unwrap();
        assert_eq!(status.code(), Some(4));
        drop((stdout, child));
        assert_eq!(open_fds(), before);
    });
}

/// The child exits while its stdout is being read: the reader sees the exact bytes, then
/// end of file, and `wait` then gives the status.
#[test]
fn the_child_exiting_mid_read_gives_eof_then_status() {
    overlap::block_on(async {
        let mut child = Command::new("sh")
            .args(["-c", "printf abc; sleep 0.1; printf def; exit 9"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = Vec::new();
        let mut stdout = child.stdout.take().unwrap();
        within(HANG, stdout.read_to_end(&mut out), "read_to_end")
            .await
            .unwrap();
        assert_eq!(out, b"abcdef");
        assert_eq!(stdout.read(&mut [0u8; 8]).await.unwrap(), 0);
        assert_eq!(
            within(HANG, child.wait(), "wait").await.unwrap().code(),
            Some(9)
        );
    });
}

/// Megabytes on stdout and stderr at once: `output()` and `wait_with_output()` read both
/// together, so neither pipe fills and stalls the child, and every byte arrives.
#[test]
fn huge_stdout_and_stderr_at_once_do_not_deadlock() {
    support::run_in_child(
        "huge_stdout_and_stderr_at_once_do_not_deadlock",
        huge_stdout_and_stderr_at_once_do_not_deadlock_alone,
    );
}

fn huge_stdout_and_stderr_at_once_do_not_deadlock_alone() {
    let dir = TempDir::new("process-faults-huge");
    let (a, b) = (pattern_seeded(3 << 20, 1), pattern_seeded(3 << 20, 2));
    std::fs::write(dir.join("a"), &a).unwrap();
    std::fs::write(dir.join("b"), &b).unwrap();
    let script = "cat a >&2 & cat b; wait";
    overlap::block_on(async {
        let before = open_fds();
        let out = within(
            HANG,
            Command::new("sh")
                .args(["-c", script])
                .current_dir(dir.path())
                .output(),
            "output",
        )
        .await
        .unwrap();
        assert!(out.status.success());
        assert!(out.stdout == b && out.stderr == a, "bytes differ");

        let child = Command::new("sh")
            .args(["-c", script])
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = within(HANG, child.wait_with_output(), "wait_with_output")
            .await
            .unwrap();
        assert!(out.status.success());
        assert!(out.stdout == b && out.stderr == a, "bytes differ");
        assert_eq!(open_fds(), before);
    });
}

/// Dropping the stdout reader while the child keeps writing: the child's next write fails
/// (it dies of `SIGPIPE`, std's default for children), and `wait` returns.
#[test]
fn dropping_stdout_while_the_child_writes_ends_the_child() {
    overlap::block_on(async {
        let mut child = Command::new("yes").stdout(Stdio::piped()).spawn().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut first = [0u8; 4];
        stdout.read_exact(&mut first).await.unwrap();
        assert_eq!(&first, b"y\ny\n");
        drop(stdout);
        let status = within(HANG, child.wait(), "wait").await.unwrap();
        assert_eq!(status.signal(), Some(libc::SIGPIPE));
    });
}

/// Spawns `n` children in a runtime of their own, then drops it: even ones run long and are
/// killed on drop, odd ones exit soon by themselves; two in three are being awaited by a
/// task, the others were dropped inside the runtime (reaped by a background task). Returns
/// their pids.
fn children_of_a_dropped_runtime(n: usize) -> Vec<u32> {
    let rt = overlap::Runtime::new().unwrap();
    let pids = rt.block_on(async {
        let mut pids = Vec::new();
        for i in 0..n {
            let mut child = Command::new("sleep")
                .arg(if i % 2 == 0 { "100" } else { "0.05" })
                .stdout(Stdio::piped())
                .kill_on_drop(i % 2 == 0)
                .spawn()
                .unwrap();
            pids.push(child.id().unwrap());
            if i % 3 != 1 {
                overlap::spawn(async move {
                    let _ = child.wait().await;
                });
            }
        }
        overlap::yield_now().await;
        pids
    });
    drop(rt);
    pids
}

/// Children awaited by tasks (or being reaped in the background) when the whole runtime is
/// dropped: the `kill_on_drop` ones are killed, all are reaped, no fd of theirs stays open.
#[test]
fn kill_on_drop_children_die_with_their_runtime() {
    support::run_in_child(
        "kill_on_drop_children_die_with_their_runtime",
        kill_on_drop_children_die_with_their_runtime_alone,
    );
}

fn kill_on_drop_children_die_with_their_runtime_alone() {
    let before = open_fds();
    let pids = children_of_a_dropped_runtime(6);
    overlap::block_on(async {
        for pid in pids {
            gone(pid, "a child outlived its runtime unreaped").await;
        }
    });
    // The orphan reaper's wake pipe may stay (two fds, process-wide, made once).
    assert!(open_fds() <= before + 2, "{} > {before} + 2", open_fds());
    assert_eq!(children(), "");
}

/// 200 children spawned and dropped at once, half of them killed on drop: all are reaped
/// (none left as a zombie), and their pidfds and pipes are closed.
#[test]
fn two_hundred_dropped_children_are_all_reaped() {
    support::run_in_child(
        "two_hundred_dropped_children_are_all_reaped",
        two_hundred_dropped_children_are_all_reaped_alone,
    );
}

fn two_hundred_dropped_children_are_all_reaped_alone() {
    overlap::block_on(async {
        let before = open_fds();
        let mut pids = Vec::new();
        for i in 0..200 {
            let child = Command::new("sleep")
                .arg(if i % 2 == 0 { "100" } else { "0.05" })
                .stdin(Stdio::piped())
                .kill_on_drop(i % 2 == 0)
                .spawn()
                .unwrap();
            pids.push(child.id().unwrap());
        }
        for pid in pids {
            gone(pid, "a dropped child was not reaped").await;
        }
        within(
            HANG,
            async {
                while open_fds() > before {
                    sleep(Duration::from_millis(10)).await;
                }
            },
            "fds of reaped children stay open",
        )
        .await;
        assert_eq!(children(), "", "children left");
    });
}

/// `wait` dropped half-way, then called again; `try_wait` in between: the status comes
/// once the child exits, the same from each.
#[test]
fn wait_cancelled_then_again_and_try_wait_between() {
    overlap::block_on(async {
        let mut child = Command::new("sh")
            .args(["-c", "sleep 0.2; exit 5"])
            .spawn()
            .unwrap();
        {
            let mut wait = std::pin::pin!(child.wait());
            assert!(poll_once(&mut wait).await.is_pending());
            sleep(Duration::from_millis(20)).await;
            assert!(poll_once(&mut wait).await.is_pending());
        }
        assert!(child.try_wait().unwrap().is_none());
        {
            let wait = child.wait();
            let _ = overlap::time::timeout(Duration::from_millis(20), wait).await;
        }
        assert!(child.try_wait().unwrap().is_none());
        let status = within(HANG, child.wait(), "wait").await.unwrap();
        assert_eq!(status.code(), Some(5));
        assert_eq!(child.try_wait().unwrap().map(|s| s.code()), Some(Some(5)));
        assert_eq!(child.wait().await.unwrap().code(), Some(5));
        assert_eq!(child.id(), None);
    });
}

/// A child spawned by std directly, exiting while overlap waits for its own children
/// through `SIGCHLD`, is still std's to reap: std's `wait` gets its status.
#[test]
fn std_children_are_not_reaped_by_the_sigchld_path() {
    support::run_in_child("std_children_are_not_reaped_by_the_sigchld_path", || {
        support::seccomp::deny(&[(libc::SYS_pidfd_open, libc::ENOSYS)]);
        overlap::block_on(async {
            let mut std_child = std::process::Command::new("sh")
                .args(["-c", "exit 6"])
                .spawn()
                .unwrap();
            let mut ours = Command::new("sh")
                .args(["-c", "sleep 0.2; exit 2"])
                .spawn()
                .unwrap();
            let dropped = Command::new("sleep").arg("0.1").spawn().unwrap();
            drop(dropped);
            let status = within(HANG, ours.wait(), "wait").await.unwrap();
            assert_eq!(status.code(), Some(2));
            sleep(Duration::from_millis(200)).await;
            assert_eq!(std_child.wait().unwrap().code(), Some(6));
        });
    });
}

/// With only a few fds free, spawning a child with three pipes either works or fails with
/// `EMFILE`; it never leaks an fd, nor leaves the child running or a zombie.
#[test]
fn spawns_with_the_fd_table_nearly_full() {
    support::run_in_child(
        "spawns_with_the_fd_table_nearly_full",
        spawns_with_the_fd_table_nearly_full_alone,
    );
}

fn spawns_with_the_fd_table_nearly_full_alone() {
    overlap::block_on(async {
        // Warm up what the runtime makes once (signal pipe, pool, ...).
        let out = piped("true").output().await.unwrap();
        assert!(out.status.success());
        support::set_soft_nofile(open_fds() as u64 + 32);
        let mut hoard = exhaust_fds();
        let mut worked = 0;
        for free in 0..12 {
            let keep = hoard.len() - free;
            hoard.truncate(keep);
            match piped("cat").spawn() {
                Ok(mut child) => {
                    worked += 1;
                    let mut stdin = child.stdin.take().unwrap();
                    stdin.write_all(b"ok").await.unwrap();
                    drop(stdin);
                    let out = within(HANG, child.wait_with_output(), "output").await;
                    let out = out.unwrap();
                    assert_eq!(out.stdout, b"ok");
                }
                Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{free}: {e}"),
            }
            // Every fd freed for the spawn is free again.
            let back = exhaust_fds();
            assert_eq!(back.len(), free, "fds leaked with {free} free");
            hoard.extend(back);
        }
        assert!(worked > 0, "no spawn worked even with 11 free fds");
        drop(hoard);
        assert_eq!(children(), "", "children left");
    });
}

/// Spawning outside a runtime is an error, not a panic, and the child is not left behind.
#[test]
fn spawn_outside_a_runtime_is_an_error() {
    support::run_in_child(
        "spawn_outside_a_runtime_is_an_error",
        spawn_outside_a_runtime_is_an_error_alone,
    );
}

fn spawn_outside_a_runtime_is_an_error_alone() {
    // The child writes a byte here between fork and exec: proof that it was started.
    let (forked, in_child) = support::pipe();
    let before = open_fds();
    let r = std::panic::catch_unwind(|| {
        let mut cmd = Command::new("sleep");
        cmd.arg("100").stdout(Stdio::piped());
        let fd = std::os::fd::AsRawFd::as_raw_fd(&in_child);
        // SAFETY: the hook only calls `write`, which is async-signal-safe, on an fd this
        // process keeps open until after the spawn.
        unsafe {
            cmd.as_std_mut().pre_exec(move || {
                libc::write(fd, b"x".as_ptr().cast(), 1);
                Ok(())
            })
        };
        cmd.spawn().map(drop)
    });
    let e = r.expect("spawn panicked").unwrap_err();
    assert!(e.to_string().contains("outside an overlap runtime"), "{e}");
    assert_eq!(children(), "", "the child was left running");
    assert_eq!(open_fds(), before, "fds leaked by the failed spawn");
    drop(in_child);
    let mut started = Vec::new();
    std::io::Read::read_to_end(&mut std::fs::File::from(forked), &mut started).unwrap();
    assert!(
        started.is_empty(),
        "the program was started although spawn failed"
    );
}

/// Fork failing (`RLIMIT_NPROC` reached, as an unprivileged user) is `EAGAIN` from spawn,
/// with no fd leaked.
#[test]
fn spawn_when_fork_fails() {
    support::run_in_child("spawn_when_fork_fails", || {
        // SAFETY: plain credential and limit syscalls on integers and a valid rlimit; this
        // child test process runs one test thread only.
        unsafe {
            if libc::getuid() == 0 {
                assert_eq!(libc::setgroups(0, std::ptr::null()), 0);
                assert_eq!(libc::setgid(65534), 0);
                assert_eq!(libc::setuid(65534), 0);
                // The uid change made /proc/self root's: take it back.
                assert_eq!(libc::prctl(libc::PR_SET_DUMPABLE, 1), 0);
            }
            let lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            assert_eq!(libc::setrlimit(libc::RLIMIT_NPROC, &lim), 0);
        }
        overlap::block_on(async {
            let before = open_fds();
            let e = piped("true").spawn().map(drop).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EAGAIN), "{e}");
            let e = piped("true").output().await.unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EAGAIN), "{e}");
            let mut cmd = piped("true");
            // SAFETY: the closure does nothing (it forces std's fork path).
            unsafe { cmd.as_std_mut().pre_exec(|| Ok(())) };
            let e = cmd.spawn().map(drop).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EAGAIN), "{e}");
            assert_eq!(open_fds(), before);
        });
    });
}

/// A `Child` spawned in one runtime, still alive, and awaited in another: the exit is seen
/// (the runtime that polls watches it), whether the child exits before or during the wait.
#[test]
fn a_child_awaited_in_another_live_runtime() {
    let a = overlap::Runtime::new().unwrap();
    let b = overlap::Runtime::new().unwrap();
    let mut early = a.block_on(async { Command::new("true").spawn().unwrap() });
    let mut late = a.block_on(async {
        Command::new("sh")
            .args(["-c", "sleep 0.2; exit 8"])
            .spawn()
            .unwrap()
    });
    let (e, l) = b.block_on(async {
        let e = within(HANG, early.wait(), "early wait").await.unwrap();
        let l = within(HANG, late.wait(), "late wait").await.unwrap();
        (e, l)
    });
    assert!(e.success());
    assert_eq!(l.code(), Some(8));
    drop(a);
}

/// A child left running by a task that the runtime's drop cancels (no `kill_on_drop`) is
/// reaped when it exits later.
#[test]
fn a_child_of_a_task_cancelled_by_runtime_drop_is_reaped_later() {
    let rt = overlap::Runtime::new().unwrap();
    let pid = rt.block_on(async {
        let mut child = Command::new("sleep").arg("0.2").spawn().unwrap();
        let pid = child.id().unwrap();
        overlap::spawn(async move {
            let _ = child.wait().await;
        });
        overlap::yield_now().await;
        pid
    });
    drop(rt);
    overlap::block_on(gone(pid, "not reaped after its runtime was dropped"));
}

/// The same faults with `pidfd_open` missing, exits seen through `SIGCHLD`: a child moved to
/// another live runtime, children dropped in bulk, and `kill_on_drop` children whose
/// runtime is dropped are all waited for and reaped.
#[test]
fn without_pidfd_moved_and_dropped_children_are_reaped() {
    support::run_in_child(
        "without_pidfd_moved_and_dropped_children_are_reaped",
        || {
            support::seccomp::deny(&[(libc::SYS_pidfd_open, libc::ENOSYS)]);
            a_child_awaited_in_another_live_runtime();
            let pids = children_of_a_dropped_runtime(60);
            overlap::block_on(async {
                for pid in pids {
                    gone(pid, "not reaped without pidfd").await;
                }
            });
            assert_eq!(children(), "");
        },
    );
}

/// Spawning with the fd table nearly full when exits are watched through `SIGCHLD`.
#[test]
fn without_pidfd_spawns_with_the_fd_table_nearly_full() {
    support::run_in_child("without_pidfd_spawns_with_the_fd_table_nearly_full", || {
        support::seccomp::deny(&[(libc::SYS_pidfd_open, libc::ENOSYS)]);
        spawns_with_the_fd_table_nearly_full_alone();
    });
}

/// Children orphaned (their runtime dropped) while no fd is free: the orphan reaper can
/// make neither pidfds nor its wake pipe, and still reaps them all by looking.
#[test]
fn orphans_are_reaped_with_no_fd_free() {
    support::run_in_child("orphans_are_reaped_with_no_fd_free", || {
        let rt = overlap::Runtime::new().unwrap();
        let (pids, hoard) = rt.block_on(async {
            let mut pids = Vec::new();
            let mut children = Vec::new();
            for i in 0..10 {
                let child = Command::new("sleep")
                    .arg(if i % 2 == 0 { "100" } else { "0.05" })
                    .kill_on_drop(i % 2 == 0)
                    .spawn()
                    .unwrap();
                pids.push(child.id().unwrap());
                children.push(child);
            }
            support::set_soft_nofile(open_fds() as u64 + 16);
            let hoard = exhaust_fds();
            drop(children);
            (pids, hoard)
        });
        drop(rt);
        let deadline = std::time::Instant::now() + HANG;
        for pid in pids {
            let stat = format!("/proc/{pid}/stat");
            while std::fs::metadata(&stat).is_ok() {
                assert!(std::time::Instant::now() < deadline, "{pid} not reaped");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        drop(hoard);
    });
}
