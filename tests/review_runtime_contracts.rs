//! Promises of the runtime's rustdoc that no other test pinned: a `Timeout` handing its
//! future back drops its timer, an `Interval` reset while a task waits on it wakes that
//! task, `join_next_with_id` is skipped by `select!` while the set is empty, a wait on a
//! direction outside an `AsyncFd`'s interest ends with a hang-up, two tasks waiting to read
//! one `AsyncFd` both get a turn, a `Signal`'s dropped `recv` loses no arrival,
//! `JoinSet::join_all`'s two panics, a blocking job reads its runtime's paused clock,
//! and `signal` outside a runtime is an error that installs no handler; also
//! that an fd swapped out of an `AsyncFd` through `get_mut` and kept open leaves epoll
//! with it (a bug).

mod support;

use std::cell::RefCell;
use std::future::{pending, poll_fn, Future};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use overlap::future::FutureExt;
use overlap::io::Interest;
use overlap::time::{self, Instant};
use overlap::{AsyncFd, JoinSet};
use support::{eventfd, eventfd_add, settle, socketpair, within};

const HANG: Duration = Duration::from_secs(30);

/// Polls `fut` once, with the task's own waker, and says whether it was ready.
async fn poll_once<F: Future + Unpin>(fut: &mut F) -> bool {
    poll_fn(|cx| Poll::Ready(Pin::new(&mut *fut).poll(cx).is_ready())).await
}

/// `Timeout::into_inner` documents that it drops the timer: a timeout polled once (so its
/// timer is registered) and then taken apart leaves no timer behind, and the future it gives
/// back still works.
#[overlap::test]
async fn timeout_into_inner_drops_the_registered_timer_and_keeps_the_future() {
    let (tx, rx) = overlap::sync::oneshot::channel::<u32>();
    let mut t = time::timeout(Duration::from_secs(3600), rx);
    assert!(!poll_once(&mut t).await, "nothing was sent");
    assert_eq!(
        overlap::metrics().timers_active,
        1,
        "the timer is registered"
    );
    let rx = t.into_inner();
    assert_eq!(
        overlap::metrics().timers_active,
        0,
        "into_inner left its timer"
    );
    tx.send(5).unwrap();
    assert_eq!(within(HANG, rx, "the inner receiver").await, Ok(5));
}

/// `Interval::reset_immediately` (and `reset_at`) on an interval another task waits on
/// wakes that task at once, as `Sleep::reset` promises for the sleep underneath: on a paused
/// clock the tick comes at the reset's instant, not after the clock jumped to the old one.
#[overlap::test(start_paused = true)]
async fn an_interval_reset_while_a_task_waits_wakes_it_at_the_new_instant() {
    let mut every = time::interval(Duration::from_secs(60));
    every.tick().await; // the first, at once
    let every = Rc::new(RefCell::new(every));
    let waiter = overlap::spawn({
        let every = every.clone();
        async move {
            let at = poll_fn(|cx| every.borrow_mut().poll_tick(cx)).await;
            (at, Instant::now())
        }
    });
    settle().await; // it waits on the tick of 60 s
    time::advance(Duration::from_secs(10)).await;
    let reset_at = Instant::now();
    every.borrow_mut().reset_immediately();
    let (at, seen) = within(HANG, waiter, "the waiting tick").await.unwrap();
    assert_eq!(at, reset_at, "the tick reports the reset's instant");
    assert_eq!(
        seen, reset_at,
        "the clock jumped on to the old deadline first"
    );
}

/// `JoinNextWithId` is fused as `JoinNext` is: terminated while the set is empty, so a
/// `select!` loop skips it then and takes its branch once a member finishes.
#[overlap::test]
async fn join_next_with_id_in_a_select_loop_is_skipped_while_the_set_is_empty() {
    use overlap::future::FusedFuture;
    let mut set = JoinSet::new();
    assert!(set.join_next_with_id().is_terminated());
    let (tx, mut rx) = overlap::sync::mpsc::channel::<u32>(4);
    let feeder = overlap::spawn(async move {
        for n in 1..=2 {
            tx.send(n).await.unwrap();
            settle().await;
        }
    });
    let (mut turns, mut joined) = (0, Vec::new());
    loop {
        turns += 1;
        overlap::select! {
            job = rx.recv().fuse() => match job {
                Some(n) => {
                    // The handle is kept, so that no later member reuses the ID.
                    let handle = set.spawn(async move { n * 10 });
                    joined.push((handle, None));
                }
                None => break,
            },
            done = set.join_next_with_id() => {
                let (id, out) = done.expect("a member").unwrap();
                let slot = joined.iter_mut().find(|(h, _)| h.id() == id).expect("its id");
                slot.1 = Some(out);
            }
        }
    }
    feeder.await.unwrap();
    let outs: Vec<_> = joined.iter().map(|(_, out)| *out).collect();
    assert_eq!(outs, [Some(10), Some(20)]);
    // Two jobs, two outputs, the channel's end: no turn took an empty set's `None`.
    assert_eq!(turns, 5);
}

