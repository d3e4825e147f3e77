//! The runtime's own syscalls failing: `epoll_create1` (out of fds or memory) at
//! `Runtime::new`, `epoll_ctl` with `ENOSPC` (the `max_user_watches` limit), the signal
//! machinery's `pipe2`, `fcntl(F_DUPFD_CLOEXEC)` and `rt_sigaction`, `pidfd_open` out of
//! fds, and the calls the runtime may do without (`prctl` timer slack, `sched_getaffinity`).
//! Each failure is an `io::Error` with the kernel's errno (or goes unnoticed where the call
//! is optional); nothing panics, hangs or leaks an fd, and the runtime goes on serving.
//! Each test installs a seccomp filter in a child process of its own.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, UdpSocket, UnixStream};
use overlap::signal::{signal, SignalKind};
use support::seccomp::{deny, rule};
use support::{children, expect_errno, open_fds, run_in_child, within};

const HANG: Duration = Duration::from_secs(10);

/// The runtime still runs tasks, timers and I/O: a spawned task, a short sleep, and bytes
/// through a fresh socket pair.
async fn still_serves() {
    let task = overlap::spawn(async { 7 });
    assert_eq!(within(HANG, task, "a task").await.unwrap(), 7);
    let start = Instant::now();
    within(
        HANG,
        overlap::time::sleep(Duration::from_millis(3)),
        "sleep",
    )
    .await;
    assert!(
        start.elapsed() >= Duration::from_millis(3),
        "a sleep ended early"
    );
    let (mut a, mut b) = UnixStream::pair().unwrap();
    a.write_all(b"alive").await.unwrap();
    let mut buf = [0; 5];
    within(HANG, b.read_exact(&mut buf), "read").await.unwrap();
    assert_eq!(&buf, b"alive");
}

