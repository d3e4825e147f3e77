//! Promises of the `overlap::task` and `overlap::time` rustdoc that no other test held to:
//! when an abort lands (before the first poll, from another thread in the middle of a poll
//! or after the end), a blocking job's handle under another runtime, what a cancelled
//! `JoinError` gives back, an output whose destructor panics, `try_spawn` outside a runtime
//! and under an enter guard, `pause`/`resume` called twice, a completed `Sleep` polled
//! again, the deadlines of zero and endless timeouts, and `Instant`'s saturating and checked
//! arithmetic.
//!
//! Time-based tests run on a paused clock; `within` is only a hang guard.

mod support;

use std::cell::Cell;
use std::future::{pending, poll_fn};
use std::pin::pin;
use std::rc::Rc;
use std::sync::mpsc;
use std::task::Poll;
use std::thread;
use std::time::Duration;

use futures_util::FutureExt;
use overlap::future::FusedFuture;
use overlap::time::{self, advance, sleep, timeout, Instant};
use overlap::Runtime;
use support::{within, DropFlag};

const HANG: Duration = Duration::from_secs(20);

/// `JoinHandle::abort`: "Its future is dropped on the runtime thread at the runtime's next
/// turn". Aborted before it was ever polled, the future is not dropped by the call itself,
/// is never polled, and is dropped at the next turn; the handle then says cancelled.
#[test]
fn a_task_aborted_before_its_first_poll_is_dropped_unpolled_at_the_next_turn() {
    overlap::block_on(async {
        let polled = Rc::new(Cell::new(false));
        let (flag, dropped) = DropFlag::new();
        let p = polled.clone();
        let task = overlap::spawn(async move {
            let _owned = flag;
            p.set(true);
        });
        task.abort();
        assert!(
            !dropped.get(),
            "dropped by the abort call, not at the next turn"
        );
        assert!(!task.is_finished());
        overlap::yield_now().await;
        assert!(
            dropped.get(),
            "the next turn did not drop the aborted future"
        );
        assert!(task.is_finished());
        assert!(!polled.get(), "an aborted task was polled");
        let err = within(HANG, task, "aborted task").await.unwrap_err();
        assert!(err.is_cancelled() && !err.is_panic());
    });
}

/// `AbortHandle`: "another thread may abort the task (its future is then dropped on the
/// runtime's thread, at the runtime's next turn)". An abort made while the runtime's thread
/// is inside the task's very poll is not lost when that poll returns `Pending` with no wake
/// to come: the future is dropped, on the runtime thread, without a second poll.
#[test]
fn an_abort_from_another_thread_in_the_middle_of_a_poll_lands_at_the_next_turn() {
    let rt = Runtime::new().unwrap();
    let (in_poll_tx, in_poll) = mpsc::channel::<()>();
    let (aborted_tx, aborted) = mpsc::channel::<()>();
    let (flag, dropped) = DropFlag::new();
    let polls = Rc::new(Cell::new(0));
    let counted = polls.clone();
    let task = rt.spawn(poll_fn(move |_cx| {
        let _owned = &flag;
        counted.set(counted.get() + 1);
        if counted.get() == 1 {
            in_poll_tx.send(()).unwrap();
            aborted
                .recv_timeout(HANG)
                .expect("the other thread never aborted");
        }
        // No waker kept: only the abort can end this task.
        Poll::<u32>::Pending
    }));
    let stop = task.abort_handle();
    let aborter = thread::spawn(move || {
        in_poll.recv().unwrap();
        stop.abort();
        assert!(!stop.is_finished(), "finished while its poll still runs");
        aborted_tx.send(()).unwrap();
    });
    let out = rt.block_on(within(HANG, task, "an abort made mid-poll was lost"));
    aborter.join().unwrap();
    assert!(out.unwrap_err().is_cancelled());
    assert!(dropped.get());
    assert_eq!(polls.get(), 1, "polled again after the abort");
}

