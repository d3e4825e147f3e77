//! `interval` and `interval_at` under each missed-tick policy, and restarting the schedule
//! (`reset_immediately`, `reset_after`: on a paused clock, so exact).

mod support;

use std::time::Duration;

use overlap::time::{interval, interval_at, Instant, MissedTickBehavior};

const P: Duration = Duration::from_millis(20);

/// Ticks once at `start`, then blocks the whole thread (so ticks are missed) until 3.5
/// periods after `start`, then returns the second tick and when it was observed.
async fn second_tick_late(
    every: &mut overlap::time::Interval,
    start: Instant,
) -> (Instant, Instant) {
    assert_eq!(every.tick().await, start);
    let until = start + P * 7 / 2;
    std::thread::sleep(until.saturating_duration_since(Instant::now()));
    let second = every.tick().await;
    (second, Instant::now())
}

fn is_multiple_of_period(d: Duration) -> bool {
    d.as_nanos() % P.as_nanos() == 0
}

#[test]
fn skip_is_the_default() {
    overlap::block_on(async {
        assert_eq!(MissedTickBehavior::default(), MissedTickBehavior::Skip);
        assert_eq!(interval(P).missed_tick_behavior(), MissedTickBehavior::Skip);
        assert_eq!(interval(P).period(), P);
    });
}

#[test]
fn ticks_on_schedule_and_never_early() {
    overlap::block_on(async {
        let start = Instant::now() + Duration::from_millis(1);
        let mut every = interval_at(start, Duration::from_millis(2));
        let mut prev = None;
        for _ in 0..10 {
            let at = every.tick().await;
            assert!(Instant::now() >= at, "tick observed before it was due");
            assert_eq!((at - start).as_nanos() % 2_000_000, 0);
            if let Some(prev) = prev {
                assert!(at > prev);
            }
            prev = Some(at);
        }
    });
}

/// On the paused clock, so that "at once" is exact: with real time, a test thread stalled
/// for a period between two ticks that were both due already looked like a tick waited for.
#[overlap::test(start_paused = true)]
async fn burst_fires_every_missed_tick_at_once() {
    let start = Instant::now();
    let mut every = interval_at(start, P);
    every.set_missed_tick_behavior(MissedTickBehavior::Burst);
    assert_eq!(every.tick().await, start);
    // Busy until 3.5 periods after `start`: the ticks at P, 2P and 3P are missed.
    overlap::time::advance(P * 7 / 2).await;
    assert_eq!(every.tick().await, start + P);
    // The missed ticks come back to back, with their scheduled instants: no timer is waited
    // for (auto-advance would move the paused clock to its deadline).
    let before = Instant::now();
    assert_eq!(every.tick().await, start + P * 2);
    assert_eq!(every.tick().await, start + P * 3);
    assert_eq!(
        Instant::now(),
        before,
        "missed ticks were not fired at once"
    );
    // Then the schedule resumes.
    let next = every.tick().await;
    assert!(next >= start + P * 4 && is_multiple_of_period(next - start));
    assert!(Instant::now() >= next);
}

#[test]
fn delay_restarts_the_schedule_from_the_late_tick() {
    overlap::block_on(async {
        let start = Instant::now();
        let mut every = interval_at(start, P);
        every.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let (second, seen) = second_tick_late(&mut every, start).await;
        assert_eq!(second, start + P);
        let third = every.tick().await;
        // One period after the late tick was observed (just before `seen`), not on the grid.
        assert!(third >= start + P * 7 / 2 + P && third <= seen + P);
        assert!(Instant::now() >= third);
        let fourth = every.tick().await;
        assert!(fourth >= third + P);
    });
}

#[test]
fn skip_drops_missed_ticks_and_keeps_the_phase() {
    overlap::block_on(async {
        let start = Instant::now();
        let mut every = interval_at(start, P);
        assert_eq!(every.missed_tick_behavior(), MissedTickBehavior::Skip);
        let (second, seen) = second_tick_late(&mut every, start).await;
        assert_eq!(second, start + P);
        let third = every.tick().await;
        // The next multiple of the period after the late observation: 4P (or later if the
        // machine stalled even more).
        assert!(third >= start + P * 4 && third <= seen + P);
        assert!(is_multiple_of_period(third - start));
        assert!(Instant::now() >= third);
    });
}

