//! Behaviours of tokio's timer tests, ported to `overlap::time` on a paused clock (exact
//! virtual instants, no real waiting). Each group names the tokio file (tokio/tests/…) it
//! comes from:
//!
//! - `time_interval.rs`: the tick sequences of `Burst`, `Delay` and `Skip` around a late
//!   poll, `reset`, `reset_at` (nearer and farther than a period), a period of
//!   `Duration::MAX`;
//! - `time_sleep.rs`: `is_elapsed`, resets before and after firing (to the future and to
//!   the past), deadlines years ahead, a rescheduled timer dropped at its new instant;
//! - `time_timeout.rs`: a ready future wins at or past its deadline, a deadline of now
//!   elapses, an inner future completing before its deadline.
//!
//! Where tokio needs an extra millisecond for its timer's granularity, overlap's paused
//! clock fires at the exact instant: those expectations are exact here.

mod support;

use std::future::{pending, poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use overlap::sync::oneshot;
use overlap::time::{
    self, advance, interval, interval_at, sleep, sleep_until, timeout, timeout_at, Instant,
    Interval, MissedTickBehavior,
};
use support::ManualTask;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Polls one tick of `i` from `task`.
fn tick(task: &ManualTask, i: &mut Interval) -> Poll<Instant> {
    task.poll(Pin::new(&mut poll_fn(|cx| i.poll_tick(cx))))
}

/// The ticks ready now, as offsets in ms from `start`; then checks the next is pending.
fn ticks(task: &ManualTask, i: &mut Interval, start: Instant) -> Vec<u64> {
    let mut got = Vec::new();
    while let Poll::Ready(at) = tick(task, i) {
        got.push((at - start).as_millis() as u64);
        assert!(got.len() < 100, "an interval that never stops ticking");
    }
    got
}

// ---- time_interval.rs ----

/// tokio's schedule: period 300 ms, polled at +1, +101, +301, then late at +951 (two
/// ticks due), then on. Returns the ticks seen at each step.
async fn late_schedule(missed: MissedTickBehavior, steps: &[u64]) -> Vec<Vec<u64>> {
    let start = time::now();
    advance(ms(1)).await;
    let mut i = interval_at(start, ms(300));
    i.set_missed_tick_behavior(missed);
    let task = ManualTask::default();
    let mut seen = vec![ticks(&task, &mut i, start)];
    for &step in steps {
        advance(ms(step)).await;
        seen.push(ticks(&task, &mut i, start));
    }
    seen
}

#[overlap::test(start_paused = true)]
async fn burst_fires_the_missed_ticks_back_to_back_and_keeps_the_schedule() {
    let seen = late_schedule(
        MissedTickBehavior::Burst,
        &[100, 200, 650, 200, 100, 250, 300],
    )
    .await;
    let want: [&[u64]; 8] = [
        &[0],
        &[],
        &[300],
        &[600, 900],
        &[],
        &[1200],
        &[1500],
        &[1800],
    ];
    assert_eq!(seen, want);
}

#[overlap::test(start_paused = true)]
async fn delay_restarts_the_schedule_a_period_after_the_late_tick() {
    let seen = late_schedule(MissedTickBehavior::Delay, &[100, 200, 650, 299, 1, 300]).await;
    // Observed at 951: the next is one period later, 1251, and on from there.
    let want: [&[u64]; 7] = [&[0], &[], &[300], &[600], &[], &[1251], &[1551]];
    assert_eq!(seen, want);
}

#[overlap::test(start_paused = true)]
async fn skip_drops_the_missed_tick_and_keeps_the_phase() {
    let seen = late_schedule(MissedTickBehavior::Skip, &[100, 200, 650, 248, 1, 300]).await;
    let want: [&[u64]; 7] = [&[0], &[], &[300], &[600], &[], &[1200], &[1500]];
    assert_eq!(seen, want);
}

#[overlap::test(start_paused = true)]
async fn skip_also_drops_a_tick_due_exactly_when_the_late_one_is_seen() {
    // The tick of 300 is seen at 600, a whole period late: as on tokio, the tick of 600
    // is skipped too (the next multiple strictly after now), not fired at once.
    let seen = late_schedule(MissedTickBehavior::Skip, &[599, 300]).await;
    let want: [&[u64]; 3] = [&[0], &[300], &[900]];
    assert_eq!(seen, want);
    // Within the 5 ms margin a tick is merely a little late: the next keeps the schedule,
    // as on tokio, even when the period is shorter than the margin.
    let start = time::now();
    let mut fast = interval_at(start, ms(2));
    let task = ManualTask::default();
    assert_eq!(ticks(&task, &mut fast, start), [0]);
    advance(ms(4)).await;
    assert_eq!(ticks(&task, &mut fast, start), [2, 4]);
}

#[overlap::test(start_paused = true)]
async fn reset_reset_at_and_reset_after_move_the_next_tick_and_keep_the_period() {
    let start = time::now();
    advance(ms(1)).await;
    let task = ManualTask::default();
    let mut i = interval_at(start, ms(300));
    assert_eq!(ticks(&task, &mut i, start), [0]);
    advance(ms(300)).await;
    assert_eq!(ticks(&task, &mut i, start), [300]);
    advance(ms(100)).await; // at 401
    assert_eq!(ticks(&task, &mut i, start), [] as [u64; 0]);

    i.reset(); // next at 701
    advance(ms(299)).await;
    assert_eq!(ticks(&task, &mut i, start), [] as [u64; 0]);
    advance(ms(1)).await;
    assert_eq!(ticks(&task, &mut i, start), [701]);

    i.reset_at(time::now() + ms(40)); // sooner than a period: 741
    advance(ms(39)).await;
    assert_eq!(ticks(&task, &mut i, start), [] as [u64; 0]);
    advance(ms(1)).await;
    assert_eq!(ticks(&task, &mut i, start), [741]);
    advance(ms(300)).await;
    assert_eq!(ticks(&task, &mut i, start), [1041]);

    i.reset_at(time::now() + ms(1000)); // farther than a period: 2041
    for _ in 0..3 {
        advance(ms(300)).await;
        assert_eq!(ticks(&task, &mut i, start), [] as [u64; 0]);
    }
    advance(ms(100)).await;
    assert_eq!(ticks(&task, &mut i, start), [2041]);
    advance(ms(300)).await;
    assert_eq!(ticks(&task, &mut i, start), [2341]);

    i.reset_after(ms(5));
    advance(ms(5)).await;
    assert_eq!(ticks(&task, &mut i, start), [2346]);
    i.reset_immediately();
    assert_eq!(ticks(&task, &mut i, start), [2346]);
    advance(ms(300)).await;
    assert_eq!(ticks(&task, &mut i, start), [2646]);
    assert_eq!(i.period(), ms(300));
}

#[overlap::test(start_paused = true)]
async fn a_waiting_tick_is_woken_at_its_instant() {
    let start = time::now();
    let mut i = interval(ms(10));
    let task = ManualTask::default();
    assert_eq!(ticks(&task, &mut i, start), [0]);
    advance(ms(9)).await;
    assert!(!task.is_woken());
    advance(ms(1)).await;
    assert!(task.is_woken());
    assert_eq!(ticks(&task, &mut i, start), [10]);
}

#[overlap::test(start_paused = true)]
async fn a_period_of_duration_max_ticks_once_then_waits_forever() {
    let mut i = interval(Duration::MAX);
    let task = ManualTask::default();
    assert!(tick(&task, &mut i).is_ready());
    assert!(tick(&task, &mut i).is_pending());
    advance(Duration::from_secs(86400 * 365 * 100)).await;
    assert!(tick(&task, &mut i).is_pending());
}

// ---- time_sleep.rs ----

#[overlap::test(start_paused = true)]
async fn a_sleep_until_now_is_ready_without_the_clock_moving() {
    let now = time::now();
    sleep_until(now).await;
    sleep_until(now - ms(5)).await;
    sleep(Duration::ZERO).await;
    assert_eq!(time::now(), now);
}

#[overlap::test(start_paused = true)]
async fn is_elapsed_turns_true_at_the_deadline() {
    let mut s = Box::pin(sleep(ms(10)));
    assert!(!s.is_elapsed());
    assert!(ManualTask::default().poll(s.as_mut()).is_pending());
    assert!(!s.is_elapsed());
    s.as_mut().await;
    assert!(s.is_elapsed());
}

#[overlap::test(start_paused = true)]
async fn a_sleep_reset_before_it_fires_completes_at_the_new_deadline() {
    for new in [200, 80] {
        let now = time::now();
        let mut s = Box::pin(sleep_until(now + ms(100)));
        assert!(ManualTask::default().poll(s.as_mut()).is_pending());
        s.as_mut().reset(time::now() + ms(new));
        s.await;
        assert_eq!(time::now() - now, ms(new));
    }
    // Reset to 80 ms once 10 ms went by on another timer.
    let now = time::now();
    let mut s = Box::pin(sleep_until(now + ms(100)));
    assert!(ManualTask::default().poll(s.as_mut()).is_pending());
    sleep(ms(10)).await;
    s.as_mut().reset(now + ms(80));
    s.await;
    assert_eq!(time::now() - now, ms(80));
}

#[overlap::test(start_paused = true)]
async fn a_sleep_reset_after_it_fired_sleeps_again() {
    let now = time::now();
    let mut s = Box::pin(sleep_until(now + ms(100)));
    let first = s.deadline();
    s.as_mut().await;
    assert_eq!(time::now() - now, ms(100));
    let task = ManualTask::default();
    assert!(task.poll(s.as_mut()).is_ready(), "stays ready until reset");
    s.as_mut().reset(now + ms(110));
    assert_ne!(s.deadline(), first);
    assert!(!s.is_elapsed());
    assert!(task.poll(s.as_mut()).is_pending());
    assert!(task.poll(s.as_mut()).is_pending());
    s.await;
    assert_eq!(time::now() - now, ms(110));
}

#[overlap::test(start_paused = true)]
async fn a_sleep_reset_into_the_past_is_ready_at_its_next_poll() {
    let now = time::now();
    let task = ManualTask::default();
    let mut s = Box::pin(sleep_until(now + ms(100)));
    assert!(task.poll(s.as_mut()).is_pending());
    sleep(ms(50)).await;
    assert!(!task.is_woken());
    s.as_mut().reset(now + ms(40));
    assert!(task.poll(s.as_mut()).is_ready());
    assert_eq!(time::now() - now, ms(50));
}

#[overlap::test(start_paused = true)]
async fn deadlines_years_ahead_fire_at_their_instant() {
    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);
    let start = time::now();
    for _ in 0..5 {
        sleep(YEAR).await;
    }
    assert_eq!(time::now() - start, YEAR * 5);
    let deadline = time::now() + YEAR * 10;
    sleep_until(deadline).await;
    assert_eq!(time::now(), deadline);
    // tokio's wheel limit (2^36 - 1 ms), and one less: no special case here either.
    let max = ms((1 << 36) - 1);
    for d in [max, max - ms(1)] {
        let at = time::now();
        sleep(d).await;
        assert_eq!(time::now() - at, d);
    }
}