/// `AbortHandle::abort` and `RemoteJoinHandle::abort`: "A task that already finished keeps
/// its output", also when the abort comes from another thread, whether the runtime is
/// running then or not: the note it leaves is looked at by the next turn and changes nothing.
#[test]
fn an_abort_from_another_thread_after_the_end_keeps_the_output() {
    let rt = Runtime::new().unwrap();
    let local = rt.spawn(async { String::from("local") });
    let remote = rt.handle().spawn(async { String::from("remote") });
    rt.block_on(support::settle());
    assert!(local.is_finished() && remote.is_finished());
    let stop = local.abort_handle();
    // Between two block_on calls: the runtime is not running.
    let remote = thread::spawn(move || {
        stop.abort();
        assert!(stop.is_finished());
        remote.abort();
        assert!(remote.is_finished());
        remote
    })
    .join()
    .unwrap();
    rt.block_on(support::settle());
    assert_eq!(rt.block_on(local).unwrap(), "local");
    assert_eq!(rt.block_on(remote).unwrap(), "remote");

    // While the runtime runs, waiting on a thread that aborts.
    let task = rt.spawn(async { 7_u8 });
    let out = rt.block_on(async {
        support::settle().await;
        let stop = task.abort_handle();
        let aborter = overlap::spawn_blocking(move || stop.abort());
        within(HANG, aborter, "aborting thread").await.unwrap();
        support::settle().await;
        task.await
    });
    assert_eq!(out.unwrap(), 7);
}

/// `JoinHandle`: "Dropping a `JoinHandle` detaches the task: ... its output is dropped when
/// it completes"; and, as `RemoteJoinHandle`'s docs say of both handles, a destructor of an
/// unread output that panics is contained by the drop. Neither the loop nor the code that
/// drops the handle unwinds, and each output is dropped exactly once.
#[test]
fn an_output_whose_drop_panics_is_contained_when_a_handle_or_a_detached_end_drops_it() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    support::quiet_panics("never");
    let drops = Arc::new(AtomicUsize::new(0));
    overlap::block_on(async {
        let d = drops.clone();
        let held = overlap::spawn(async move { support::Loud(d) });
        let d = drops.clone();
        let detached = overlap::spawn(async move {
            overlap::yield_now().await;
            support::Loud(d)
        });
        drop(detached);
        support::settle().await;
        assert_eq!(drops.load(Ordering::SeqCst), 1, "the detached output");
        assert!(held.is_finished());
        let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(held)));
        assert!(dropped.is_ok(), "the handle's drop unwound");
        assert_eq!(drops.load(Ordering::SeqCst), 2);
        assert_eq!(overlap::spawn(async { 3 }).await.unwrap(), 3);
    });
    assert_eq!(drops.load(Ordering::SeqCst), 2);
}

/// `JoinHandle`: "awaited while another runtime on the same thread runs, it completes only
/// once the task's own runtime runs again (this holds for `spawn_blocking` handles too,
/// whose result is relayed by a task of the runtime that spawned the job)". A job that has
/// handed its result over still leaves its handle pending under another (paused, so its
/// timeout comes at once) runtime; the own runtime's next `block_on` delivers it. And
/// "Awaiting `&mut handle` (in a `select!`, under a timeout) is cancel-safe: the output
/// waits for a later await."
#[test]
fn a_blocking_jobs_handle_under_another_runtime_waits_for_its_own_to_run() {
    let own = Runtime::new().unwrap();
    let mut job = own.spawn_blocking(|| 6 * 7);
    let start = std::time::Instant::now();
    while own.metrics().blocking_running + own.metrics().blocking_queued > 0
        || own.metrics().blocking_jobs == 0
    {
        assert!(start.elapsed() < HANG, "the job never ran (hang guard)");
        thread::yield_now();
    }
    let other = Runtime::builder().start_paused(true).build().unwrap();
    let under_other = other.block_on(async {
        let waited = timeout(Duration::from_secs(1), &mut job).await;
        (waited.is_err(), job.is_finished())
    });
    assert_eq!(under_other, (true, false), "completed without its runtime");
    assert_eq!(
        own.block_on(within(HANG, job, "the relayed result"))
            .unwrap(),
        42
    );
}

