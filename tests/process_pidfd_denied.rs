//! Children when `pidfd_open` is denied: by an old kernel (`ENOSYS`) or by a seccomp filter
//! (`EPERM`, as container runtimes and systemd's `SystemCallFilter` answer). Their exits are
//! then noticed through `SIGCHLD`, and spawning works as before. Killing a child goes
//! through its pidfd (`kill(pid)` could hit a recycled pid), and through `kill` where
//! `pidfd_send_signal` is denied. Each test installs the filter in a child process of its
//! own.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use std::os::unix::process::ExitStatusExt;

use overlap::process::{output, spawn};
use support::{run_in_child, within};

const HANG: Duration = Duration::from_secs(30);

/// Makes `pidfd_open` fail with `errno` for this process from now on.
fn deny_pidfd_open(errno: i32) {
    support::seccomp::deny(&[(libc::SYS_pidfd_open, errno)]);
}

fn children_work() {
    overlap::block_on(async {
        let out = within(
            HANG,
            output(Command::new("sh").arg("-c").arg("echo hi; exit 3")),
            "output",
        )
        .await
        .unwrap();
        assert_eq!(out.stdout, b"hi\n");
        assert_eq!(out.status.code(), Some(3));
        let mut children: Vec<_> = (0..20)
            .map(|_| spawn(Command::new("sleep").arg("0.1").stdout(Stdio::null())).unwrap())
            .collect();
        let waits = futures_util::future::join_all(children.iter_mut().map(|c| c.wait()));
        for status in within(HANG, waits, "waits").await {
            assert!(status.unwrap().success());
        }
    });
}

#[test]
fn pidfd_open_missing() {
    run_in_child("pidfd_open_missing", || {
        deny_pidfd_open(libc::ENOSYS);
        children_work();
    });
}

#[test]
fn pidfd_open_denied_by_seccomp() {
    run_in_child("pidfd_open_denied_by_seccomp", || {
        deny_pidfd_open(libc::EPERM);
        children_work();
    });
}

/// A child watched through `SIGCHLD` follows the rule a pidfd-watched one does: its wait
/// polled outside any runtime (the one that spawned it dropped) fails with an `Other` error,
/// where it panicked (its signal listener, or its fallback ticks' timer, polled there); in
/// the next runtime the wait goes on and reaps it.
#[test]
fn a_wait_through_sigchld_outside_any_runtime_is_an_error() {
    run_in_child(
        "a_wait_through_sigchld_outside_any_runtime_is_an_error",
        || {
            deny_pidfd_open(libc::ENOSYS);
            let first = overlap::Runtime::new().unwrap();
            let mut child = first
                .block_on(async { spawn(Command::new("sleep").arg("0.1").stdout(Stdio::null())) })
                .unwrap();
            drop(first);
            let outside = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                support::polled(child.wait()).poll()
            }));
            match outside {
                Ok(std::task::Poll::Ready(Err(e))) => {
                    assert_eq!(e.kind(), std::io::ErrorKind::Other, "{e}");
                    assert!(e.to_string().contains("outside"), "{e}");
                }
                Ok(other) => panic!("outside any runtime: {other:?}"),
                Err(p) => panic!("it panicked: {}", support::panic_message(p)),
            }
            let status = overlap::block_on(within(HANG, child.wait(), "the wait in a new runtime"));
            assert!(status.unwrap().success());
        },
    );
}

