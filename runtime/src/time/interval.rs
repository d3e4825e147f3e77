//! [`Interval`]: ticks at a fixed period, with a policy for missed ticks.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use super::sleep::{sleep_until, Sleep};
use super::Instant;

/// Ticks every `period`, the first tick completing at once.
///
/// Missed ticks are skipped by default; see [`MissedTickBehavior`].
///
/// # Panics
///
/// If `period` is zero (as tokio's `interval` does): an interval with no period would tick
/// in a busy loop.
///
/// ```
/// use std::time::Duration;
/// use overlap::time::Instant;
///
/// overlap::block_on(async {
///     let period = Duration::from_millis(1);
///     let mut every = overlap::time::interval(period);
///     let mut prev = every.tick().await; // at once: the instant `interval` was called
///     for _ in 0..3 {
///         let at = every.tick().await;
///         // Ticks report their scheduled instants, whole periods apart (more than one if the
///         // machine was too busy and a tick was skipped), never after they are observed.
///         assert!(at > prev && (at - prev).as_nanos() % period.as_nanos() == 0);
///         assert!(Instant::now() >= at);
///         prev = at;
///     }
/// });
/// ```
#[track_caller]
pub fn interval(period: Duration) -> Interval {
    interval_at(super::now(), period)
}

/// Ticks at `start`, then every `period` after it.
///
/// # Panics
///
/// If `period` is zero, as [`interval`].
#[track_caller]
pub fn interval_at(start: Instant, period: Duration) -> Interval {
    assert!(
        !period.is_zero(),
        "overlap::time::interval: the period must be non-zero"
    );
    Interval {
        sleep: sleep_until(start),
        period,
        missed: MissedTickBehavior::default(),
    }
}

/// What an [`Interval`] does when a tick is observed so late that the next one is already
/// due (the task was busy, or the machine suspended).
///
/// With period 10 ms, ticks scheduled at 0, 10, 20 ms… and a tick observed at 35 ms:
///
/// | policy | next ticks at |
/// |---|---|
/// | `Burst` | 10, 20, 30 (all at once), then 40, 50… |
/// | `Delay` | 45, 55, 65… (the schedule restarts from now) |
/// | `Skip` (default) | 40, 50… (the missed ones are dropped, the phase is kept) |
///
/// The default differs from tokio's, which is `Burst`: a loop that must run once per
/// period even after a stall (a rate that has to catch up) asks for `Burst` with
/// [`Interval::set_missed_tick_behavior`]; by default a stalled loop resumes on its
/// schedule instead of firing the backlog at once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MissedTickBehavior {
    /// Fire every missed tick, back to back, until caught up.
    Burst,
    /// Schedule the next tick one period after the late one was observed, so that ticks are
    /// observed at least a period apart. As in tokio, this also applies to a tick observed
    /// more than 5 ms late whose successor is not due yet: with period 100 ms,
    /// a tick scheduled at 100 ms and observed at 150 ms is followed by one at 250 ms, not at
    /// 200 ms. (A tick observed at most 5 ms late whose successor is not due yet keeps the
    /// schedule: timers fire a little late.)
    ///
    /// Unlike tokio, a tick whose successor is already past (due before the instant the tick
    /// is observed; one due exactly then is kept, as in tokio) restarts the schedule even
    /// when it is observed at most 5 ms late, which only happens with periods under 5 ms: with period
    /// 1 ms, a tick of 1 ms observed at 3 ms is followed by one at 4 ms, where tokio keeps the
    /// schedule within its margin and fires the ticks of 2 and 3 ms at once.
    Delay,
    /// Drop the missed ticks and resume at the next multiple of the period after `start`:
    /// the first one strictly after the instant the late tick is observed, so with period
    /// 10 ms a tick of 10 ms observed at 20 ms is followed by one at 30 ms, as in tokio.
    /// (A tick observed at most 5 ms late whose successor is not due yet is merely a little
    /// late: the schedule goes on.)
    ///
    /// Unlike tokio, ticks already past (due before the instant the late tick is observed;
    /// one due exactly then is kept, as in tokio) are dropped even when it is observed at
    /// most 5 ms late, which only happens with periods under 5 ms: with period 1 ms, a tick
    /// of 1 ms observed at 3 ms is followed by one at 4 ms, where tokio keeps the schedule
    /// within its margin and fires the ticks of 2 and 3 ms at once.
    #[default]
    Skip,
}

/// How late a tick may be observed before [`MissedTickBehavior::Delay`] restarts the
/// schedule even though the next tick is not due yet: tokio's margin, which absorbs a timer
/// firing a little late.
const DELAY_MARGIN: Duration = Duration::from_millis(5);

/// `nanos` as a `Duration`, or `Duration::MAX` past it. Not `Duration::from_nanos`, which
/// stops at `u64` nanoseconds (584 years): a paused clock can stall a tick longer than that.
fn duration_from_nanos(nanos: u128) -> Duration {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    u64::try_from(nanos / NANOS_PER_SEC).map_or(Duration::MAX, |secs| {
        Duration::new(secs, (nanos % NANOS_PER_SEC) as u32)
    })
}

/// A stream of ticks, from [`interval`] or [`interval_at`].
///
/// Each [`tick`](Interval::tick) resolves to the instant the tick was *scheduled* for, which is
/// never after the instant it completes. Dropping the interval cancels its timer.
#[derive(Debug)]
pub struct Interval {
    sleep: Sleep,
    period: Duration,
    missed: MissedTickBehavior,
}

