//! Timers: [`sleep`], [`timeout`] and [`interval`], on the runtime's clock ([`Instant`]).
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
//! - **Any duration.** Deadlines too far ahead to represent, more than about 580 years after
//!   the runtime started (say `Duration::MAX`), never fire, not even when a [paused](pause)
//!   clock auto-advances or is advanced past them, and never panic. A paused clock advanced
//!   farther than that counts anew from where it stands once no timer is registered, so
//!   timers set from there fire as usual. A timer is set when its future is first polled: a
//!   `sleep(Duration::MAX)` made before such an advance and first polled after it has a
//!   deadline (its instant that "never" comes) the clock has reached, and completes.
//! - **Busy runtimes still fire.** The loop looks at its timers every few task polls, however
//!   many tasks are ready.
//!
//! To reach that precision a runtime lowers its thread's *timer slack* (the time Linux may add
//! to a sleeping thread's wakeups to merge them, 50 µs by default) to 1 ns once it registers a
//! timer, and restores it once the last runtime on the thread, and every timer registered
//! with it, is dropped (a `Sleep` that outlives its runtime keeps the slack low until it
//! goes).
//!
//! Timers are registered when first polled, with the runtime polling them; polling one
//! outside a runtime panics.
//!
//! # Paused time, for tests
//! [`pause`] freezes the current runtime's clock: timers then fire only when [`advance`]
//! moves it, or when the runtime has nothing else to do, when it jumps straight to the next
//! timer's deadline (*auto-advance*). A test of a 30-second timeout then takes no real time.
//! [`Builder::start_paused`](crate::Builder::start_paused) and
//! `#[overlap::test(start_paused = true)]` start a runtime paused. Auto-advance waits while
//! a [`spawn_blocking`](crate::spawn_blocking) job is running (its result is work to come),
//! but not for I/O: a paused runtime whose tasks all wait on sockets and timers jumps to the
//! next timer without waiting for the sockets. That holds for loopback too: a small write
//! made while the peer has not yet acknowledged the last one (a line a client trickles, say)
//! is held back by Nagle's algorithm until the peer's delayed ACK, real milliseconds away,
//! so the peer's `timeout` can expire first; `set_nodelay(true)` on the writing socket
//! sends it at once. The same goes for pipes, signals and child
//! processes (a `timeout` around `child.wait()` on a paused clock expires at once, as in
//! tokio): keep the clock running in tests that wait on the outside world. The paused clock drives overlap's timers,
//! [`Instant::now`] (this module's `Instant`, as [`now`]) and [`Instant::elapsed`];
//! `std::time::Instant` keeps real time. So build deadlines from this module's `Instant`
//! (`sleep_until(Instant::now() + d)`), not from `std::time::Instant::now()`: once a clock
//! has been paused the two differ by however far it was advanced, or held back, and keep
//! differing after [`resume`].
//!
//! The runtime's blocking jobs read its clock too, paused or not, as tokio's blocking
//! threads do: in a [`spawn_blocking`](crate::spawn_blocking) job (or a
//! [`Handle::spawn_blocking`](crate::Handle::spawn_blocking) one, or a future run by
//! [`Handle::block_on`](crate::Handle::block_on)), [`now`], [`Instant::now`] and
//! [`Instant::elapsed`] read the clock of the runtime that is
//! [`Handle::current`](crate::Handle::current) there, as it stands at that moment: an
//! [`advance`] made while the job runs shows in its next reading. Readings never go back,
//! whichever threads they are made on: one handed from a thread to another is never later
//! than a reading made there afterwards, across a pause, an advance or a resume. Any other
//! thread reads the real clock. A job cannot wait on the clock, though: a [`sleep`] made in
//! it counts its deadline from the paused clock, but, as every timer, must be polled by the
//! runtime (polled in the job, it panics, as outside a runtime), and a paused clock does not
//! auto-advance while a job runs, so a job waiting for a paused instant (through
//! `Handle::block_on` of a task that sleeps) waits until a task [`advance`]s the clock past
//! it. `std::thread::sleep` waits real time. A job that outlives its runtime reads the clock
//! the runtime left: dropping a runtime lets its paused clock run on from where it stands,
//! as [`resume`] does, so such a job's readings still move on, and never go back to the
//! real clock.
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

mod clock;
pub mod delay_queue;
mod driver;
mod instant;
mod interval;
mod sleep;
mod timeout;
mod wheel;

pub(crate) use clock::SharedClock;
pub use delay_queue::DelayQueue;
pub(crate) use driver::Timers;
pub use instant::Instant;
pub use interval::{interval, interval_at, Interval, MissedTickBehavior};
pub use sleep::{sleep, sleep_until, Sleep};
pub use timeout::{timeout, timeout_at, Elapsed, Timeout};

/// The error type at tokio's path (`time::error::Elapsed`); the same as at this module's
/// root.
pub mod error {
    pub use super::Elapsed;
}

use std::sync::OnceLock;

/// std's `Duration`, re-exported so that timeouts need no extra import.
pub use std::time::Duration;