#[test]
fn reset_and_odd_periods() {
    overlap::block_on(async {
        let mut every = interval(Duration::from_nanos(1));
        assert_eq!(every.period(), Duration::from_nanos(1));
        for _ in 0..100 {
            every.tick().await;
        }
        let mut huge = interval(Duration::MAX);
        huge.tick().await;
        huge.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let before = Instant::now();
        let mut every = interval(P);
        every.tick().await;
        every.reset();
        let next = every.tick().await;
        assert!(next >= before + P && Instant::now() >= next);
        drop(huge);
        drop(every);
        assert_eq!(overlap::metrics().timers_active, 0);
    });
}

#[overlap::test(start_paused = true)]
async fn reset_immediately_ticks_now_then_every_period_from_there() {
    let hour = Duration::from_secs(3600);
    let mut every = interval(hour);
    let start = every.tick().await;
    overlap::time::advance(Duration::from_secs(10)).await;
    every.reset_immediately();
    let reset = Instant::now();
    assert_eq!(reset, start + Duration::from_secs(10));
    assert_eq!(every.tick().await, reset, "not an hour's wait");
    assert_eq!(Instant::now(), reset);
    assert_eq!(every.tick().await, reset + hour);
    assert_eq!(Instant::now(), reset + hour);
}

#[overlap::test(start_paused = true)]
async fn reset_after_moves_the_next_tick_and_keeps_the_period() {
    use overlap::future::FutureExt;
    let p = Duration::from_secs(10);
    let mut every = interval(p);
    let start = every.tick().await;
    // A tick already being waited for sees the reset when polled again.
    assert!(every.tick().now_or_never().is_none());
    every.reset_after(Duration::from_secs(3));
    assert_eq!(every.tick().await, start + Duration::from_secs(3));
    assert_eq!(every.tick().await, start + Duration::from_secs(13));
    // Later than a period too.
    every.reset_after(Duration::from_secs(25));
    let at = Instant::now();
    assert_eq!(every.tick().await, at + Duration::from_secs(25));
    assert_eq!(every.tick().await, at + Duration::from_secs(35));
}

/// tokio's rule: a tick observed more than 5 ms late restarts a `Delay` schedule even when
/// the next tick is not due yet, so ticks are observed at least a period apart.
#[overlap::test(start_paused = true)]
async fn delay_restarts_after_a_tick_late_by_less_than_a_period() {
    let period = Duration::from_millis(100);
    let ms = Duration::from_millis;
    let start = Instant::now();
    let mut every = interval_at(start, period);
    every.set_missed_tick_behavior(MissedTickBehavior::Delay);
    assert_eq!(every.tick().await, start);
    // The tick due at 100 ms is observed at 150 ms: the next one comes at 250 ms.
    overlap::time::advance(ms(150)).await;
    assert_eq!(every.tick().await, start + ms(100));
    assert_eq!(every.tick().await, start + ms(250));
    assert_eq!(Instant::now(), start + ms(250));
    // Observed 3 ms late (within the margin for a late timer): the schedule holds.
    overlap::time::advance(ms(103)).await;
    assert_eq!(every.tick().await, start + ms(350));
    assert_eq!(every.tick().await, start + ms(450));
}

/// The panic message of `f`, which must panic.
fn panic_message(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
    support::panic_message(std::panic::catch_unwind(f).expect_err("a zero period was accepted"))
}

#[test]
fn a_zero_period_panics_as_in_tokio() {
    // Before: a zero period was taken as 1 ns, an interval that ticks in a busy loop.
    let message = panic_message(|| {
        overlap::block_on(async {
            interval(Duration::ZERO);
        })
    });
    assert!(message.contains("period must be non-zero"), "{message}");
    let message = panic_message(|| {
        overlap::block_on(async {
            interval_at(Instant::now(), Duration::ZERO);
        })
    });
    assert!(message.contains("period must be non-zero"), "{message}");
    // The runtime that saw the panic is gone; a new one works, and the smallest period and a
    // zero `reset_after` (one tick now, not a period) are fine.
    overlap::block_on(async {
        let mut every = interval(Duration::from_nanos(1));
        every.tick().await;
        every.reset_after(Duration::ZERO);
        every.tick().await;
        assert_eq!(every.period(), Duration::from_nanos(1));
    });
}

#[test]
#[should_panic(expected = "period must be non-zero")]
fn a_zero_period_panics_outside_a_runtime_too() {
    let _ = interval_at(Instant::now(), Duration::ZERO);
}
