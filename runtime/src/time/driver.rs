//! `Timers`: one runtime's timer wheel, its clock conversion and the waking of due timers.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::task::Waker;
use std::time::{Duration, Instant};

use super::clock::{Clock, SharedClock};
pub(crate) use super::wheel::TimerKey;
use super::wheel::{TimerWheel, TICK_SHIFT};
/// The timers of one runtime. Runtime thread only (it lives in an `Rc`).
///
/// Deadlines are kept as nanoseconds since `base`, exactly: the wheel's 1 ms ticks only decide
/// where an entry is filed, never when it fires.
///
/// # Slack
/// Like Linux's own `poll`/`select` timeouts (0.1 to 0.5 % of the timeout), a timer may fire
/// up to 1/256 of its duration late, at most [`MAX_SLACK_NS`], so that timers due close
/// together share one wakeup instead of each paying for an `epoll_pwait2` and a timer
/// interrupt: a 1 ms sleep has 4 µs of slack, timers of 256 ms or more 1 ms. Slack only
/// matters when timers crowd: the loop wakes at the last deadline it can reach without making
/// any timer later than its slack allows, so a lone timer fires on time. A timer never fires
/// early, and whenever the loop wakes it fires every timer already due, whatever its slack.
pub(crate) struct Timers {
    /// The instant deadlines are counted from: when the runtime started, or, once a paused
    /// clock has been advanced half the range of `u64` nanoseconds past it, when that clock
    /// last found no timer registered (see `rebase_if_far`).
    base: Cell<Instant>,
    wheel: RefCell<TimerWheel>,
    /// Wakers of the timers being fired, kept to reuse the allocation.
    to_wake: Cell<Vec<Waker>>,
    fired: Cell<u64>,
    /// Whether this runtime has lowered its thread's timer slack (see `slack_guard`).
    slack_lowered: Cell<bool>,
    /// The clock (ns since `base`) as last read by the loop, once per turn and when a
    /// `block_on` starts. Used to size a new timer's slack without reading the clock per timer.
    /// It is never ahead of the real clock; while the loop runs it lags by at most one batch
    /// of task polls, which adds 1/256 of that to slack.
    loop_now: Cell<u64>,
    /// Real time, or a paused clock (see `time::pause`).
    clock: Clock,
    /// Registered timers whose deadline is past the range of `to_ns`: they never come, so a
    /// paused clock's auto-advance does not move towards them (see `has_reachable`).
    nevers: Cell<usize>,
    /// The earliest and the latest deadline a timer counted in `nevers` was ever registered
    /// or reset to: a paused clock may rebase (see `rebase_if_far`) with such timers still
    /// registered if each of their deadlines falls before the new base or past its range.
    never_span: Cell<Option<(Instant, Instant)>>,
}

impl Timers {
    /// Timers on a running clock, whose state the runtime's blocking jobs read in `clock`
    /// (a new [`SharedClock`]).
    pub(crate) fn new(clock: std::sync::Arc<SharedClock>) -> Timers {
        Timers {
            base: Cell::new(Instant::now()),
            wheel: RefCell::new(TimerWheel::new()),
            to_wake: Cell::new(Vec::new()),
            fired: Cell::new(0),
            slack_lowered: Cell::new(false),
            loop_now: Cell::new(0),
            clock: Clock::new(clock),
            nevers: Cell::new(0),
            never_span: Cell::new(None),
        }
    }

    /// Whether a deadline of `ns` counts as never coming: it is past the range of `u64`
    /// nanoseconds from `base` (about 584 years), where `to_ns` saturates. Such a timer never
    /// fires, not even once a paused clock has been advanced past that range: only the clock
    /// would be known to have passed it, not the timer's deadline.
    fn is_never(&self, ns: u64) -> bool {
        ns == u64::MAX
    }

    /// Whether a registered timer with deadline `ns` is one that never fires: past the range
    /// of `to_ns`, or (`ns == 0`) before `base`, which only a timer that was past the range
    /// before a rebase can be (a deadline at `base` or earlier has passed, so no later timer
    /// registers with it).
    fn is_never_timer(&self, ns: u64) -> bool {
        self.is_never(ns) || ns == 0
    }

