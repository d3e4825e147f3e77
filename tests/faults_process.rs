//! Child processes when the process syscalls fail: `kill` refused (`EPERM`, an LSM or a
//! child that changed its credentials), `wait4` answering `ECHILD` (someone else reaped the
//! child: `SIGCHLD` ignored, a stray `waitpid(-1)`), with a pidfd and with the `SIGCHLD`
//! fallback, children the kernel reaped (which must get no `kill`: their pid may be
//! another process's), and the fork itself failing (`clone3`/`clone`/`vfork` with `EAGAIN`
//! at the process limit, `ENOMEM`). Each is an `io::Error` with the errno, at once: no wait
//! hangs, no fd is left open, and the runtime goes on serving. Each test installs a seccomp
//! filter in a child process of its own.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use overlap::process::{output, spawn};
use support::seccomp::{install, rule, rule_arg0};
use support::{
    a_new_pair_still_serves, children, expect_errno, open_fds, run_in_child, run_in_child_blocking,
    within,
};

const HANG: Duration = Duration::from_secs(10);

/// `kill` refused for one child: `start_kill` and `kill` fail with `EPERM` at once (`kill`
/// does not go on to wait for an exit that was never asked for), and the child can still
/// be waited for when it ends by itself.
#[test]
fn kill_refused() {
    run_in_child("kill_refused", || {
        overlap::block_on(async {
            let mut child = spawn(Command::new("sleep").arg("0.3")).unwrap();
            let pid = child.id().unwrap();
            // An LSM refuses the signal whichever way it is sent: through the pidfd too.
            install(&[
                rule(libc::SYS_pidfd_send_signal, libc::EPERM),
                rule_arg0(libc::SYS_kill, pid, libc::EPERM),
            ]);
            expect_errno("start_kill", child.start_kill(), libc::EPERM);
            let res = within(HANG, child.kill(), "kill").await;
            expect_errno("kill", res, libc::EPERM);
            let status = within(HANG, child.wait(), "wait").await.unwrap();
            assert!(status.success(), "{status}");
            a_new_pair_still_serves().await;
        });
    });
}

/// `wait4` saying `ECHILD`, with the exit watched through a pidfd or, `pidfd_open` denied,
/// through `SIGCHLD`: `wait`, `try_wait` and `output` fail with `ECHILD` instead of
/// waiting for ever, and a dropped `Child` is not waited for in a loop.
fn reaped_elsewhere(pidfd: bool) {
    let mut rules = vec![
        rule(libc::SYS_wait4, libc::ECHILD),
        rule(libc::SYS_waitid, libc::ECHILD),
    ];
    if !pidfd {
        rules.push(rule(libc::SYS_pidfd_open, libc::ENOSYS));
    }
    overlap::block_on(async {
        install(&rules);
        let mut child = spawn(Command::new("true").stdout(Stdio::null())).unwrap();
        expect_errno("try_wait", child.try_wait(), libc::ECHILD);
        let res = within(HANG, child.wait(), "wait").await;
        expect_errno("wait", res, libc::ECHILD);
        let res = within(HANG, output(&mut Command::new("true")), "output").await;
        expect_errno("output", res, libc::ECHILD);
        let dropped = spawn(Command::new("sleep").arg("0.05")).unwrap();
        drop(dropped);
        // Let the background reaper meet the error a few times; it must give up, not spin.
        let before = overlap::metrics();
        overlap::time::sleep(Duration::from_millis(300)).await;
        let polls = overlap::metrics().task_polls - before.task_polls;
        assert!(
            polls < 1_000,
            "{polls} task polls in 300 ms: something spins"
        );
        a_new_pair_still_serves().await;
    });
}

#[test]
fn reaped_elsewhere_with_a_pidfd() {
    run_in_child("reaped_elsewhere_with_a_pidfd", || reaped_elsewhere(true));
}

#[test]
fn reaped_elsewhere_with_sigchld() {
    run_in_child("reaped_elsewhere_with_sigchld", || reaped_elsewhere(false));
}