/// The handler `signum` has now, read with `sigaction` (`SIG_DFL` is 0).
fn disposition(signum: i32) -> libc::sighandler_t {
    // SAFETY: an all-zero sigaction is a valid buffer for the old action.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: no new action is passed; `old` is writable.
    let rc = unsafe { libc::sigaction(signum, std::ptr::null(), &mut old) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    old.sa_sigaction
}

fn runtime_without_epoll(errno: i32) {
    let before = open_fds();
    deny(&[(libc::SYS_epoll_create1, errno)]);
    expect_errno("Runtime::new", overlap::Runtime::new(), errno);
    expect_errno("Builder::build", overlap::Runtime::builder().build(), errno);
    assert_eq!(open_fds(), before, "an fd leaked");
    let panic = std::panic::catch_unwind(|| overlap::block_on(async {})).unwrap_err();
    let msg = support::panic_message(panic);
    assert!(msg.contains("cannot create a runtime"), "{msg}");
}

#[test]
fn runtime_creation_fails_without_epoll_fds() {
    run_in_child("runtime_creation_fails_without_epoll_fds", || {
        runtime_without_epoll(libc::EMFILE)
    });
}

#[test]
fn runtime_creation_fails_without_epoll_memory() {
    run_in_child("runtime_creation_fails_without_epoll_memory", || {
        runtime_without_epoll(libc::ENOMEM)
    });
}

/// The eventfd made but not watched (`epoll_ctl` out of memory): `Runtime::new` fails and
/// closes both fds.
#[test]
fn runtime_creation_fails_when_its_eventfd_cannot_be_watched() {
    run_in_child(
        "runtime_creation_fails_when_its_eventfd_cannot_be_watched",
        || {
            let before = open_fds();
            deny(&[(libc::SYS_epoll_ctl, libc::ENOMEM)]);
            expect_errno("Runtime::new", overlap::Runtime::new(), libc::ENOMEM);
            assert_eq!(open_fds(), before, "an fd leaked");
        },
    );
}

/// Out of fds for a while (`RLIMIT_NOFILE`), then not: a runtime, a pipe and a listener
/// that could not be made can be made once fds are freed, and a `signal()` that failed at
/// its self-pipe, then at its reader's copy of it, works on the third try and hears the
/// signal (nothing half-made stays behind to say "already set up").
#[test]
fn out_of_fds_then_recovered() {
    run_in_child("out_of_fds_then_recovered", || {
        support::set_soft_nofile(256);
        let mut hoard = support::exhaust_fds();
        expect_errno("Runtime::new", overlap::Runtime::new(), libc::EMFILE);
        hoard.truncate(hoard.len() - 2);
        let rt = overlap::Runtime::new().unwrap();
        rt.block_on(async {
            expect_errno("pipe", overlap::pipe::pipe(), libc::EMFILE);
            let bound = TcpListener::bind("127.0.0.1:0").await;
            expect_errno("bind", bound, libc::EMFILE);
            let res = signal(SignalKind::user_defined1());
            expect_errno("signal without a pipe", res, libc::EMFILE);
            hoard.truncate(hoard.len() - 2);
            let res = signal(SignalKind::user_defined1());
            expect_errno("signal without a reader", res, libc::EMFILE);
            assert_eq!(disposition(libc::SIGUSR1), libc::SIG_DFL);
            hoard.truncate(hoard.len() - 8);
            let mut sig = signal(SignalKind::user_defined1()).unwrap();
            // SAFETY: raise takes an integer; SIGUSR1 is handled now.
            assert_eq!(unsafe { libc::raise(libc::SIGUSR1) }, 0);
            within(HANG, sig.recv(), "the signal was not heard").await;
            let (_tx, _rx) = overlap::pipe::pipe().unwrap();
            drop(hoard);
            let _listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            still_serves().await;
        });
    });
}

/// `ENOSPC` is what `epoll_ctl` really says at the `max_user_watches` limit.
#[test]
fn registration_over_the_watch_limit() {
    run_in_child("registration_over_the_watch_limit", || {
        overlap::block_on(async {
            let (mut a, mut b) = UnixStream::pair().unwrap();
            let before = open_fds();
            deny(&[(libc::SYS_epoll_ctl, libc::ENOSPC)]);
            let bound = TcpListener::bind("127.0.0.1:0").await;
            expect_errno("TcpListener::bind", bound, libc::ENOSPC);
            let bound = UdpSocket::bind("127.0.0.1:0").await;
            expect_errno("UdpSocket::bind", bound, libc::ENOSPC);
            expect_errno("pipe", overlap::pipe::pipe(), libc::ENOSPC);
            assert_eq!(open_fds(), before, "an fd leaked");
            a.write_all(b"x").await.unwrap();
            let mut buf = [0; 1];
            within(HANG, b.read_exact(&mut buf), "read").await.unwrap();
        });
    });
}

/// `signal()` whose self-pipe cannot be made: the error, the signal's disposition left
/// alone (a handler with nobody to tell would swallow the signal), and no fd kept.
#[test]
fn signal_without_a_self_pipe() {
    run_in_child("signal_without_a_self_pipe", || {
        overlap::block_on(async {
            let before = open_fds();
            deny(&[(libc::SYS_pipe2, libc::ENFILE)]);
            let res = signal(SignalKind::user_defined1());
            expect_errno("signal", res, libc::ENFILE);
            assert_eq!(disposition(libc::SIGUSR1), libc::SIG_DFL);
            assert_eq!(open_fds(), before, "an fd leaked");
            still_serves().await;
        });
    });
}

/// `signal()` whose reader cannot get its copy of the self-pipe (`F_DUPFD_CLOEXEC` out of
/// fds): the error, and again no handler installed.
#[test]
fn signal_without_a_reader_fd() {
    run_in_child("signal_without_a_reader_fd", || {
        overlap::block_on(async {
            deny(&[(libc::SYS_fcntl, libc::EMFILE)]);
            let res = signal(SignalKind::user_defined1());
            expect_errno("signal", res, libc::EMFILE);
            assert_eq!(disposition(libc::SIGUSR1), libc::SIG_DFL);
            // A second try fails the same way (no half-made state that says "started").
            let res = signal(SignalKind::user_defined2());
            expect_errno("signal again", res, libc::EMFILE);
            still_serves().await;
        });
    });
}

/// `signal()` whose `sigaction` fails: the kernel's error, and the runtime (and its
/// reader, already started) carry on.
#[test]
fn signal_without_sigaction() {
    run_in_child("signal_without_sigaction", || {
        overlap::block_on(async {
            deny(&[(libc::SYS_rt_sigaction, libc::EFAULT)]);
            let res = signal(SignalKind::hangup());
            expect_errno("signal", res, libc::EFAULT);
            still_serves().await;
        });
    });
}

/// A child whose `pidfd_open` fails for want of fds: `spawn` fails with `EMFILE`, and the
/// child it started is killed and reaped (no zombie, no pipe left open).
#[test]
fn spawn_without_a_pidfd() {
    run_in_child("spawn_without_a_pidfd", || {
        overlap::block_on(async {
            let before = open_fds();
            support::seccomp::install(&[rule(libc::SYS_pidfd_open, libc::EMFILE)]);
            let mut cmd = Command::new("sleep");
            cmd.arg("30").stdout(Stdio::piped()).stdin(Stdio::piped());
            expect_errno("spawn", overlap::process::spawn(&mut cmd), libc::EMFILE);
            assert_eq!(open_fds(), before, "an fd leaked");
            // A zombie is still listed as a child; a reaped one is gone.
            let reaped = async {
                while !children().is_empty() {
                    overlap::time::sleep(Duration::from_millis(5)).await;
                }
            };
            within(HANG, reaped, "the child was left unreaped").await;
            still_serves().await;
        });
    });
}

/// No `PR_SET_TIMERSLACK` (a sandbox denies `prctl`): timers still fire, never early.
#[test]
fn timers_without_timer_slack() {
    run_in_child("timers_without_timer_slack", || {
        deny(&[(libc::SYS_prctl, libc::EPERM)]);
        overlap::block_on(async {
            let _registered = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            for us in [200, 1_000, 3_000] {
                let d = Duration::from_micros(us);
                let start = Instant::now();
                within(HANG, overlap::time::sleep(d), "sleep").await;
                assert!(start.elapsed() >= d, "a {d:?} sleep ended early");
            }
            still_serves().await;
        });
    });
}

/// No `sched_getaffinity`: the runtime starts all the same, and wakes from other threads
/// (whose spin-or-sleep choice looks at the CPU count) still arrive.
#[test]
fn runtime_without_cpu_affinity() {
    run_in_child("runtime_without_cpu_affinity", || {
        deny(&[(libc::SYS_sched_getaffinity, libc::EPERM)]);
        let rt = overlap::Runtime::new().unwrap();
        rt.block_on(async {
            let handle = overlap::runtime::Handle::current();
            for i in 0..50u32 {
                let h = handle.clone();
                let remote = std::thread::spawn(move || h.spawn(async move { i }))
                    .join()
                    .unwrap();
                assert_eq!(within(HANG, remote, "remote spawn").await.unwrap(), i);
            }
            still_serves().await;
        });
    });
}