/// On a paused clock, a wait through `SIGCHLD` must not spin: its fallback ticks (for a
/// `SIGCHLD` that never comes) were the idle runtime's next deadline over and over, so each
/// turn jumped the clock 100 ms and fired a timer, a busy loop that ran the paused clock
/// thousands of seconds ahead while the child ran for a fraction of one.
#[test]
fn a_wait_on_a_paused_clock_does_not_spin_through_the_fallback_ticks() {
    run_in_child(
        "a_wait_on_a_paused_clock_does_not_spin_through_the_fallback_ticks",
        || {
            deny_pidfd_open(libc::ENOSYS);
            support::exit_if_still_running_after(HANG, "the wait hung");
            let rt = overlap::Runtime::builder()
                .start_paused(true)
                .build()
                .unwrap();
            rt.block_on(async {
                let start = overlap::time::Instant::now();
                let mut child =
                    spawn(Command::new("sleep").arg("0.3").stdout(Stdio::null())).unwrap();
                let status = child.wait().await.unwrap();
                assert!(status.success());
                let fired = overlap::metrics().timers_fired;
                // One tick may fire (it was due before the wait settled on `SIGCHLD` alone).
                assert!(fired <= 2, "{fired} timers fired while one child ran");
                let ran_ahead = start.elapsed();
                assert!(
                    ran_ahead < Duration::from_secs(10),
                    "the paused clock ran {ran_ahead:?} ahead"
                );
            });
        },
    );
}

/// Kills children four ways (`start_kill`, `kill`, `kill_on_drop`, and `kill_on_drop` on an
/// unpolled `status` future dropped outside a runtime) and sees each die of `SIGKILL`, the
/// dropped ones reaped in the background; and one of `SIGTERM` sent with `send_signal`.
fn kills_work() {
    overlap::block_on(async {
        // No stdio of ours: a sleeper left alive by a failure must not hold the test's output.
        let sleeper = || {
            let mut cmd = Command::new("sleep");
            cmd.arg("100").stdout(Stdio::null()).stderr(Stdio::null());
            spawn(&mut cmd).unwrap()
        };
        let mut child = sleeper();
        child.start_kill().unwrap();
        let status = within(HANG, child.wait(), "wait").await.unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        let mut child = sleeper();
        child.send_signal(libc::SIGTERM).unwrap();
        let status = within(HANG, child.wait(), "wait").await.unwrap();
        assert_eq!(status.signal(), Some(libc::SIGTERM));
        let mut child = sleeper();
        within(HANG, child.kill(), "kill").await.unwrap();
        assert_eq!(
            child.try_wait().unwrap().unwrap().signal(),
            Some(libc::SIGKILL)
        );
        let mut child = sleeper();
        child.kill_on_drop(true);
        let pid = child.id().unwrap().to_string();
        drop(child);
        let reaped = async {
            while support::children().split_whitespace().any(|p| p == pid) {
                overlap::time::sleep(Duration::from_millis(10)).await;
            }
        };
        within(HANG, reaped, "the dropped child's end").await;
    });
    // A `status` future dropped unpolled outside any runtime: the orphan reaper waits.
    let status = overlap::process::Command::new("sleep")
        .arg("100")
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .status();
    assert!(!support::children().is_empty());
    drop(status);
    let start = std::time::Instant::now();
    while !support::children().is_empty() {
        assert!(start.elapsed() < HANG, "the unpolled child was not killed");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// With `kill` denied, children are still killed: the signal goes through the pidfd.
#[test]
fn kill_denied_kills_through_the_pidfd() {
    run_in_child("kill_denied_kills_through_the_pidfd", || {
        support::seccomp::deny(&[(libc::SYS_kill, libc::EPERM)]);
        kills_work();
    });
}

/// With `pidfd_send_signal` denied (a seccomp profile older than the syscall), children are
/// killed with `kill`, as with no pidfd at all.
#[test]
fn pidfd_send_signal_denied_kills_with_kill() {
    run_in_child("pidfd_send_signal_denied_kills_with_kill", || {
        support::seccomp::deny(&[(libc::SYS_pidfd_send_signal, libc::EPERM)]);
        kills_work();
    });
}

/// With neither pidfd syscall (a kernel before 5.1), children are killed with `kill`.
#[test]
fn pidfd_syscalls_missing_kills_with_kill() {
    run_in_child("pidfd_syscalls_missing_kills_with_kill", || {
        support::seccomp::deny(&[
            (libc::SYS_pidfd_send_signal, libc::ENOSYS),
            (libc::SYS_pidfd_open, libc::ENOSYS),
        ]);
        kills_work();
    });
}