/// `AsyncFd::with_interest`: "a wait in a direction outside `interest` ends only with an
/// error or a hang-up". A socket registered for writing only sleeps through data arriving
/// in a `readable` wait, and that wait ends once the peer hangs up.
#[overlap::test]
async fn a_read_wait_outside_the_interest_ends_with_the_peers_hang_up() {
    let (mine, peer) = socketpair();
    let fd = AsyncFd::with_interest(mine, Interest::WRITABLE).unwrap();
    let mut wait = Box::pin(fd.readable());
    let mut peer = std::fs::File::from(peer);
    peer.write_all(b"data").unwrap();
    settle().await;
    assert!(
        !poll_once(&mut wait).await,
        "read data outside its interest"
    );
    drop(peer);
    let guard = within(HANG, wait, "the hang-up").await.unwrap();
    assert!(guard.ready().is_read_closed(), "{:?}", guard.ready());
}

/// "Several tasks waiting on the same direction are all woken by its next edge; those that
/// find the readiness taken by another wait again": two tasks reading one eventfd each get
/// one of two values, whichever wins the first.
#[overlap::test]
async fn two_tasks_reading_one_async_fd_each_get_a_value() {
    let efd = Rc::new(AsyncFd::new(eventfd()).unwrap());
    let reader = |efd: Rc<AsyncFd<OwnedFd>>| async move {
        loop {
            let mut guard = efd.readable().await.unwrap();
            let read = guard.try_io(|fd| {
                let mut buf = [0u8; 8];
                let n = std::fs::File::from(fd.try_clone()?).read(&mut buf)?;
                assert_eq!(n, 8);
                Ok(u64::from_ne_bytes(buf))
            });
            if let Ok(res) = read {
                return res.unwrap();
            }
        }
    };
    let a = overlap::spawn(reader(efd.clone()));
    let b = overlap::spawn(reader(efd.clone()));
    settle().await; // both wait
    eventfd_add(efd.get_ref(), 3);
    settle().await; // one takes it, the other waits again
    assert!(
        a.is_finished() != b.is_finished(),
        "exactly one reader has the first value"
    );
    eventfd_add(efd.get_ref(), 4);
    let a = within(HANG, a, "the first reader").await.unwrap();
    let b = within(HANG, b, "the second reader").await.unwrap();
    let mut got = [a, b];
    got.sort();
    assert_eq!(got, [3, 4]);
}

/// `Signal::recv` is cancel-safe: an arrival handed out while a `recv` waited, which was
/// then dropped without returning it, is reported by the next `recv` at once.
#[test]
fn a_signal_arrival_a_dropped_recv_did_not_return_comes_with_the_next() {
    use overlap::signal::{signal, SignalKind};
    overlap::block_on(async {
        let mut usr1 = signal(SignalKind::user_defined1()).unwrap();
        {
            let mut recv = Box::pin(usr1.recv());
            assert!(!poll_once(&mut recv).await, "nothing was sent yet");
            // SAFETY: raise takes no pointers.
            assert_eq!(unsafe { libc::raise(libc::SIGUSR1) }, 0);
            settle().await; // the runtime's reader hands it out and wakes the listener
        } // dropped, woken but not polled
        let got = usr1.recv().now_or_never();
        assert_eq!(
            got,
            Some(Some(())),
            "the arrival was lost with the dropped recv"
        );
        assert!(usr1.recv().now_or_never().is_none(), "reported twice");
    });
}

