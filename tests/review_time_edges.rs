//! The paused clock at the edges of its range: `advance(Duration::MAX)` moves the clock, and
//! fires the timers due, however far the clock has been advanced already (it used to stop at
//! a fixed "never" instant a thousand years after the process first used the clock, so once
//! past that it did not move at all); an endless sleep first polled after such an advance
//! completes, as the module docs say.

mod support;

use std::time::Duration;

use overlap::time::{self, advance, sleep};

const YEAR: Duration = Duration::from_secs(86_400 * 365);

#[overlap::test(start_paused = true)]
async fn advance_by_duration_max_fires_a_timer_set_after_the_clock_moved_millennia_ahead() {
    advance(YEAR * 1200).await;
    let start = time::now();
    let hour = overlap::spawn(sleep(Duration::from_secs(3600)));
    support::settle().await;
    advance(Duration::MAX).await;
    assert!(time::now() > start, "the clock did not move");
    assert!(hour.is_finished(), "the hour did not pass");
}

/// A timer that never fires (`sleep(Duration::MAX)`), still pending when the clock is
/// advanced past the range of the runtime's timers, used to keep every later timer from
/// firing: the timers' base could only move with no timer left at all, so each new deadline
/// also fell past the range and counted as never coming, and the auto-advance, with nothing
/// it could reach, waited for ever. (The paused clock moves a `within` guard's timer too, so
/// a real-time watchdog guards against the hang.)
#[overlap::test(start_paused = true)]
async fn a_pending_endless_sleep_does_not_stop_later_timers_once_advanced_past_the_range() {
    let done = support::watchdog(30);
    let endless = overlap::spawn(sleep(Duration::MAX));
    support::settle().await;
    advance(Duration::MAX).await;
    assert!(!endless.is_finished(), "a sleep that never ends ended");
    sleep(Duration::from_secs(1)).await;
    let hour = overlap::spawn(sleep(Duration::from_secs(3600)));
    support::settle().await;
    advance(Duration::from_secs(3600)).await;
    assert!(hour.is_finished(), "the hour did not pass");
    assert!(!endless.is_finished(), "a sleep that never ends ended");
    assert_eq!(
        overlap::metrics().timers_active,
        1,
        "only the endless sleep is left"
    );
    endless.abort();
    assert!(endless.await.unwrap_err().is_cancelled());
    assert_eq!(overlap::metrics().timers_active, 0);
    // With the endless sleep gone, nothing left counts as never firing: a timer registered
    // now is one the auto-advance reaches.
    sleep(Duration::from_secs(86_400)).await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// The same with the clock moved past the range in two steps, the endless sleep's own
/// instant still ahead of it at each: the base moves at the first step (the endless deadline
/// then lying past the new range too), so a second sleep after the second step still fires.
#[overlap::test(start_paused = true)]
async fn an_endless_sleep_still_ahead_of_the_clock_does_not_stop_later_timers() {
    let done = support::watchdog(30);
    let endless = overlap::spawn(sleep(Duration::MAX));
    support::settle().await;
    advance(YEAR * 350).await;
    sleep(Duration::from_secs(1)).await;
    advance(YEAR * 300).await;
    sleep(Duration::from_secs(1)).await;
    let hour = overlap::spawn(sleep(Duration::from_secs(3600)));
    support::settle().await;
    advance(Duration::from_secs(3600)).await;
    assert!(hour.is_finished(), "the hour did not pass");
    assert!(!endless.is_finished(), "a sleep that never ends ended");
    endless.abort();
    assert!(endless.await.unwrap_err().is_cancelled());
    assert_eq!(overlap::metrics().timers_active, 0);
    done.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// A timer is set when its future is first polled (the module docs): a `sleep(Duration::MAX)`
/// made but not yet polled when the clock is advanced by `Duration::MAX` has an instant the
/// clock has reached by then (the advance goes exactly that far), and completes at its first poll, where one polled before the
/// advance never does.
#[overlap::test(start_paused = true)]
async fn an_endless_sleep_first_polled_after_the_clock_passed_its_instant_completes() {
    let polled_before = overlap::spawn(sleep(Duration::MAX));
    support::settle().await;
    let made_before = sleep(Duration::MAX);
    assert!(!made_before.is_elapsed());
    advance(Duration::MAX).await;
    assert!(
        time::now() >= made_before.deadline(),
        "the clock did not reach its instant"
    );
    assert!(
        made_before.is_elapsed(),
        "unpolled, it is due by its instant"
    );
    made_before.await;
    support::settle().await;
    assert!(
        !polled_before.is_finished(),
        "a registered endless sleep ended"
    );
    polled_before.abort();
}