#[overlap::test(start_paused = true)]
async fn a_huge_sleep_loses_to_a_nanosecond_one() {
    let big = Duration::from_secs(u64::MAX / 10);
    let start = time::now();
    let won = overlap::select! {
        _ = sleep(big) => "big",
        _ = sleep(Duration::from_nanos(1)) => "tiny",
    };
    assert_eq!(won, "tiny");
    assert_eq!(time::now() - start, Duration::from_nanos(1));
}

#[overlap::test(start_paused = true)]
async fn a_timer_rescheduled_onto_another_ones_instant_is_dropped_cleanly() {
    let start = time::now();
    let mut a = Box::pin(sleep(ms(5)));
    let mut b = Box::pin(sleep(ms(5)));
    let mut c = Box::pin(sleep(ms(10)));
    let task = ManualTask::default();
    for s in [&mut a, &mut b, &mut c] {
        assert!(task.poll(s.as_mut()).is_pending());
    }
    b.as_mut().reset(start + ms(10));
    a.await;
    drop(b);
    c.await;
    assert_eq!(time::now() - start, ms(10));
}

// ---- time_timeout.rs ----

#[overlap::test(start_paused = true)]
async fn a_ready_future_wins_at_or_past_its_deadline() {
    let task = ManualTask::default();
    let now = time::now();
    assert_eq!(
        task.poll(std::pin::pin!(timeout_at(now, async { 1 }))),
        Poll::Ready(Ok(1))
    );
    let past = timeout_at(now - ms(1000), async { 2 });
    assert_eq!(task.poll(std::pin::pin!(past)), Poll::Ready(Ok(2)));
    let zero = timeout(Duration::ZERO, async { 3 });
    assert_eq!(task.poll(std::pin::pin!(zero)), Poll::Ready(Ok(3)));
}