    /// Notes a timer with deadline `ns` coming (`+1`) or going (`-1`) in `nevers`.
    fn count_never(&self, ns: u64, delta: isize) {
        if self.is_never_timer(ns) {
            self.nevers
                .set(self.nevers.get().saturating_add_signed(delta));
        }
    }

    /// Whether some registered timer's deadline can come (is not "never"): what a paused
    /// clock may auto-advance to.
    pub(crate) fn has_reachable(&self) -> bool {
        self.active() > self.nevers.get()
    }

    /// This runtime's clock: `Instant::now()`, unless it was paused (see `time::pause`).
    pub(crate) fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Whether the clock is paused.
    pub(crate) fn is_paused(&self) -> bool {
        self.clock.is_paused()
    }

    /// Freezes the clock (see `time::pause`).
    pub(crate) fn pause(&self) {
        self.clock.pause();
    }

    /// Lets the clock run again (see `time::resume`).
    pub(crate) fn resume(&self) {
        self.clock.resume();
    }

    /// Moves the paused clock forward by `d`; the timers due then fire at the loop's next
    /// turn, after it has looked at I/O (see `time::advance`). Returns false, doing
    /// nothing, if the clock is not paused.
    pub(crate) fn advance(&self, d: Duration) -> bool {
        self.clock.advance(d)
    }

    /// Moves the paused clock forward to `t`, the loop having nothing else to do (the
    /// caller fires the timers due then, on its turn).
    pub(crate) fn auto_advance_to(&self, t: Instant) {
        self.clock.advance_to(t);
    }

    /// Nanoseconds from `base` to `t` (0 for instants before `base`; saturates ~584 years on).
    fn to_ns(&self, t: Instant) -> u64 {
        let d = t.saturating_duration_since(self.base.get());
        u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
    }

    fn to_instant(&self, ns: u64) -> Instant {
        let t = self.base.get().checked_add(Duration::from_nanos(ns));
        t.unwrap_or_else(super::far_future)
    }

    /// Registers a timer for `deadline` woken through `waker`. Returns `None`, registering
    /// nothing, if the deadline has already passed.
    pub(crate) fn register(&self, deadline: Instant, waker: &Waker) -> Option<TimerKey> {
        if !self.slack_lowered.get() {
            self.slack_lowered.set(true);
            slack_guard::acquire();
        }
        let mut wheel = self.wheel.borrow_mut();
        // No timer that can fire: the loop skips the clock then, so `loop_now` may be stale.
        let fresh = wheel.len() == self.nevers.get();
        if fresh {
            self.loop_now.set(self.to_ns(self.now()));
            self.rebase_if_far(&mut wheel);
        }
        let ns = self.to_ns(deadline);
        if self.has_passed(&wheel, ns, deadline, fresh) {
            return None;
        }
        let slack = self.slack_for(ns);
        self.count_never(ns, 1);
        self.note_never(ns, deadline);
        Some(wheel.insert(ns, slack, waker.clone()))
    }

    /// With no timer registered but those that never fire, moves `base` to the clock's
    /// reading if a paused clock has been advanced over half the range of `to_ns` past it:
    /// deadlines from there on are then counted from the new base, rather than falling past
    /// the range and never coming. The timers that never fire stay registered, and still
    /// never fire: each deadline they were ever given must lie before the new base (it then
    /// reads as 0, see `is_never_timer`) or past its range (it reads as "never" still).
    fn rebase_if_far(&self, wheel: &mut TimerWheel) {
        if self.loop_now.get() <= u64::MAX / 2 {
            return;
        }
        let now = self.now();
        let still_never = |(earliest, latest): (Instant, Instant)| {
            let edge = now.checked_add(Duration::from_nanos(u64::MAX));
            latest <= now || edge.is_some_and(|edge| earliest >= edge)
        };
        if self.nevers.get() == 0 {
            self.never_span.set(None);
        }
        if self.never_span.get().is_none_or(still_never) {
            self.base.set(now);
            wheel.restart(u64::MAX);
            self.loop_now.set(0);
        }
    }

    /// Widens `never_span` to take in a timer registered or reset to `deadline` (`ns`).
    fn note_never(&self, ns: u64, deadline: Instant) {
        if self.is_never(ns) {
            let span = match self.never_span.get() {
                None => (deadline, deadline),
                Some((earliest, latest)) => (earliest.min(deadline), latest.max(deadline)),
            };
            self.never_span.set(Some(span));
        }
    }

