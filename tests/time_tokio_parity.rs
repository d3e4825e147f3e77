//! `overlap::time` against tokio's documented behaviour, on a paused clock (exact virtual
//! instants): where an audit found overlap disagreeing with tokio, or with itself.

mod support;

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::Poll;
use std::time::Duration;

use overlap::time::{self, advance, interval, sleep, MissedTickBehavior, Sleep};

/// Polls `sleep` once from the current task.
async fn poll_once(mut sleep: Pin<&mut Sleep>) -> Poll<()> {
    poll_fn(|cx| Poll::Ready(sleep.as_mut().poll(cx))).await
}

/// A `Duration::MAX` sleep never completes, not even once a paused clock has been advanced
/// past its instant (see the module docs of `overlap::time`). `is_elapsed` said it had
/// elapsed all the same (it compared the clock with the deadline), so a loop that checks
/// `is_elapsed` before awaiting the sleep believed a sleep done that would never wake it.
/// tokio's `is_elapsed` reports whether the timer fired.
#[overlap::test(start_paused = true)]
async fn a_sleep_that_never_completes_is_not_reported_elapsed() {
    // A sleep that can complete is elapsed once the clock reaches it, polled or not, and its
    // next poll completes.
    let mut hour = pin!(sleep(Duration::from_secs(3600)));
    assert!(poll_once(hour.as_mut()).await.is_pending());
    assert!(!hour.is_elapsed());
    advance(Duration::from_secs(3600)).await;
    assert!(hour.is_elapsed());
    assert!(poll_once(hour.as_mut()).await.is_ready());
    // One that never comes is never elapsed.
    let mut forever = pin!(sleep(Duration::MAX));
    assert!(poll_once(forever.as_mut()).await.is_pending());
    advance(Duration::MAX).await;
    assert!(
        poll_once(forever.as_mut()).await.is_pending(),
        "a deadline that never comes fired"
    );
    assert!(
        !forever.is_elapsed(),
        "is_elapsed() is true for a sleep that stays pending"
    );
}

/// The ticks of an interval of period 1 ms under `missed`, observed 3 ms after its first,
/// as offsets in µs from that first tick.
async fn short_period_ticks(missed: MissedTickBehavior) -> Vec<u128> {
    let start = time::now();
    let mut every = interval(Duration::from_millis(1));
    every.set_missed_tick_behavior(missed);
    assert_eq!(every.tick().await, start);
    advance(Duration::from_millis(3)).await;
    let mut ticks = Vec::new();
    for _ in 0..4 {
        ticks.push((every.tick().await - start).as_micros());
    }
    ticks
}

/// A documented difference from tokio (see `MissedTickBehavior`), pinned: with a period
/// under tokio's 5 ms margin, a tick observed late but within the margin while its
/// successors are due already makes `Skip` drop those successors and `Delay` restart the
/// schedule, where tokio fires them back to back as `Burst` does.
#[overlap::test(start_paused = true)]
async fn under_a_5ms_period_skip_and_delay_do_not_burst_within_the_margin() {
    let burst = short_period_ticks(MissedTickBehavior::Burst).await;
    assert_eq!(burst, [1000, 2000, 3000, 4000]);
    let skip = short_period_ticks(MissedTickBehavior::Skip).await;
    assert_eq!(skip, [1000, 4000, 5000, 6000]);
    let delay = short_period_ticks(MissedTickBehavior::Delay).await;
    assert_eq!(delay, [1000, 4000, 5000, 6000]);
}