/// `JoinError::into_panic` panics on a cancelled error; `try_into_panic` hands the error back
/// whole (still cancelled, same task id); a panic error's payload and its `io::Error` form
/// (kind `Other`, the message of `Display`).
#[test]
fn a_cancelled_error_refuses_into_panic_and_try_into_panic_hands_it_back_whole() {
    overlap::block_on(async {
        let task = overlap::spawn(pending::<()>());
        let id = task.id();
        task.abort();
        let cancelled = task.await.unwrap_err();
        let back = cancelled.try_into_panic().unwrap_err();
        assert!(back.is_cancelled() && !back.is_panic());
        assert_eq!(back.id(), id);
        assert_eq!(back.to_string(), "task was cancelled");
        let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| back.into_panic()))
            .expect_err("into_panic of a cancelled error returned");
        let said = support::panic_message(refused);
        assert!(said.contains("cancelled"), "{said}");

        let failed = overlap::spawn(async { panic!("boom {}", 7) })
            .await
            .unwrap_err();
        assert!(failed.is_panic() && !failed.is_cancelled());
        let io = std::io::Error::from(failed);
        assert_eq!(io.kind(), std::io::ErrorKind::Other);
        assert_eq!(io.to_string(), "task panicked: boom 7");
        let payload = overlap::spawn(async { std::panic::panic_any(41_u8) })
            .await
            .unwrap_err()
            .into_panic();
        assert_eq!(payload.downcast_ref::<u8>(), Some(&41));
    });
}

/// `try_spawn`: "outside a runtime it hands the future back instead of panicking" (the very
/// future, which still runs), and `spawn`'s rule holds for it under a `Runtime::enter` guard:
/// the task is accepted and runs at that runtime's next `block_on`. A blocking-pool thread
/// runs no runtime, so there it hands the future back too.
#[test]
fn try_spawn_hands_back_the_very_future_outside_and_spawns_under_an_enter_guard() {
    let ran = Rc::new(Cell::new(0));
    let r = ran.clone();
    let back = overlap::try_spawn(async move {
        r.set(r.get() + 1);
        "handed back"
    })
    .expect_err("outside a runtime try_spawn took the future");
    assert_eq!(ran.get(), 0, "polled while handed back");
    assert_eq!(overlap::block_on(back), "handed back");
    assert_eq!(ran.get(), 1);

    let rt = Runtime::new().unwrap();
    let task = {
        let _guard = rt.enter();
        overlap::try_spawn(async { 6 * 7 })
            .ok()
            .expect("refused under an enter guard")
    };
    assert!(!task.is_finished(), "ran with no block_on");
    assert_eq!(rt.block_on(task).unwrap(), 42);

    let on_pool = rt.block_on(async {
        overlap::spawn_blocking(|| overlap::try_spawn(async { 1 }).is_err()).await
    });
    assert!(on_pool.unwrap(), "a pool thread accepted a local spawn");
}

/// `pause`: "Nothing happens if it is paused already"; `resume`: "Nothing happens if it is
/// not paused". A second pause neither moves nor restarts the frozen clock, a second resume
/// leaves it running from where the first one let it go.
#[test]
fn pause_and_resume_called_twice_change_nothing() {
    overlap::block_on(async {
        time::resume(); // running already
        time::pause();
        let frozen = Instant::now();
        time::pause();
        assert_eq!(Instant::now(), frozen, "a second pause moved the clock");
        advance(Duration::from_secs(5)).await;
        time::pause();
        assert_eq!(Instant::now() - frozen, Duration::from_secs(5));
        time::resume();
        let resumed = Instant::now();
        assert!(resumed - frozen >= Duration::from_secs(5));
        time::resume();
        // A second resume does not set the clock back to the real one: readings go on
        // from the advanced clock, and it runs (a real millisecond passes on it).
        assert!(
            Instant::now() >= resumed,
            "a second resume set the clock back"
        );
        sleep(Duration::from_millis(1)).await;
        assert!(Instant::now() - resumed >= Duration::from_millis(1));
        assert!(!time::is_paused());
    });
}

