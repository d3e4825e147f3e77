//! An adversarial review of what overlap's signal handler does to the rest of the process:
//! the `errno` it leaves behind and the calls it never blocks in when its self-pipe is full,
//! the system calls an earlier handler's signal interrupted (or restarted), `SIGPIPE` heard
//! from pipe writes but not from socket writes, and hundreds of listeners of one signal.
//!
//! Signal dispositions and masks are process-wide, so each test runs in a child process of
//! its own, and sends signals only to that process (or one of its threads).

mod support;

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use overlap::signal::{signal, Signal, SignalKind};
use overlap::{block_on, spawn};
use support::{polled, run_in_child, settle, within};

/// Only a lost wakeup (or a call that never returns) gets near this.
const HANG: Duration = Duration::from_secs(30);

/// Sends `signum` to this thread; unblocked, its handler has run when this returns.
fn raise_here(signum: i32) {
    // SAFETY: raise takes no pointers.
    assert_eq!(unsafe { libc::raise(signum) }, 0);
}

/// This thread's `errno`.
fn errno() -> i32 {
    // SAFETY: __errno_location returns this thread's errno slot, valid for the thread's life.
    unsafe { *libc::__errno_location() }
}

fn set_errno(value: i32) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__errno_location() = value };
}

/// Asserts that `sig` has nothing to report: its `recv`, polled once after every ready task
/// had its turn (the runtime's reader among them), is pending.
async fn assert_quiet(sig: &mut Signal, what: &str) {
    settle().await;
    assert!(polled(sig.recv()).poll().is_pending(), "{what}");
}

/// The flags of the action `signum` has now.
fn action_flags(signum: i32) -> libc::c_int {
    // SAFETY: an all-zero sigaction is a valid value to be overwritten.
    let mut now: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only reads the current one into `now`, which is writable.
    let rc = unsafe { libc::sigaction(signum, std::ptr::null(), &mut now) };
    assert_eq!(rc, 0);
    now.sa_flags
}

/// How many bytes wait in the pipe read end `fd`.
fn queued(fd: RawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int, which `n` is.
    assert_eq!(unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) }, 0);
    n as usize
}

/// The read end of overlap's self-pipe: the one pipe read end this process holds that the
/// test did not make (the runtime's reader holds a `dup` of it, a second fd for one pipe).
fn self_pipe_read_end() -> RawFd {
    let mut ends = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<RawFd>() else {
            continue;
        };
        // The standard streams are the test harness's, whatever they are.
        if fd <= 2 {
            continue;
        }
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        // SAFETY: F_GETFL takes no pointer; a closed fd just fails.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        if target.to_string_lossy().starts_with("pipe:") && flags & libc::O_ACCMODE == 0 {
            ends.push(fd);
        }
    }
    // The pipe's own read end and the reader's dup: same pipe, two numbers.
    assert_eq!(ends.len(), 2, "pipe read ends: {ends:?}");
    ends[0]
}

#[test]
fn a_full_self_pipe_blocks_no_handler_keeps_errno_and_loses_no_later_arrival() {
    run_in_child(
        "a_full_self_pipe_blocks_no_handler_keeps_errno_and_loses_no_later_arrival",
        || {
            block_on(async {
                let mut usr1 = signal(SignalKind::user_defined1()).unwrap();
                let pipe = self_pipe_read_end();
                // The runtime's reader cannot run while this task does not yield: each
                // arrival adds a byte until the pipe is full, then the handler's write fails
                // with EAGAIN, which it must neither wait out nor leave in `errno`.
                let mut sent = 0;
                let mut full_arrivals = 0;
                while full_arrivals < 1_000 {
                    let before = queued(pipe);
                    set_errno(libc::EXDEV);
                    raise_here(libc::SIGUSR1);
                    assert_eq!(errno(), libc::EXDEV, "arrival {sent} changed errno");
                    sent += 1;
                    if queued(pipe) == before {
                        full_arrivals += 1;
                    }
                    assert!(sent < 10_000_000, "the self-pipe never filled");
                }
                assert!(queued(pipe) > 0);
                // Arrivals coalesce: one report for all of them, then nothing.
                within(HANG, usr1.recv(), "the arrivals into a full pipe").await;
                assert_quiet(&mut usr1, "a full pipe's arrivals reported twice").await;
                assert_eq!(queued(pipe), 0, "the reader drained the pipe");
                // The pipe has room again: the next arrival is not lost.
                raise_here(libc::SIGUSR1);
                within(HANG, usr1.recv(), "the arrival after the pipe drained").await;
                assert_quiet(&mut usr1, "one arrival reported twice").await;
            });
        },
    );
}

static EARLIER_CALLS: AtomicU64 = AtomicU64::new(0);

extern "C" fn earlier_handler(_: libc::c_int) {
    EARLIER_CALLS.fetch_add(1, Ordering::SeqCst);
}