impl Interval {
    /// Waits for the next tick and returns the instant it was scheduled for.
    ///
    /// Cancel-safe: dropping the returned future loses no tick. As a [`Sleep`]'s, its timer
    /// moves to whichever runtime polls it (the one that made it may be gone).
    ///
    /// # Panics
    /// When polled (not created) outside a runtime, as a [`Sleep`] does.
    pub async fn tick(&mut self) -> Instant {
        poll_fn(|cx| self.poll_tick(cx)).await
    }

    /// Polls for the next tick, as [`tick`](Interval::tick) does; for hand-written futures.
    ///
    /// # Panics
    /// Outside a runtime, as [`tick`](Interval::tick).
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        ready!(Pin::new(&mut self.sleep).poll(cx));
        let scheduled = self.sleep.deadline();
        let next = self.next_after(scheduled, super::now());
        self.sleep.reset(next);
        Poll::Ready(scheduled)
    }

    /// The instant of the tick after the one scheduled at `scheduled`, observed at `now`.
    fn next_after(&self, scheduled: Instant, now: Instant) -> Instant {
        let next = super::deadline_after(scheduled, self.period);
        let past_margin = now - scheduled > DELAY_MARGIN;
        let delayed = self.missed == MissedTickBehavior::Delay && past_margin;
        // Past the margin, `Skip` goes to the first multiple strictly after `now` (tokio's
        // rule), so a tick due exactly now, a whole period after the late one, is dropped too.
        let skipped = self.missed == MissedTickBehavior::Skip && past_margin && now == next;
        if now <= next && !delayed && !skipped {
            return next;
        }
        match self.missed {
            MissedTickBehavior::Burst => next,
            MissedTickBehavior::Delay => super::deadline_after(now, self.period),
            MissedTickBehavior::Skip => {
                let late = now.duration_since(scheduled).as_nanos();
                let periods = late / self.period.as_nanos() + 1;
                let ahead = periods.saturating_mul(self.period.as_nanos());
                super::deadline_after(scheduled, duration_from_nanos(ahead))
            }
        }
    }

    /// Restarts the schedule: the next tick comes one period from now.
    pub fn reset(&mut self) {
        self.reset_at(super::deadline_after(super::now(), self.period));
    }

    /// Restarts the schedule: the next tick comes at `deadline`, then every period after.
    pub fn reset_at(&mut self, deadline: Instant) {
        self.sleep.reset(deadline);
    }

    /// Restarts the schedule from now: the next tick completes at once (reporting the
    /// instant of this call), then every period after it. A pending
    /// [`tick`](Interval::tick) future sees the change when next polled.
    ///
    /// ```
    /// use std::time::Duration;
    /// use overlap::time::{self, Instant};
    ///
    /// // On a paused clock: a minute passes at once when nothing else is to be done.
    /// let rt = overlap::Runtime::builder().start_paused(true).build().unwrap();
    /// rt.block_on(async {
    ///     let mut every = time::interval(Duration::from_secs(60));
    ///     every.tick().await;
    ///     every.reset_immediately();
    ///     let start = Instant::now();
    ///     assert_eq!(every.tick().await, start); // no minute's wait
    ///     assert_eq!(every.tick().await, start + Duration::from_secs(60));
    /// });
    /// ```
    pub fn reset_immediately(&mut self) {
        self.reset_at(super::now());
    }

    /// Restarts the schedule: the next tick comes `after` from now (not a period), then
    /// every period after it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use overlap::time::{self, Instant};
    ///
    /// let rt = overlap::Runtime::builder().start_paused(true).build().unwrap();
    /// rt.block_on(async {
    ///     let mut every = time::interval(Duration::from_secs(60));
    ///     every.tick().await;
    ///     every.reset_after(Duration::from_secs(5));
    ///     let start = Instant::now();
    ///     assert_eq!(every.tick().await, start + Duration::from_secs(5));
    ///     assert_eq!(every.tick().await, start + Duration::from_secs(65));
    /// });
    /// ```
    pub fn reset_after(&mut self, after: Duration) {
        self.reset_at(super::deadline_after(super::now(), after));
    }

    /// The period between ticks.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// The policy for missed ticks.
    pub fn missed_tick_behavior(&self) -> MissedTickBehavior {
        self.missed
    }

    /// Sets the policy for missed ticks.
    pub fn set_missed_tick_behavior(&mut self, behavior: MissedTickBehavior) {
        self.missed = behavior;
    }
}

/// The ticks as a stream that never ends: each item is the instant the tick was scheduled
/// for, as [`tick`](Interval::tick) returns it.
///
/// ```
/// use std::time::Duration;
/// use overlap::stream::StreamExt;
///
/// overlap::block_on(async {
///     let ticks = overlap::time::interval(Duration::from_millis(1));
///     let three: Vec<_> = ticks.take(3).collect().await;
///     assert!(three[0] < three[1] && three[1] < three[2]);
/// });
/// ```
impl futures_core::Stream for Interval {
    type Item = Instant;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Instant>> {
        self.get_mut().poll_tick(cx).map(Some)
    }
}

/// Never terminated: an interval ticks forever.
impl futures_core::FusedStream for Interval {
    fn is_terminated(&self) -> bool {
        false
    }
}
