//! Timers: [`sleep`], [`timeout`] and [`interval`], on [`std::time::Instant`].
//!
//! Every runtime keeps its timers in a hierarchical timing wheel (O(1) to register and to
//! cancel) that remembers each deadline to the nanosecond. The event loop sleeps in
//! `epoll_pwait2` until exactly the next deadline, so timers fire with sub-millisecond
//! precision; where `epoll_pwait2` is missing the wait is rounded *up* to the millisecond.
//!
//! Guarantees:
//!
//! - **Never early.** A timer fires at or after its deadline, and due timers fire in deadline
//!   order. A deadline already past when the timer is first polled completes at that poll;
//!   the one exception is a loop that has run tasks for over a millisecond since it last
//!   read the clock (it reads it once per turn, not per timer), where such a timer completes
//!   at the loop's next turn.
//! - **Precise, with a little slack for crowds.** A timer may fire up to 1/256 of its
//!   duration late, and never more than 1 ms, so that timers due close together share one
//!   wakeup, much as Linux does for `poll` timeouts: a lone timer fires on time, a
//!   `sleep(1ms)` crowded by others has 4 µs of slack, a one-second timeout 1 ms. Each wakeup
//!   fires every timer already due.
//! - **Cancellation is dropping.** Dropping a [`Sleep`], [`Timeout`] or [`Interval`] removes its
//!   timer at once, in O(1); `overlap::metrics().timers_active` counts the timers registered
//!   now.
//! - **Any duration.** Deadlines too far ahead to represent (say `Duration::MAX`) never fire
//!   and never panic.
//! - **Busy runtimes still fire.** The loop looks at its timers every few task polls, however
//!   many tasks are ready.
//!
//! To reach that precision a runtime lowers its thread's *timer slack* (the time Linux may add
//! to a sleeping thread's wakeups to merge them, 50 µs by default) to 1 ns once it registers a
//! timer, and restores it when the last runtime on the thread is dropped.
//!
//! Timers are registered when first polled, with the runtime polling them; polling one
//! outside a runtime panics.
//!
//! ```
//! use std::time::Duration;
//! use overlap::time::{sleep, timeout};
//!
//! overlap::block_on(async {
//!     let slow = sleep(Duration::from_secs(60));
//!     let res = timeout(Duration::from_millis(1), slow).await;
//!     assert!(res.is_err());
//! });
//! ```

mod driver;
mod interval;
mod sleep;
mod timeout;
mod wheel;

pub(crate) use driver::Timers;
pub use interval::{interval, interval_at, Interval, MissedTickBehavior};
pub use sleep::{sleep, sleep_until, Sleep};
pub use timeout::{timeout, timeout_at, Elapsed, Timeout};

/// std's clock types, re-exported so that deadlines need no extra import.
pub use std::time::{Duration, Instant};

/// `now + d`, or an instant so far ahead it is never reached if that overflows.
pub(crate) fn deadline_after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d).unwrap_or_else(far_future)
}

/// An instant so far ahead it is never reached (about 30 years from now).
pub(crate) fn far_future() -> Instant {
    let now = Instant::now();
    now.checked_add(Duration::from_secs(86_400 * 365 * 30))
        .unwrap_or(now)
}
