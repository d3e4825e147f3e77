//! The paused clock at the edges of its range: `advance(Duration::MAX)` moves the clock, and
//! fires the timers due, however far the clock has been advanced already (it used to stop at
//! a fixed "never" instant a thousand years after the process first used the clock, so once
//! past that it did not move at all).

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