/// The current runtime's clock: the real time (`std::time::Instant::now()`), unless the
/// runtime's time is [paused](pause). In a [`spawn_blocking`](crate::spawn_blocking) job,
/// the clock of the runtime that spawned it, paused or not (see
/// [Paused time](self#paused-time-for-tests)). Outside a runtime and its jobs, the real
/// time. The same as [`Instant::now`].
pub fn now() -> Instant {
    Instant::from_std(crate::executor::clock_now().unwrap_or_else(std::time::Instant::now))
}

/// Whether the current runtime's clock is [paused](pause); `false` outside a runtime.
///
/// A building block for overlap's own crates: `overlap-pipe`'s watch of a child without a
/// pidfd looks at it on a timer only on a running clock, since on a paused one each look
/// would be the next deadline an idle runtime jumps to, at once and over and over.
#[doc(hidden)]
pub fn is_paused() -> bool {
    crate::executor::with_current(|core| core.timers().is_paused()).unwrap_or(false)
}

/// Freezes the current runtime's clock: timers then fire only when [`advance`] moves it, or
/// when the runtime has nothing else to do (it then jumps to the next timer's deadline; see
/// [Paused time](self#paused-time-for-tests)). Nothing happens if it is paused already
/// (tokio's `pause` panics then).
///
/// # Panics
/// Outside a runtime.
///
/// ```
/// use std::time::Duration;
/// use overlap::time;
///
/// overlap::block_on(async {
///     time::pause();
///     let start = std::time::Instant::now();
///     // Nothing else to do: the clock jumps to the deadline.
///     time::sleep(Duration::from_secs(3600)).await;
///     assert!(start.elapsed() < Duration::from_secs(60), "no real hour went by");
/// });
/// ```
pub fn pause() {
    crate::executor::with_current(|core| core.timers().pause()).unwrap_or_else(|| {
        crate::executor::no_runtime_here(
            "overlap::time::pause",
            "overlap::Handle::current().spawn(async { overlap::time::pause() })",
        )
    });
}

/// Lets the current runtime's clock run again, from the instant it shows. Nothing happens if
/// it is not paused (tokio's `resume` panics then).
///
/// # Panics
/// Outside a runtime.
pub fn resume() {
    crate::executor::with_current(|core| core.timers().resume()).unwrap_or_else(|| {
        crate::executor::no_runtime_here(
            "overlap::time::resume",
            "overlap::Handle::current().spawn(async { overlap::time::resume() })",
        )
    });
}

/// Moves the current runtime's [paused](pause) clock forward by `duration` and yields once:
/// the loop's next turn looks at I/O, then fires the timers due by then, and the tasks
/// either woke run before it returns.
///
/// The I/O comes first, as in tokio (whose driver polls I/O before it fires the timers due):
/// a task that a timer wakes sees the readiness of what arrived before the advance, so a
/// debounce that reads what is queued before it acts (`try_io`, `try_read`) finds a change
/// made just before the clock moved.
///
/// A `duration` too long to add to the clock (say `Duration::MAX`) moves it as far as a
/// [`sleep`] of that duration would wait, a thousand years at least: past every timer that
/// can fire, all of which fire.
///
/// # Panics
/// Outside a runtime, or if its clock is not paused.
///
/// ```
/// use std::time::Duration;
/// use overlap::time;
///
/// overlap::block_on(async {
///     time::pause();
///     let start = time::now();
///     let alarm = overlap::spawn(time::sleep(Duration::from_secs(10)));
///     time::advance(Duration::from_secs(9)).await;
///     assert!(!alarm.is_finished());
///     time::advance(Duration::from_secs(1)).await;
///     assert!(alarm.is_finished());
///     assert_eq!(time::now() - start, Duration::from_secs(10));
/// });
/// ```
pub async fn advance(duration: Duration) {
    let advanced = crate::executor::with_current(|core| core.timers().advance(duration)).unwrap_or_else(|| {
        crate::executor::no_runtime_here(
            "overlap::time::advance",
            "overlap::Handle::current().spawn(async move { overlap::time::advance(duration).await })",
        )
    });
    assert!(
        advanced,
        "overlap::time::advance needs a paused clock: call overlap::time::pause() first"
    );
    crate::yield_now().await;
}

/// `now + d`, or, if that overflows, an instant that never comes: [`far_future`], or a
/// thousand years after `now` if a paused clock has been advanced past that.
pub(crate) fn deadline_after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .unwrap_or_else(|| Instant::from_std(never_after(now.into_std())))
}

/// An instant that never comes, seen from `t`: [`far_future`], or a thousand years after `t`
/// if that is later.
fn never_after(t: std::time::Instant) -> std::time::Instant {
    far_future().max(far_after(t))
}

/// An instant so far ahead it is never reached: a thousand years after the time module was
/// first used in this process (less where the clock cannot represent that). Past the range
/// of a runtime's timers (about 584 years from its start), so a deadline there never comes.
pub(crate) fn far_future() -> std::time::Instant {
    static FAR: OnceLock<std::time::Instant> = OnceLock::new();
    *FAR.get_or_init(|| far_after(std::time::Instant::now()))
}

/// A thousand years after `t` (less where the clock cannot represent that).
fn far_after(t: std::time::Instant) -> std::time::Instant {
    [1000, 600, 100, 30, 1]
        .into_iter()
        .find_map(|years| t.checked_add(Duration::from_secs(86_400 * 365 * years)))
        .unwrap_or(t)
}