/// A blocking job reads its runtime's clock, paused or not (see `time`'s module docs), as
/// tokio's blocking threads do: a `spawn_blocking` job (or a `Handle::spawn_blocking` one,
/// or a future in another thread's `Handle::block_on`) on a runtime paused and advanced an
/// hour reads exactly the task's `Instant::now()`, and measures `elapsed` on that clock.
#[overlap::test(start_paused = true)]
async fn a_blocking_job_reads_the_paused_clock_of_its_runtime() {
    let start = Instant::now();
    time::advance(Duration::from_secs(3600)).await;
    let in_task = Instant::now();
    let (in_job, elapsed) = overlap::spawn_blocking(move || (Instant::now(), start.elapsed()))
        .await
        .unwrap();
    assert_eq!(in_job, in_task, "the job read another clock");
    assert_eq!(elapsed, Duration::from_secs(3600));
    let from_handle = overlap::Handle::current().spawn_blocking(time::now);
    assert_eq!(from_handle.await.unwrap(), in_task);
    let handle = overlap::Handle::current();
    // The future is ready at once: the thread needs nothing of the loop it blocks.
    let thread = std::thread::spawn(move || handle.block_on(async { Instant::now() }));
    assert_eq!(thread.join().unwrap(), in_task);
    assert_eq!(Instant::now(), in_task, "the task's clock stayed paused");
}

/// `JoinSet::join_all` documents its two panics: an aborted member makes it panic saying
/// so, and a member's panic resumes there, the set's other tasks being aborted as it drops.
#[overlap::test]
async fn join_all_panics_naming_an_aborted_member_and_a_panic_aborts_the_rest() {
    let mut set = JoinSet::new();
    set.spawn(async { 1 });
    set.spawn(pending::<i32>()).abort();
    let err = overlap::spawn(set.join_all()).await.unwrap_err();
    let msg = support::panic_message(err.into_panic());
    assert!(msg.contains("a task was aborted"), "{msg:?}");

    let (flag, dropped) = support::DropFlag::new();
    let mut set = JoinSet::new();
    set.spawn(async move {
        let _flag = flag;
        pending::<()>().await
    });
    set.spawn(async { panic!("member boom") });
    let err = overlap::spawn(set.join_all()).await.unwrap_err();
    assert_eq!(support::panic_message(err.into_panic()), "member boom");
    settle().await;
    assert!(
        dropped.get(),
        "the pending member was not aborted with the set"
    );
}

/// `AsyncFd::get_mut` lets the inner value be swapped out: the fd swapped out and still
/// open (held by the caller) leaves epoll when the `AsyncFd` drops, or goes through
/// `into_inner`, so it can be registered again, where it used to stay in the interest list
/// and a new `AsyncFd` of it failed with the kernel's "File exists".
#[overlap::test]
async fn an_fd_swapped_out_through_get_mut_can_be_registered_again() {
    for into_inner in [false, true] {
        let (a, a_peer) = socketpair();
        let (b, _b_peer) = socketpair();
        let mut fd = AsyncFd::new(a).unwrap();
        let old = std::mem::replace(fd.get_mut(), b);
        if into_inner {
            drop(fd.into_inner());
        } else {
            drop(fd);
        }
        let again = AsyncFd::new(old).expect("the swapped-out fd registered again");
        std::fs::File::from(a_peer).write_all(b"x").unwrap();
        let guard = within(HANG, again.readable(), "the new registration").await;
        assert!(guard.unwrap().ready().is_readable());
    }
}

/// `signal` outside a runtime fails with an `Other` error saying so (and `ctrl_c` polled
/// there too), and leaves the signal's disposition as it was: the process does not start
/// catching a signal nobody can listen for.
#[test]
fn signal_outside_a_runtime_is_an_error_and_installs_no_handler() {
    use overlap::signal::{ctrl_c, signal, SignalKind};
    let current = || {
        // SAFETY: an all-zero sigaction is a valid value to be overwritten.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: a null new action only reads the current one into `old`, writable.
        let rc = unsafe { libc::sigaction(libc::SIGUSR2, std::ptr::null(), &mut old) };
        assert_eq!(rc, 0);
        old.sa_sigaction
    };
    assert_eq!(current(), libc::SIG_DFL, "test setup: SIGUSR2 untouched");
    let err = signal(SignalKind::user_defined2()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::Other);
    assert!(err.to_string().contains("outside"), "{err}");
    assert_eq!(
        current(),
        libc::SIG_DFL,
        "a failed signal() installed a handler"
    );
    let err = ctrl_c().now_or_never().expect("at once").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::Other, "{err}");
}
