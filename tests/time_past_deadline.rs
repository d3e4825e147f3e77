//! A deadline already past completes at the timer's first poll, also in a fresh or idle
//! runtime and beside far-away timers (the wheel's own idea of "now" only moves when timers
//! fire, so it used to file such a deadline as a future one and answer `Pending`).

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use overlap::time::{interval, sleep, sleep_until, Instant};
use overlap::Runtime;

/// Polls `fut` once, in the current task.
async fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    poll_fn(|cx| Poll::Ready(Pin::new(&mut *fut).poll(cx))).await
}

#[test]
fn a_zero_sleep_and_a_first_interval_tick_are_ready_at_once_in_an_idle_runtime() {
    let rt = Runtime::new().unwrap();
    // The runtime has read no clock for a while.
    std::thread::sleep(Duration::from_millis(5));
    rt.block_on(async {
        let mut zero = sleep(Duration::ZERO);
        assert!(poll_once(&mut zero).await.is_ready());
        let mut every = interval(Duration::from_secs(1));
        let first = poll_fn(|cx| Poll::Ready(every.poll_tick(cx))).await;
        assert!(first.is_ready(), "the first tick was Pending");
    });
}

#[test]
fn a_past_deadline_is_ready_at_once_while_a_far_timer_waits() {
    overlap::block_on(async {
        let mut far = Box::pin(sleep(Duration::from_secs(3600)));
        assert!(poll_once(&mut far).await.is_pending());
        // The wheel's own "now" stays where the far timer was filed.
        std::thread::sleep(Duration::from_millis(100));
        // The deadline is read from the clock before the loop turns and reads it: past for
        // the loop however long this thread is preempted after the turn (past that gap, the
        // documented exception would let a deadline read later answer `Pending`), and 50 ms
        // after the far timer was filed.
        let deadline = Instant::now() - Duration::from_millis(50);
        overlap::yield_now().await;
        let mut past = sleep_until(deadline);
        assert!(poll_once(&mut past).await.is_ready());
        assert_eq!(
            overlap::metrics().timers_active,
            1,
            "only the far timer is registered"
        );
    });
}