    /// Whether `deadline` (`ns`) has passed, reading the clock only when it is close.
    /// `clock_read` says `loop_now` was just read from the clock.
    fn has_passed(&self, wheel: &TimerWheel, ns: u64, deadline: Instant, clock_read: bool) -> bool {
        if self.is_never(ns) {
            // Past the range of `ns`: not passed while the clock is within it, else (a paused
            // clock advanced that far) only the instants themselves tell.
            return self.is_never(self.loop_now.get()) && deadline <= self.now();
        }
        // Past for sure: no timer, it completes now.
        let now = self.loop_now.get();
        if ns <= now {
            return true;
        }
        // It may be past if it is near the loop's last look at the clock (a batch of task
        // polls ran since), or in a tick the wheel has reached: look again. Farther deadlines
        // skip the clock read.
        let near = ns <= now.saturating_add(1 << TICK_SHIFT) || wheel.is_current(ns);
        near && !clock_read && deadline <= self.now()
    }

    /// Reads the clock into `loop_now`: when a `block_on` starts, since between two calls
    /// nothing did, and a deadline that passed meanwhile must be seen as past at its first
    /// poll.
    pub(crate) fn refresh_clock(&self) {
        self.loop_now.set(self.to_ns(self.now()));
    }

    /// Whether the timer is still pending; if so, makes `waker` the one it wakes.
    pub(crate) fn poll_registered(&self, key: TimerKey, waker: &Waker) -> bool {
        let old = {
            let mut wheel = self.wheel.borrow_mut();
            let Some(slot) = wheel.waker_mut(key) else {
                return false;
            };
            match slot {
                Some(w) if w.will_wake(waker) => return true,
                _ => slot.replace(waker.clone()),
            }
        };
        // Dropped only now: a waker's drop may run arbitrary code, even touch these timers.
        drop(old);
        true
    }

    /// Whether the timer registered under `key` for `deadline` has fired, or would fire at
    /// the loop's next look at the clock: what `Sleep::is_elapsed` reports. A timer whose
    /// deadline never comes (see `is_never`) stays pending even once a paused clock has been
    /// advanced past its instant, so it does not count as elapsed either.
    pub(crate) fn is_elapsed(&self, key: TimerKey, deadline: Instant) -> bool {
        if !self.wheel.borrow().contains(key) {
            return true;
        }
        !self.is_never_timer(self.to_ns(deadline)) && deadline <= self.now()
    }

    /// Cancels a timer registered for `deadline` (nothing happens if it already fired).
    pub(crate) fn remove(&self, key: TimerKey, deadline: Instant) {
        let ns = self.to_ns(deadline);
        let mut wheel = self.wheel.borrow_mut();
        if wheel.contains(key) {
            self.count_never(ns, -1);
        }
        let waker = wheel.remove(key, ns);
        // Dropped after the wheel: a waker's drop may run arbitrary code.
        drop(wheel);
        drop(waker);
    }

    /// Moves a pending timer from `old` to `deadline`, keeping its waker. Returns false if it
    /// already fired, or if `deadline` has passed: then the timer is removed and its waker
    /// woken, so that the task awaiting the sleep (which need not be the one resetting it)
    /// polls again, registers anew and completes at once.
    pub(crate) fn reset(&self, key: TimerKey, old: Instant, deadline: Instant) -> bool {
        let (old, ns) = (self.to_ns(old), self.to_ns(deadline));
        let mut wheel = self.wheel.borrow_mut();
        if self.has_passed(&wheel, ns, deadline, false) {
            if wheel.contains(key) {
                self.count_never(old, -1);
            }
            let waker = wheel.remove(key, old);
            // Woken after the wheel is released: a waker may run arbitrary code.
            drop(wheel);
            if let Some(waker) = waker {
                waker.wake();
            }
            return false;
        }
        let moved = wheel.reset(key, old, ns, self.slack_for(ns));
        if moved {
            self.count_never(old, -1);
            self.count_never(ns, 1);
            self.note_never(ns, deadline);
        }
        moved
    }