/// A process that ignores `SIGCHLD` (set so by a parent: the disposition survives `exec`)
/// has its children reaped by the kernel, exit status and all: `wait4` says `ECHILD` (or
/// `pidfd_open` `ESRCH`, for a child gone before `spawn` could watch it). `wait` and
/// `output` report that error once the child is gone, never wait for ever, and the dropped
/// `Child`s leave nothing behind.
#[test]
fn sigchld_ignored() {
    run_in_child("sigchld_ignored", || {
        ignore_sigchld();
        overlap::block_on(async {
            let before = open_fds();
            for _ in 0..20 {
                let res = async {
                    let mut child = spawn(Command::new("sh").arg("-c").arg("exit 3"))?;
                    child.wait().await
                };
                expect_reaped_error("wait", within(HANG, res, "wait").await);
                let mut cmd = Command::new("echo");
                let res = within(HANG, output(cmd.arg("hi")), "output").await;
                expect_reaped_error("output", res);
            }
            // The dropped `Child`s' background reaping has met `ECHILD` by now.
            support::settle().await;
            overlap::time::sleep(Duration::from_millis(100)).await;
            // No orphan reaper (and its wake pipe) for children that are nobody's any more.
            assert_eq!(open_fds(), before, "an fd leaked");
            a_new_pair_still_serves().await;
        });
    });
}

/// Children the kernel reaped (`SIGCHLD` ignored): their pids are free for other processes
/// by now, so no `kill` may be sent to them. `start_kill` and `kill` say `ECHILD`, and a
/// `Child` with `kill_on_drop` is dropped without a signal (nor handed to the orphan
/// reaper).
#[test]
fn no_kill_for_a_child_reaped_elsewhere() {
    run_in_child("no_kill_for_a_child_reaped_elsewhere", || {
        ignore_sigchld();
        overlap::block_on(async {
            let mut cmd = Command::new("sleep");
            cmd.arg("0.2");
            let mut killed = spawn(&mut cmd).unwrap();
            let mut dropped = spawn(&mut cmd).unwrap();
            dropped.kill_on_drop(true);
            let pids = [killed.id().unwrap(), dropped.id().unwrap()];
            for pid in pids {
                support::gone(pid, "the kernel did not reap the child").await;
            }
            install(&[
                support::seccomp::trap_arg0(libc::SYS_kill, pids[0]),
                support::seccomp::trap_arg0(libc::SYS_kill, pids[1]),
                // Nor through a pidfd.
                support::seccomp::trap(libc::SYS_pidfd_send_signal),
            ]);
            expect_errno("start_kill", killed.start_kill(), libc::ECHILD);
            let res = within(HANG, killed.kill(), "kill").await;
            expect_errno("kill", res, libc::ECHILD);
            drop(dropped);
            support::settle().await;
            // The same for a `Command::output` future dropped before its first poll.
            let mut cmd = overlap::process::Command::new("sleep");
            let unpolled = cmd.arg("0.2").kill_on_drop(true).output();
            let pid: u32 = children().parse().unwrap();
            support::gone(pid, "the kernel did not reap the child").await;
            install(&[
                support::seccomp::trap_arg0(libc::SYS_kill, pid),
                support::seccomp::trap(libc::SYS_pidfd_send_signal),
            ]);
            drop(unpolled);
            assert_eq!(support::seccomp::trapped(), 0, "kill sent to a reaped pid");
        });
    });
}

/// A spawn that fails after the fork (no pidfd: out of fds) for a child that is no longer
/// ours (`wait4` says `ECHILD`): the error, and no `kill` sent to its pid, which may be
/// another process's by now.
#[test]
fn failed_spawn_sends_no_kill_to_a_child_reaped_elsewhere() {
    run_in_child(
        "failed_spawn_sends_no_kill_to_a_child_reaped_elsewhere",
        || {
            overlap::block_on(async {
                install(&[
                    rule(libc::SYS_pidfd_open, libc::EMFILE),
                    rule(libc::SYS_wait4, libc::ECHILD),
                    support::seccomp::trap(libc::SYS_kill),
                    support::seccomp::trap(libc::SYS_pidfd_send_signal),
                ]);
                let mut cmd = Command::new("sleep");
                expect_errno("spawn", spawn(cmd.arg("0.1")), libc::EMFILE);
                assert_eq!(support::seccomp::trapped(), 0, "kill sent to a reaped pid");
            });
        },
    );
}

