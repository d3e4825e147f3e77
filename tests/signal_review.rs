//! An adversarial review of `overlap::signal`: arrivals before the first `recv`, real-time
//! signals the kernel queues, a signal blocked on the runtime's thread, listeners dropped
//! with an arrival in flight, runtimes dropped and made again (nothing lost, no fd leaked),
//! refused signals, a handler installed after overlap's, `recv`s cancelled, and a storm of
//! 100,000 signals that must not starve the runtime's other tasks.
//!
//! Signal dispositions and masks are process-wide, so each test runs in a child process of
//! its own, and sends signals only to that process.

mod support;

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use overlap::signal::{signal, SignalKind};
use overlap::{block_on, spawn};
use support::{polled, run_in_child, settle, within};

/// Only a lost wakeup gets near this.
const HANG: Duration = Duration::from_secs(30);

/// Sends `signum` to the whole process (any thread that does not block it takes it).
fn kill_self(signum: i32) {
    // SAFETY: kill and getpid take no pointers.
    assert_eq!(unsafe { libc::kill(libc::getpid(), signum) }, 0);
}

/// Sends `signum` to this thread; unblocked, its handler has run when this returns.
fn raise_here(signum: i32) {
    // SAFETY: raise takes no pointers.
    assert_eq!(unsafe { libc::raise(signum) }, 0);
}

/// Blocks (`how` = `SIG_BLOCK`) or unblocks (`SIG_UNBLOCK`) `signum` in this thread. Signals
/// pending for the thread are handled before an unblocking call returns.
fn mask(how: i32, signum: i32) {
    // SAFETY: an all-zero sigset_t is a valid value to fill.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t; the old mask is not asked for.
    unsafe {
        assert_eq!(libc::sigaddset(&mut set, signum), 0);
        assert_eq!(libc::pthread_sigmask(how, &set, std::ptr::null_mut()), 0);
    }
}

/// Queues real-time signal `signum` with `value` to this process.
fn queue_self(signum: i32, value: usize) {
    let val = libc::sigval {
        sival_ptr: value as *mut libc::c_void,
    };
    // SAFETY: sigqueue takes the value by copy; no pointer is dereferenced.
    assert_eq!(unsafe { libc::sigqueue(libc::getpid(), signum, val) }, 0);
}

/// The handler `signum` has now.
fn disposition(signum: i32) -> libc::sighandler_t {
    // SAFETY: an all-zero sigaction is a valid value to be overwritten.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only reads the current one into `old`, which is writable.
    let rc = unsafe { libc::sigaction(signum, std::ptr::null(), &mut old) };
    assert_eq!(rc, 0);
    old.sa_sigaction
}