/// Installs `earlier_handler` for `signum` with `flags` (and an empty mask).
fn install_earlier(signum: i32, flags: libc::c_int) {
    // SAFETY: an all-zero sigaction is valid (empty mask, no flags, SIG_DFL).
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = earlier_handler as extern "C" fn(libc::c_int) as libc::sighandler_t;
    sa.sa_flags = flags;
    // SAFETY: `sa` is a valid sigaction whose handler only bumps an atomic.
    let rc = unsafe { libc::sigaction(signum, &sa, std::ptr::null_mut()) };
    assert_eq!(rc, 0);
}

/// A blocking, close-on-exec pipe: (read end, write end).
fn blocking_pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two fds pipe2 writes.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both fds were just created and are owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Whether thread `tid` of this process is blocked in `read` now.
fn blocked_in_read(tid: libc::pid_t) -> bool {
    let syscall = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall"));
    let number = syscall.unwrap_or_default();
    number.split_whitespace().next() == Some(&libc::SYS_read.to_string())
}

/// Starts a thread that reads one byte from `read` (blocking), waits until it is blocked
/// in that `read`, sends it `signum`, and waits until the earlier handler ran there. Then
/// writes a byte into `write` and returns what the read gave: `Ok(1)` if the signal
/// restarted it, or its error if the signal ended it.
fn signal_a_blocked_read(signum: i32, read: OwnedFd, write: &OwnedFd) -> io::Result<usize> {
    let (tid_tx, tid_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        // SAFETY: gettid and pthread_self take no pointers.
        tid_tx
            .send((unsafe { libc::gettid() }, unsafe { libc::pthread_self() }))
            .unwrap();
        let mut byte = 0u8;
        // SAFETY: `byte` is one writable byte for the duration of the call.
        let n = unsafe { libc::read(read.as_raw_fd(), (&mut byte as *mut u8).cast(), 1) };
        let res = if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        };
        // Kept open until the byte below is written, read or not.
        (res, read)
    });
    let (tid, thread) = tid_rx.recv().unwrap();
    let start = std::time::Instant::now();
    while !blocked_in_read(tid) {
        assert!(start.elapsed() < HANG, "the reader never blocked in read");
        std::thread::yield_now();
    }
    let calls = EARLIER_CALLS.load(Ordering::SeqCst);
    // SAFETY: `thread` is alive: it is blocked in read until the byte below is written.
    assert_eq!(unsafe { libc::pthread_kill(thread, signum) }, 0);
    while EARLIER_CALLS.load(Ordering::SeqCst) == calls {
        assert!(start.elapsed() < HANG, "the earlier handler never ran");
        std::thread::yield_now();
    }
    // SAFETY: one readable byte.
    let n = unsafe { libc::write(write.as_raw_fd(), b"x".as_ptr().cast(), 1) };
    assert_eq!(n, 1);
    reader.join().unwrap().0
}

#[test]
fn an_earlier_handler_without_sa_restart_still_interrupts_a_blocking_read() {
    run_in_child(
        "an_earlier_handler_without_sa_restart_still_interrupts_a_blocking_read",
        || {
            // A program that stops a blocking read with a signal: its handler has no
            // SA_RESTART, so the read fails with EINTR.
            install_earlier(libc::SIGUSR1, 0);
            let (read, write) = blocking_pipe();
            let alone = signal_a_blocked_read(libc::SIGUSR1, read, &write);
            assert_eq!(alone.unwrap_err().raw_os_error(), Some(libc::EINTR));
            block_on(async {
                let mut usr1 = signal(SignalKind::user_defined1()).unwrap();
                // Once overlap listens too, the read still ends, and overlap hears it.
                let (read, write) = blocking_pipe();
                let res = signal_a_blocked_read(libc::SIGUSR1, read, &write);
                assert_eq!(
                    res.map_err(|e| e.raw_os_error()),
                    Err(Some(libc::EINTR)),
                    "the signal no longer interrupts the read it was meant to"
                );
                assert_eq!(action_flags(libc::SIGUSR1) & libc::SA_RESTART, 0);
                within(HANG, usr1.recv(), "overlap's listener").await;
            });
        },
    );
}

#[test]
fn an_earlier_handler_with_sa_restart_keeps_a_blocking_read_restarted() {
    run_in_child(
        "an_earlier_handler_with_sa_restart_keeps_a_blocking_read_restarted",
        || {
            install_earlier(libc::SIGUSR2, libc::SA_RESTART);
            block_on(async {
                let mut usr2 = signal(SignalKind::user_defined2()).unwrap();
                assert_ne!(action_flags(libc::SIGUSR2) & libc::SA_RESTART, 0);
                let (read, write) = blocking_pipe();
                // Restarted, the read waits on and gets the byte written after the signal.
                let res = signal_a_blocked_read(libc::SIGUSR2, read, &write);
                assert_eq!(res.unwrap(), 1);
                within(HANG, usr2.recv(), "overlap's listener").await;
            });
            // Without an earlier handler, overlap's restarts interrupted calls too.
            block_on(async {
                let mut hup = signal(SignalKind::hangup()).unwrap();
                assert_ne!(action_flags(libc::SIGHUP) & libc::SA_RESTART, 0);
                raise_here(libc::SIGHUP);
                within(HANG, hup.recv(), "overlap's listener").await;
            });
        },
    );
}