#[overlap::test(start_paused = true)]
async fn a_deadline_of_now_or_zero_elapses_at_the_first_poll() {
    let task = ManualTask::default();
    let now = timeout_at(time::now(), pending::<()>());
    assert!(matches!(
        task.poll(std::pin::pin!(now)),
        Poll::Ready(Err(_))
    ));
    let zero = timeout(Duration::ZERO, pending::<()>());
    assert!(matches!(
        task.poll(std::pin::pin!(zero)),
        Poll::Ready(Err(_))
    ));
}

#[overlap::test(start_paused = true)]
async fn a_future_deadline_wakes_and_elapses_at_its_instant() {
    let task = ManualTask::default();
    let mut t = Box::pin(timeout_at(time::now() + ms(300), pending::<()>()));
    assert_eq!(t.deadline() - time::now(), ms(300));
    assert!(task.poll(t.as_mut()).is_pending());
    advance(ms(299)).await;
    assert!(!task.is_woken());
    assert!(task.poll(t.as_mut()).is_pending());
    advance(ms(1)).await;
    assert!(task.is_woken());
    assert!(matches!(task.poll(t.as_mut()), Poll::Ready(Err(_))));
}

#[overlap::test(start_paused = true)]
async fn an_inner_future_finishing_in_time_wakes_the_timeout() {
    for (make, label) in [(0u64, "timeout_at"), (1, "timeout"), (2, "Duration::MAX")] {
        let (tx, rx) = oneshot::channel::<u8>();
        let mut t: Pin<Box<dyn Future<Output = _>>> = match make {
            0 => Box::pin(timeout_at(time::now() + ms(100), rx)),
            1 => Box::pin(timeout(ms(100), rx)),
            _ => Box::pin(timeout(Duration::MAX, rx)),
        };
        let task = ManualTask::default();
        assert!(task.poll(t.as_mut()).is_pending(), "{label}");
        advance(if make == 2 {
            Duration::from_secs(86400 * 3650)
        } else {
            ms(90)
        })
        .await;
        assert!(task.poll(t.as_mut()).is_pending(), "{label}");
        tx.send(7).unwrap();
        assert!(task.is_woken(), "{label}");
        assert!(
            matches!(task.poll(t.as_mut()), Poll::Ready(Ok(Ok(7)))),
            "{label}"
        );
    }
}