/// How many fds this process has open.
fn open_fds() -> usize {
    // The directory's own fd is counted too, the same each time.
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Asserts that `sig` has nothing to report: its `recv`, polled once after every ready task
/// had its turn (the runtime's reader among them), is pending.
async fn assert_quiet(sig: &mut overlap::signal::Signal, what: &str) {
    settle().await;
    assert!(polled(sig.recv()).poll().is_pending(), "{what}");
}

#[test]
fn an_arrival_between_signal_and_its_first_recv_is_reported() {
    run_in_child(
        "an_arrival_between_signal_and_its_first_recv_is_reported",
        || {
            block_on(async {
                // First ever listener: the handler is installed by this very call.
                let mut usr1 = signal(SignalKind::user_defined1()).unwrap();
                raise_here(libc::SIGUSR1);
                within(
                    HANG,
                    usr1.recv(),
                    "an arrival before the first recv was lost",
                )
                .await;
                assert_quiet(&mut usr1, "one arrival reported twice").await;
                // The same from another thread, which is done before the first poll.
                let mut usr2 = signal(SignalKind::user_defined2()).unwrap();
                std::thread::spawn(|| kill_self(libc::SIGUSR2))
                    .join()
                    .unwrap();
                within(HANG, usr2.recv(), "another thread's arrival was lost").await;
                assert_quiet(&mut usr2, "one arrival reported twice").await;
            });
        },
    );
}

#[test]
fn real_time_signals_queued_by_the_kernel_are_reported_by_one_recv() {
    run_in_child(
        "real_time_signals_queued_by_the_kernel_are_reported_by_one_recv",
        || {
            block_on(async {
                for signum in [libc::SIGRTMIN() + 3, libc::SIGRTMAX()] {
                    let mut rt = signal(SignalKind::from_raw(signum)).unwrap();
                    assert_eq!(rt.kind().as_raw(), signum);
                    // Real-time signals queue (one per sigqueue, not coalesced): all 50 are
                    // handled while unblocking, before the reader runs.
                    mask(libc::SIG_BLOCK, signum);
                    for i in 0..50 {
                        queue_self(signum, i);
                    }
                    mask(libc::SIG_UNBLOCK, signum);
                    within(HANG, rt.recv(), "queued real-time signals lost").await;
                    assert_quiet(&mut rt, "50 queued arrivals reported more than once").await;
                    queue_self(signum, 99);
                    within(HANG, rt.recv(), "the next real-time signal lost").await;
                }
            });
        },
    );
}

#[test]
fn a_signal_blocked_on_the_runtimes_thread_is_heard_once_unblocked_or_taken_elsewhere() {
    run_in_child(
        "a_signal_blocked_on_the_runtimes_thread_is_heard_once_unblocked_or_taken_elsewhere",
        || {
            block_on(async {
                mask(libc::SIG_BLOCK, libc::SIGUSR2);
                let mut usr2 = signal(SignalKind::user_defined2()).unwrap();
                // Sent to this thread, it waits there, pending, unhandled.
                raise_here(libc::SIGUSR2);
                assert_quiet(&mut usr2, "a signal blocked here was reported").await;
                // Unblocking hands it to the handler before the call returns.
                mask(libc::SIG_UNBLOCK, libc::SIGUSR2);
                within(HANG, usr2.recv(), "the unblocked signal was lost").await;
                // Sent to the process, another thread that does not block it takes it.
                mask(libc::SIG_BLOCK, libc::SIGUSR2);
                std::thread::spawn(|| kill_self(libc::SIGUSR2))
                    .join()
                    .unwrap();
                within(HANG, usr2.recv(), "handled on another thread, lost").await;
                mask(libc::SIG_UNBLOCK, libc::SIGUSR2);
                assert_quiet(&mut usr2, "one arrival reported twice").await;
            });
        },
    );
}

#[test]
fn listeners_dropped_with_an_arrival_in_flight_cost_the_others_nothing() {
    run_in_child(
        "listeners_dropped_with_an_arrival_in_flight_cost_the_others_nothing",
        || {
            block_on(async {
                let kind = SignalKind::hangup();
                let mut a = signal(kind).unwrap();
                let mut b = signal(kind).unwrap();
                let mut c = signal(kind).unwrap();
                // b waits (its waker is listed), a task waits on c's twin, then both go
                // while the arrival is handled but not yet handed out.
                let mut b_recv = polled(b.recv());
                assert!(b_recv.poll().is_pending());
                let aborted = spawn(async move {
                    let mut d = signal(SignalKind::hangup()).unwrap();
                    d.recv().await;
                    unreachable!("aborted before the reader ran");
                });
                settle().await;
                raise_here(libc::SIGHUP);
                drop(b_recv);
                drop(b);
                aborted.abort();
                within(HANG, a.recv(), "a lost the arrival").await;
                within(HANG, c.recv(), "c lost the arrival").await;
                assert!(within(HANG, aborted, "abort")
                    .await
                    .unwrap_err()
                    .is_cancelled());
                // And the next one, with the dropped listeners' entries gone.
                raise_here(libc::SIGHUP);
                within(HANG, a.recv(), "a lost the second arrival").await;
                within(HANG, c.recv(), "c lost the second arrival").await;
            });
        },
    );
}

#[test]
fn every_listener_of_four_runtimes_on_four_threads_hears_each_of_five_rounds() {
    run_in_child(
        "every_listener_of_four_runtimes_on_four_threads_hears_each_of_five_rounds",
        || {
            const RUNTIMES: usize = 4;
            const ROUNDS: usize = 5;
            let (heard_tx, heard_rx) = std::sync::mpsc::channel::<(usize, usize)>();
            let ready = Arc::new(std::sync::Barrier::new(RUNTIMES + 1));
            let threads: Vec<_> = (0..RUNTIMES)
                .map(|rt| {
                    let heard_tx = heard_tx.clone();
                    let ready = ready.clone();
                    std::thread::spawn(move || {
                        block_on(async move {
                            let mut mine = signal(SignalKind::user_defined1()).unwrap();
                            let mut tasks = signal(SignalKind::user_defined1()).unwrap();
                            let (round_tx, round_rx) = overlap::sync::mpsc::unbounded_channel();
                            let other = spawn(async move {
                                for _ in 0..ROUNDS {
                                    within(HANG, tasks.recv(), "a task's listener").await;
                                    round_tx.send(()).unwrap();
                                }
                            });
                            let mut round_rx = round_rx;
                            ready.wait();
                            for round in 0..ROUNDS {
                                within(HANG, mine.recv(), "a runtime's listener").await;
                                within(HANG, round_rx.recv(), "its task").await.unwrap();
                                heard_tx.send((rt, round)).unwrap();
                            }
                            other.await.unwrap();
                        })
                    })
                })
                .collect();
            ready.wait();
            // One arrival per round, sent only once every listener heard the last one: a
            // listener that reports a round early or late shows in the order.
            for round in 0..ROUNDS {
                kill_self(libc::SIGUSR1);
                let mut heard: Vec<_> = (0..RUNTIMES).map(|_| heard_rx.recv().unwrap()).collect();
                heard.sort();
                let want: Vec<_> = (0..RUNTIMES).map(|rt| (rt, round)).collect();
                assert_eq!(heard, want);
            }
            threads.into_iter().for_each(|t| t.join().unwrap());
        },
    );
}

#[test]
fn an_arrival_while_no_runtime_exists_reaches_the_next_runtimes_new_listener() {
    run_in_child(
        "an_arrival_while_no_runtime_exists_reaches_the_next_runtimes_new_listener",
        || {
            let first = overlap::Runtime::new().unwrap();
            first.block_on(async {
                let mut term = signal(SignalKind::terminate()).unwrap();
                raise_here(libc::SIGTERM);
                within(HANG, term.recv(), "first runtime").await;
            });
            drop(first);
            // No runtime reads the pipe now: the handler counts and pokes, nobody hands out.
            raise_here(libc::SIGTERM);
            block_on(async {
                let mut term = signal(SignalKind::terminate()).unwrap();
                within(HANG, term.recv(), "the arrival between runtimes was lost").await;
                assert_quiet(&mut term, "reported twice").await;
            });
        },
    );
}

#[test]
fn forty_runtimes_one_after_another_each_hear_their_signal_and_leak_no_fd() {
    run_in_child(
        "forty_runtimes_one_after_another_each_hear_their_signal_and_leak_no_fd",
        || {
            let listen_once = || {
                block_on(async {
                    let mut winch = signal(SignalKind::window_change()).unwrap();
                    raise_here(libc::SIGWINCH);
                    within(HANG, winch.recv(), "a runtime's listener").await;
                })
            };
            // The first call makes the self-pipe, which stays: count from after it.
            listen_once();
            let base = open_fds();
            for i in 0..20 {
                listen_once();
                assert_eq!(open_fds(), base, "runtime {i} on this thread");
                std::thread::spawn(listen_once).join().unwrap();
                assert_eq!(open_fds(), base, "runtime {i} on its own thread");
            }
        },
    );
}

#[test]
fn signals_that_cannot_be_listened_for_are_refused_before_anything_is_opened_or_installed() {
    run_in_child(
        "signals_that_cannot_be_listened_for_are_refused_before_anything_is_opened_or_installed",
        || {
            let base = open_fds();
            block_on(async {
                let before = open_fds();
                for signum in [
                    libc::SIGKILL,
                    libc::SIGSTOP,
                    libc::SIGSEGV,
                    libc::SIGBUS,
                    libc::SIGILL,
                    libc::SIGFPE,
                    libc::SIGRTMAX() + 1,
                    i32::MIN,
                ] {
                    let valid = signum > 0 && signum <= libc::SIGRTMAX();
                    // std's own SIGSEGV and SIGBUS handlers (stack overflow) stay as well.
                    let had = valid.then(|| disposition(signum));
                    let err = signal(SignalKind::from_raw(signum)).unwrap_err();
                    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{signum}: {err}");
                    assert_eq!(
                        err.to_string(),
                        format!("signal {signum} cannot be listened for")
                    );
                    assert_eq!(valid.then(|| disposition(signum)), had, "{signum}");
                }
                // Refused up front: no self-pipe, no reader.
                assert_eq!(open_fds(), before);
            });
            assert_eq!(open_fds(), base);
        },
    );
}

static LATER_HANDLER_CALLS: AtomicU64 = AtomicU64::new(0);

extern "C" fn later_handler(_: libc::c_int) {
    LATER_HANDLER_CALLS.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn a_handler_installed_after_overlaps_replaces_it_until_overlaps_is_put_back() {
    run_in_child(
        "a_handler_installed_after_overlaps_replaces_it_until_overlaps_is_put_back",
        || {
            block_on(async {
                let mut usr1 = signal(SignalKind::user_defined1()).unwrap();
                // SAFETY: an all-zero sigaction is a valid value (no flags, empty mask).
                let mut ours: libc::sigaction = unsafe { std::mem::zeroed() };
                ours.sa_sigaction = later_handler as extern "C" fn(libc::c_int) as usize;
                // SAFETY: as above.
                let mut overlaps: libc::sigaction = unsafe { std::mem::zeroed() };
                // SAFETY: both are valid sigactions; the handler only bumps an atomic.
                let rc = unsafe { libc::sigaction(libc::SIGUSR1, &ours, &mut overlaps) };
                assert_eq!(rc, 0);
                raise_here(libc::SIGUSR1);
                assert_eq!(LATER_HANDLER_CALLS.load(Ordering::SeqCst), 1);
                // As documented: the later handler does not call overlap's, so nothing
                // reaches the listener, and a new `signal` does not take the signal back.
                let mut again = signal(SignalKind::user_defined1()).unwrap();
                assert_quiet(&mut usr1, "heard through a replaced handler").await;
                assert_quiet(&mut again, "heard through a replaced handler").await;
                // Putting overlap's action back makes both hear again.
                // SAFETY: `overlaps` is the action sigaction handed back.
                let rc = unsafe { libc::sigaction(libc::SIGUSR1, &overlaps, std::ptr::null_mut()) };
                assert_eq!(rc, 0);
                raise_here(libc::SIGUSR1);
                within(HANG, usr1.recv(), "overlap's handler put back").await;
                within(HANG, again.recv(), "overlap's handler put back").await;
                assert_eq!(LATER_HANDLER_CALLS.load(Ordering::SeqCst), 1);
            });
        },
    );
}

#[test]
fn a_recv_polled_once_and_dropped_loses_nothing_for_the_next_recv() {
    run_in_child(
        "a_recv_polled_once_and_dropped_loses_nothing_for_the_next_recv",
        || {
            block_on(async {
                let mut quit = signal(SignalKind::quit()).unwrap();
                // Dropped while waiting, before the signal.
                let mut first = polled(quit.recv());
                assert!(first.poll().is_pending());
                drop(first);
                raise_here(libc::SIGQUIT);
                within(HANG, quit.recv(), "arrival after a dropped recv").await;
                // Dropped after it was woken by an arrival it never returned.
                let mut second = polled(quit.recv());
                assert!(second.poll().is_pending());
                raise_here(libc::SIGQUIT);
                support::until(|| second.is_woken(), "the recv was never woken").await;
                drop(second);
                within(HANG, quit.recv(), "the arrival a dropped recv saw").await;
                assert_quiet(&mut quit, "reported twice").await;
            });
        },
    );
}

static CHAINED_VALUES: AtomicU64 = AtomicU64::new(0);

extern "C" fn chained_rt(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel hands an SA_SIGINFO handler a valid siginfo_t, which for a
    // sigqueue'd signal carries its value.
    let value = unsafe { (*info).si_value().sival_ptr } as u64;
    CHAINED_VALUES.fetch_add(value, Ordering::SeqCst);
}

#[test]
fn an_earlier_handler_of_a_real_time_signal_gets_every_queued_value() {
    run_in_child(
        "an_earlier_handler_of_a_real_time_signal_gets_every_queued_value",
        || {
            let signum = libc::SIGRTMIN() + 1;
            // SAFETY: an all-zero sigaction is a valid value (empty mask).
            let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
            sa.sa_sigaction = chained_rt
                as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void)
                as usize;
            sa.sa_flags = libc::SA_SIGINFO;
            // SAFETY: a valid sigaction; the handler only reads its siginfo_t and an atomic.
            let rc = unsafe { libc::sigaction(signum, &sa, std::ptr::null_mut()) };
            assert_eq!(rc, 0);
            block_on(async {
                let mut rt = signal(SignalKind::from_raw(signum)).unwrap();
                mask(libc::SIG_BLOCK, signum);
                for value in 1..=10 {
                    queue_self(signum, value);
                }
                mask(libc::SIG_UNBLOCK, signum);
                // Each queued arrival reached the earlier handler with its own value.
                assert_eq!(CHAINED_VALUES.load(Ordering::SeqCst), 55);
                within(HANG, rt.recv(), "the listener beside the earlier handler").await;
                assert_quiet(&mut rt, "reported twice").await;
            });
        },
    );
}

/// How many times the storm thread sends the signal.
const STORM: usize = 100_000;
/// The storm thread waits for the runtime to echo a byte after each this many signals.
const STORM_ECHO_EVERY: usize = 1_000;

#[test]
fn a_storm_of_100000_signals_starves_no_task_and_loses_no_later_signal() {
    run_in_child(
        "a_storm_of_100000_signals_starves_no_task_and_loses_no_later_signal",
        || {
            use overlap::io::{AsyncReadExt, AsyncWriteExt};
            block_on(async {
                let mut usr2 = signal(SignalKind::user_defined2()).unwrap();
                let heard = Arc::new(AtomicU64::new(0));
                let counted = heard.clone();
                let listener = spawn(async move {
                    loop {
                        usr2.recv().await;
                        counted.fetch_add(1, Ordering::SeqCst);
                    }
                });
                let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
                let mut ours = overlap::net::UnixStream::from_std(ours).unwrap();
                // The storm cannot go on unless this task runs during it: every 1,000
                // signals, it waits for the echo of a byte.
                let storm = std::thread::spawn(move || {
                    use std::io::{Read, Write};
                    let mut theirs = theirs;
                    for i in 0..STORM {
                        kill_self(libc::SIGUSR2);
                        if i % STORM_ECHO_EVERY == 0 {
                            let byte = [(i / STORM_ECHO_EVERY) as u8];
                            theirs.write_all(&byte).unwrap();
                            let mut back = [0u8];
                            theirs.read_exact(&mut back).unwrap();
                            assert_eq!(back, byte);
                        }
                    }
                });
                let echoes = async {
                    let mut byte = [0u8];
                    for round in 0..STORM / STORM_ECHO_EVERY {
                        ours.read_exact(&mut byte).await.unwrap();
                        assert_eq!(byte[0], round as u8);
                        ours.write_all(&byte).await.unwrap();
                    }
                };
                within(HANG, echoes, "the echo task starved by the storm").await;
                overlap::task::spawn_blocking(move || storm.join().unwrap())
                    .await
                    .unwrap();
                // Coalesced: at least one report, never more than were sent.
                support::until(|| heard.load(Ordering::SeqCst) >= 1, "storm unheard").await;
                let during = heard.load(Ordering::SeqCst);
                assert!(
                    during <= STORM as u64,
                    "{during} reports of {STORM} signals"
                );
                // After the storm, a single signal still gets through.
                settle().await;
                let before = heard.load(Ordering::SeqCst);
                raise_here(libc::SIGUSR2);
                support::until(
                    || heard.load(Ordering::SeqCst) > before,
                    "the signal after the storm was lost",
                )
                .await;
                listener.abort();
            });
        },
    );
}

/// Makes `pidfd_open` fail with `ENOSYS`, so overlap's process crate watches its children
/// through `SIGCHLD`.
fn deny_pidfd_open() {
    support::seccomp::deny(&[(libc::SYS_pidfd_open, libc::ENOSYS)]);
}

#[test]
fn a_sigchld_listener_shares_sigchld_with_process_waits_when_pidfds_are_denied() {
    run_in_child(
        "a_sigchld_listener_shares_sigchld_with_process_waits_when_pidfds_are_denied",
        || {
            deny_pidfd_open();
            use std::process::{Command, Stdio};
            block_on(async {
                let mut chld = signal(SignalKind::child()).unwrap();
                // A child overlap does not know of (std's): its exit reaches the listener,
                // and overlap's own waits leave its status for std's `wait`.
                let mut plain = Command::new("sh").args(["-c", "exit 7"]).spawn().unwrap();
                within(HANG, chld.recv(), "SIGCHLD of std's child").await;
                let mut children: Vec<_> = (0..10)
                    .map(|i| {
                        let mut cmd = Command::new("sh");
                        cmd.args(["-c", &format!("exit {i}")]).stdout(Stdio::null());
                        overlap::process::spawn(&mut cmd).unwrap()
                    })
                    .collect();
                for (i, child) in children.iter_mut().enumerate() {
                    let status = within(HANG, child.wait(), "a wait through SIGCHLD").await;
                    assert_eq!(status.unwrap().code(), Some(i as i32));
                }
                // The listener made first still hears children exit after those waits.
                let mut last = overlap::process::spawn(&mut Command::new("true")).unwrap();
                within(HANG, chld.recv(), "SIGCHLD after the process crate's waits").await;
                assert!(within(HANG, last.wait(), "last").await.unwrap().success());
                overlap::task::spawn_blocking(move || {
                    assert_eq!(plain.wait().unwrap().code(), Some(7));
                })
                .await
                .unwrap();
            });
        },
    );
}
