//! An adversarial review of what overlap's signal handler does to the rest of the process:
//! the `errno` it leaves behind and the calls it never blocks in when its self-pipe is full,
//! `SIGPIPE` heard from pipe writes but not from socket writes, and hundreds of listeners of
//! one signal.
//!
//! Signal dispositions and masks are process-wide, so each test runs in a child process of
//! its own, and sends signals only to that process (or one of its threads).

mod support;

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
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