    /// When the loop must next fire timers: never later than any timer's deadline plus slack
    /// (see [Slack](Timers#slack)); a lone timer's exact deadline; or an earlier instant at
    /// which the wheel must cascade.
    ///
    /// While the clock is paused, the earliest deadline itself, without slack: auto-advance
    /// jumps there, so a timer never wakes at a virtual instant later than its deadline
    /// because another one was due a little after it.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let mut wheel = self.wheel.borrow_mut();
        let ns = if self.clock.is_paused() {
            wheel.earliest_deadline()
        } else {
            wheel.next_deadline()
        }?;
        drop(wheel);
        // Only timers that never fire: nothing to wake for (even with the clock past `ns`).
        (!self.is_never(ns)).then(|| self.to_instant(ns))
    }

    /// Timers registered now.
    pub(crate) fn active(&self) -> usize {
        self.wheel.borrow().len()
    }

    /// Timers fired since the runtime started.
    pub(crate) fn fired(&self) -> u64 {
        self.fired.get()
    }

    /// Called by the loop once per turn, after polling the reactor, with a fresh clock: fires
    /// the due timers if it is time to.
    pub(crate) fn turn(&self, now: Instant) {
        self.loop_now.set(self.to_ns(now));
        if self.next_deadline().is_some_and(|next| next <= now) {
            self.process(now);
        }
    }

    /// The slack of a timer due at `deadline` ns: 1/256 of how far ahead it is, at most
    /// [`MAX_SLACK_NS`] (see [Slack](Timers#slack)).
    fn slack_for(&self, deadline: u64) -> u32 {
        let ahead = deadline.saturating_sub(self.loop_now.get()) >> 8;
        ahead.min(u64::from(MAX_SLACK_NS)) as u32
    }

    /// Fires every timer due at `now` (a deadline equal to `now` is due), in deadline order,
    /// except those that never fire. Timers registered by the wakes themselves wait for the
    /// next call.
    fn process(&self, now: Instant) -> usize {
        let now = self.to_ns(now);
        self.loop_now.set(self.loop_now.get().max(now));
        let mut to_wake = self.to_wake.take();
        // A clock advanced past the range of `to_ns` reads as the "never" deadline itself.
        let n = self
            .wheel
            .borrow_mut()
            .advance(now.min(u64::MAX - 1), &mut to_wake);
        self.fired.set(self.fired.get() + n as u64);
        // The wheel is released: a woken waker may register, reset or drop timers.
        for w in to_wake.drain(..) {
            // A user's waker that panics (even with a payload that panics when dropped)
            // must not take the runtime down with it.
            crate::unwind::contain(|| w.wake());
        }
        if to_wake.capacity() > 4096 {
            to_wake = Vec::new();
        }
        self.to_wake.set(to_wake);
        n
    }
}

/// The most a timer may fire late to share a wakeup (see [Slack](Timers#slack)).
pub(crate) const MAX_SLACK_NS: u32 = 1_000_000;

impl Drop for Timers {
    fn drop(&mut self) {
        if self.slack_lowered.get() {
            slack_guard::release();
        }
    }
}

impl fmt::Debug for Timers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timers")
            .field("active", &self.active())
            .field("fired", &self.fired())
            .finish()
    }
}

/// Lowers the thread's timer slack while any runtime on it has used timers.
///
/// The kernel may delay an `epoll_pwait2` wakeup by the thread's timer slack, 50 µs by
/// default, which would be most of a 1 ms sleep's error budget. The first runtime on a thread
/// to register a timer saves the slack and sets it to 1 ns; the last one to go restores it.
mod slack_guard {
    use std::cell::Cell;

    use crate::sys::timerslack;

    thread_local! {
        /// Runtimes holding the lowered slack, and the slack to restore.
        static HOLDERS: Cell<(usize, Option<u64>)> = const { Cell::new((0, None)) };
    }

    pub(super) fn acquire() {
        HOLDERS.with(|h| {
            let (count, saved) = h.get();
            let saved = if count == 0 {
                let saved = timerslack::get().ok();
                // Best effort: without it timers are merely less precise.
                let _ = timerslack::set(1);
                saved
            } else {
                saved
            };
            h.set((count + 1, saved));
        });
    }

    pub(super) fn release() {
        // Ignore a thread that is shutting down its thread-locals.
        let _ = HOLDERS.try_with(|h| {
            let (count, saved) = h.get();
            if count == 1 {
                if let Some(saved) = saved {
                    let _ = timerslack::set(saved);
                }
                h.set((0, None));
            } else {
                h.set((count.saturating_sub(1), saved));
            }
        });
    }
}
