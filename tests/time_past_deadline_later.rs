//! A deadline already past completes at the timer's first poll (module docs of
//! `overlap::time`), also in a runtime that holds some timer and sat idle between two
//! `block_on` calls (its loop had not read the clock since the previous call), and after a
//! registered `Sleep` is reset into the past.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use overlap::time::{interval, sleep, sleep_until, Instant};
use overlap::Runtime;

async fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    poll_fn(|cx| Poll::Ready(Pin::new(&mut *fut).poll(cx))).await
}

fn runtime_with_a_far_timer() -> Runtime {
    let rt = Runtime::new().unwrap();
    // Some long-lived timer, as any server has (an idle timeout, a periodic job).
    rt.spawn(sleep(Duration::from_secs(3600)));
    rt.block_on(async {
        overlap::yield_now().await;
        overlap::yield_now().await;
    });
    assert_eq!(rt.metrics().timers_active, 1);
    rt
}

#[test]
fn a_zero_sleep_is_ready_at_its_first_poll_in_the_next_block_on() {
    let rt = runtime_with_a_far_timer();
    // The thread does something else between two calls.
    std::thread::sleep(Duration::from_millis(30));
    // Made before the `block_on`, so its deadline is before the loop's clock reading there:
    // made inside, a thread preempted for over a millisecond after that reading would meet
    // the documented exception instead.
    let mut zero = sleep(Duration::ZERO);
    rt.block_on(async {
        assert!(
            poll_once(&mut zero).await.is_ready(),
            "sleep(ZERO) was Pending at its first poll (loop clock stale since the last block_on)"
        );
    });
}

#[test]
fn a_deadline_past_by_20ms_is_ready_at_its_first_poll_in_the_next_block_on() {
    let rt = runtime_with_a_far_timer();
    std::thread::sleep(Duration::from_millis(30));
    // Read before the `block_on` reads the clock (see above).
    let deadline = Instant::now() - Duration::from_millis(20);
    rt.block_on(async {
        let mut past = sleep_until(deadline);
        assert!(
            poll_once(&mut past).await.is_ready(),
            "a deadline 20 ms past was Pending"
        );
    });
}

#[test]
fn the_first_interval_tick_is_ready_at_once_in_the_next_block_on() {
    let rt = runtime_with_a_far_timer();
    std::thread::sleep(Duration::from_millis(30));
    // Made before the `block_on` (see above): its first tick is due at once.
    let mut every = interval(Duration::from_secs(1));
    rt.block_on(async {
        let first = poll_fn(|cx| Poll::Ready(every.poll_tick(cx))).await;
        assert!(first.is_ready(), "the first tick was Pending");
    });
}

/// Same promise through `Sleep::reset`: a registered sleep reset to a deadline already past
/// stays `Pending` at its next poll (the timer is moved in the wheel and fires only at the
/// loop's next turn), while the very same deadline given to a fresh `sleep_until` is ready at
/// once. (tokio fires a timer reset into the past at once, so the next poll is ready.)
#[test]
fn a_registered_sleep_reset_into_the_past_is_ready_at_its_next_poll() {
    overlap::block_on(async {
        // Read before the loop's last clock reading (registering into an empty wheel reads
        // it), so the deadline is past for the loop however long this thread is preempted.
        let past = Instant::now() - Duration::from_millis(50);
        let mut s = Box::pin(sleep(Duration::from_secs(3600)));
        assert!(poll_once(&mut s).await.is_pending());
        let mut fresh = sleep_until(past);
        assert!(
            poll_once(&mut fresh).await.is_ready(),
            "control: a fresh past sleep is ready"
        );
        s.as_mut().reset(past);
        assert!(s.is_elapsed());
        assert!(
            poll_once(&mut s).await.is_ready(),
            "a sleep reset 50 ms into the past was still Pending at its next poll"
        );
    });
}
