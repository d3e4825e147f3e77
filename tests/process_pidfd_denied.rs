//! Children when `pidfd_open` is denied: by an old kernel (`ENOSYS`) or by a seccomp filter
//! (`EPERM`, as container runtimes and systemd's `SystemCallFilter` answer). Their exits are
//! then noticed through `SIGCHLD`, and spawning works as before. Each test installs the
//! filter in a child process of its own.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

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
            // A real-time hang guard: on a paused clock, `within`'s sleep would be jumped to.
            std::thread::spawn(|| {
                std::thread::sleep(HANG);
                eprintln!("the wait hung");
                std::process::exit(1);
            });
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