#[test]
fn a_sigpipe_listener_hears_pipe_writes_to_no_reader_but_not_socket_writes() {
    run_in_child(
        "a_sigpipe_listener_hears_pipe_writes_to_no_reader_but_not_socket_writes",
        || {
            use overlap::io::AsyncWriteExt;
            block_on(async {
                let mut sigpipe = signal(SignalKind::pipe()).unwrap();
                // overlap's sockets write with MSG_NOSIGNAL: BrokenPipe, and no signal.
                let (ours, theirs) = overlap::net::UnixStream::pair().unwrap();
                drop(theirs);
                let mut ours = ours;
                let err = ours.write_all(b"to nobody").await.unwrap_err();
                assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
                assert_quiet(&mut sigpipe, "a socket write raised SIGPIPE").await;
                // A pipe has no such flag: the kernel raises SIGPIPE, which the listener
                // now catches instead of Rust's SIG_IGN; the write still fails, the process
                // lives.
                let (mut tx, rx) = overlap::pipe::pipe().unwrap();
                drop(rx);
                let err = tx.write_all(b"to nobody").await.unwrap_err();
                assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
                within(HANG, sigpipe.recv(), "the pipe write's SIGPIPE").await;
                assert_quiet(&mut sigpipe, "one SIGPIPE reported twice").await;
            });
        },
    );
}

#[test]
fn listening_for_an_ignored_sigchld_leaves_ended_children_for_a_wait() {
    run_in_child(
        "listening_for_an_ignored_sigchld_leaves_ended_children_for_a_wait",
        || {
            use std::process::Command;
            // SAFETY: an all-zero sigaction is valid (empty mask, no flags); SIG_IGN.
            let mut ignore: libc::sigaction = unsafe { std::mem::zeroed() };
            ignore.sa_sigaction = libc::SIG_IGN;
            // SAFETY: a valid sigaction, with no handler to call.
            let rc = unsafe { libc::sigaction(libc::SIGCHLD, &ignore, std::ptr::null_mut()) };
            assert_eq!(rc, 0);
            // Ignored, SIGCHLD makes the kernel reap children itself: nothing left to wait.
            let mut reaped = Command::new("true").spawn().unwrap();
            let err = reaped.wait().unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::ECHILD));
            block_on(async {
                let mut chld = signal(SignalKind::child()).unwrap();
                // Caught now: the child's end is heard, and its status waits for `wait`.
                let mut child = Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
                within(HANG, chld.recv(), "the child's SIGCHLD").await;
                let status = overlap::task::spawn_blocking(move || child.wait())
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(status.code(), Some(3));
            });
        },
    );
}

/// How many tasks listen for one signal.
const LISTENERS: usize = 300;

#[test]
fn three_hundred_listeners_each_report_each_arrival_exactly_once() {
    run_in_child(
        "three_hundred_listeners_each_report_each_arrival_exactly_once",
        || {
            block_on(async {
                let heard = Arc::new(AtomicU64::new(0));
                let mut tasks = Vec::new();
                for _ in 0..LISTENERS {
                    let mut winch = signal(SignalKind::window_change()).unwrap();
                    let heard = heard.clone();
                    tasks.push(spawn(async move {
                        loop {
                            winch.recv().await;
                            heard.fetch_add(1, Ordering::SeqCst);
                        }
                    }));
                }
                settle().await;
                for round in 1..=3u64 {
                    // Two arrivals before any listener runs: coalesced into one report each.
                    raise_here(libc::SIGWINCH);
                    raise_here(libc::SIGWINCH);
                    let want = round * LISTENERS as u64;
                    support::until(|| heard.load(Ordering::SeqCst) >= want, "every listener").await;
                    settle().await;
                    assert_eq!(heard.load(Ordering::SeqCst), want, "round {round}");
                }
                // Half of them go: the rest still hear, once each.
                for task in tasks.drain(..LISTENERS / 2) {
                    task.abort();
                }
                settle().await;
                raise_here(libc::SIGWINCH);
                let want = 3 * LISTENERS as u64 + (LISTENERS / 2) as u64;
                support::until(|| heard.load(Ordering::SeqCst) >= want, "the rest").await;
                settle().await;
                assert_eq!(heard.load(Ordering::SeqCst), want);
                tasks.into_iter().for_each(|t| t.abort());
            });
        },
    );
}