/// `Sleep`: "It completes once per deadline: polled again afterwards it stays ready until
/// `reset`", and it is terminated until a reset arms it again.
#[overlap::test(start_paused = true)]
async fn a_completed_sleep_polled_again_stays_ready_until_reset() {
    let start = Instant::now();
    let mut s = pin!(sleep(Duration::from_secs(2)));
    s.as_mut().await;
    assert_eq!(Instant::now() - start, Duration::from_secs(2));
    assert!(s.is_terminated() && s.is_elapsed());
    for _ in 0..3 {
        assert!(futures_util::poll!(s.as_mut()).is_ready());
    }
    assert_eq!(
        Instant::now() - start,
        Duration::from_secs(2),
        "clock moved"
    );
    s.as_mut().reset(start + Duration::from_secs(5));
    assert!(!s.is_terminated() && !s.is_elapsed());
    assert!(futures_util::poll!(s.as_mut()).is_pending());
    s.as_mut().await;
    assert_eq!(Instant::now() - start, Duration::from_secs(5));
}

/// `timeout`: the future is polled first, then a deadline already past "completes at that
/// poll": `Duration::ZERO` around a pending future is `Err(Elapsed)` without the clock
/// moving. `Timeout::deadline` is `now` for zero, and for `Duration::MAX` an instant that
/// never comes, which the timeout then never reaches.
#[overlap::test(start_paused = true)]
async fn timeout_deadlines_for_zero_and_max_and_a_zero_timeout_expires_at_its_first_poll() {
    let start = Instant::now();
    let zero = timeout(Duration::ZERO, pending::<()>());
    assert_eq!(zero.deadline(), start);
    let polled = Rc::new(Cell::new(0));
    let p = polled.clone();
    let counted = poll_fn(move |_| {
        p.set(p.get() + 1);
        Poll::<()>::Pending
    });
    assert!(zero.await.is_err());
    assert!(timeout(Duration::ZERO, counted).await.is_err());
    assert_eq!(
        polled.get(),
        1,
        "the future was not polled before the clock was read"
    );
    assert_eq!(Instant::now(), start, "a zero timeout waited");

    let endless = timeout(Duration::MAX, pending::<()>().fuse());
    let far = endless.deadline() - start;
    assert!(far > Duration::from_secs(86_400 * 365 * 500), "{far:?}");
    let mut endless = pin!(endless);
    assert!(futures_util::poll!(endless.as_mut()).is_pending());
    advance(Duration::from_secs(86_400 * 365 * 100)).await;
    assert!(futures_util::poll!(endless.as_mut()).is_pending());
    assert!(!endless.is_terminated());
}

/// `Instant`: `-` and `saturating_duration_since` are zero when the other instant is
/// later, `checked_duration_since` is `None` then; `elapsed` of an instant ahead of the
/// clock is zero; `checked_add`/`checked_sub` are `None` where `+`/`-` would panic.
#[overlap::test(start_paused = true)]
async fn instant_arithmetic_saturates_or_says_none_and_plus_panics_past_the_range() {
    let now = Instant::now();
    let later = now + Duration::from_secs(3);
    assert_eq!(now - later, Duration::ZERO);
    assert_eq!(now.saturating_duration_since(later), Duration::ZERO);
    assert_eq!(now.checked_duration_since(later), None);
    assert_eq!(later.duration_since(now), Duration::from_secs(3));
    assert_eq!(later.elapsed(), Duration::ZERO, "not reached yet");
    advance(Duration::from_secs(4)).await;
    assert_eq!(later.elapsed(), Duration::from_secs(1));
    assert_eq!(now.checked_add(Duration::MAX), None);
    assert_eq!(now.checked_sub(Duration::MAX), None);
    assert_eq!(
        later.checked_sub(Duration::from_secs(3)),
        Some(now),
        "checked_sub lost the instant"
    );
    let overflow = std::panic::catch_unwind(|| now + Duration::MAX);
    assert!(overflow.is_err(), "+ past the range did not panic");
}