/// Without `pidfd_open` (`ENOSYS`: a kernel before 5.3) a child's exit is noticed through
/// `SIGCHLD`, which never comes in a process that starts with it blocked in every thread (a
/// mask its parent left across `exec`) or whose handler other code replaced: `wait` still
/// ends, with the status, instead of waiting for ever.
#[test]
fn waits_without_pidfd_or_sigchld() {
    run_in_child_blocking("waits_without_pidfd_or_sigchld", &[libc::SIGCHLD], || {
        install(&[rule(libc::SYS_pidfd_open, libc::ENOSYS)]);
        overlap::block_on(async {
            let exits = |code: i32| {
                let mut cmd = Command::new("sh");
                cmd.arg("-c").arg(format!("sleep 0.1; exit {code}"));
                spawn(&mut cmd).unwrap()
            };
            let mut child = exits(4);
            let status = within(HANG, child.wait(), "wait").await.unwrap();
            assert_eq!(status.code(), Some(4));
            // Unblocked, but the handler replaced: the same.
            let mut child = exits(5);
            // SAFETY: a standard disposition; no handler code of ours runs.
            let ours = unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
            assert_ne!(ours, libc::SIG_ERR);
            unblock_sigchld();
            let status = within(HANG, child.wait(), "wait").await.unwrap();
            assert_eq!(status.code(), Some(5));
            let out = within(HANG, output(Command::new("true").arg("x")), "output").await;
            assert!(out.unwrap().status.success());
        });
    });
}

/// Unblocks `SIGCHLD` in this thread.
fn unblock_sigchld() {
    // SAFETY: an all-zero sigset_t is a valid value to fill.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t, and is only read by pthread_sigmask.
    unsafe {
        assert_eq!(libc::sigaddset(&mut set, libc::SIGCHLD), 0);
        assert_eq!(
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()),
            0
        );
    }
}

/// Makes this process ignore `SIGCHLD`: the kernel then reaps its children itself.
fn ignore_sigchld() {
    // SAFETY: sets a standard disposition; no handler code of ours runs.
    let old = unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
    assert_ne!(old, libc::SIG_ERR);
}

/// The error of a child the kernel reaped itself: `ECHILD` from `wait4`, or `ESRCH` from
/// `pidfd_open` when it was gone before `spawn` could watch it.
fn expect_reaped_error<T: std::fmt::Debug>(what: &str, res: std::io::Result<T>) {
    let err = res.expect_err(what);
    let code = err.raw_os_error();
    assert!(
        code == Some(libc::ECHILD) || code == Some(libc::ESRCH),
        "{what}: {err:?}"
    );
}

/// The fork failing (`EAGAIN` at `RLIMIT_NPROC`, `ENOMEM`): `spawn` and `output` fail with
/// the kernel's error, and the pipes made for the child are closed.
fn fork_fails(errno: i32) {
    overlap::block_on(async {
        // The pool's thread (for nothing here) and the signal reader exist before the filter
        // also stops threads from starting.
        let before = open_fds();
        install(&[
            rule(libc::SYS_clone3, errno),
            rule(libc::SYS_clone, errno),
            rule(libc::SYS_vfork, errno),
            rule(libc::SYS_fork, errno),
        ]);
        let mut cmd = Command::new("true");
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        expect_errno("spawn", spawn(&mut cmd), errno);
        let res = within(HANG, output(&mut Command::new("true")), "output").await;
        expect_errno("output", res, errno);
        assert_eq!(open_fds(), before, "an fd leaked");
        a_new_pair_still_serves().await;
    });
}

#[test]
fn fork_at_the_process_limit() {
    run_in_child("fork_at_the_process_limit", || fork_fails(libc::EAGAIN));
}

#[test]
fn fork_out_of_memory() {
    run_in_child("fork_out_of_memory", || fork_fails(libc::ENOMEM));
}
