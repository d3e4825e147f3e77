//! [`Sleep`]: a future that completes at a deadline.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use super::driver::{TimerKey, Timers};
use super::Instant;

/// Waits until `duration` has elapsed. Never completes early.
///
/// A duration too long to add to the current time (such as `Duration::MAX`) makes a sleep that
/// never completes; `Duration::ZERO` completes at the first poll (see the
/// [module docs](super) for the one exception).
///
/// # Panics
/// When polled (not created) outside a runtime.
///
/// ```
/// use std::time::Duration;
/// use overlap::time::Instant;
/// overlap::block_on(async {
///     let start = Instant::now();
///     overlap::time::sleep(Duration::from_millis(2)).await;
///     assert!(start.elapsed() >= Duration::from_millis(2));
/// });
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    sleep_until(super::deadline_after(super::now(), duration))
}

/// Waits until `deadline`. A deadline already past completes at the first poll (see the
/// [module docs](super) for the one exception).
///
/// # Panics
/// When polled (not created) outside a runtime.
///
/// ```
/// use std::time::Duration;
/// use overlap::time::Instant;
/// overlap::block_on(async {
///     let deadline = Instant::now() + Duration::from_micros(300);
///     overlap::time::sleep_until(deadline).await;
///     assert!(Instant::now() >= deadline);
/// });
/// ```
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        state: State::Unregistered,
    }
}

/// The future returned by [`sleep`] and [`sleep_until`].
///
/// It registers a timer with the runtime that polls it, and wakes whichever waker polled it
/// last, so it may move between tasks freely (and between runtimes on one thread: polled by
/// another runtime, it moves its timer there). It completes once per deadline: polled again
/// afterwards it stays ready until [`reset`](Sleep::reset).
///
/// Dropping it cancels its timer in O(1), and loses nothing else: it is cancel-safe. A
/// `sleep(d)` made anew each round of a `select!` loop starts its `d` over each time, though;
/// for a deadline that must hold across rounds, keep one pinned `Sleep` and poll it by
/// `&mut`.
#[must_use = "futures do nothing unless polled"]
pub struct Sleep {
    deadline: Instant,
    state: State,
}

// Small futures are cheaper to box and to move: keep `Sleep` at 40 bytes (see `TimerKey`).
#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<Sleep>() == 40);

enum State {
    /// Not polled since created or reset.
    Unregistered,
    /// A timer is (or was, if it fired since) registered under `key`.
    Registered { timers: Rc<Timers>, key: TimerKey },
    /// The deadline has passed and the timer is gone.
    Elapsed,
    /// Elapsed, and `poll` has returned `Ready` (not only seen the deadline pass and then
    /// found the task's budget spent): the `Sleep` is terminated.
    Done,
}

impl Sleep {
    /// The instant at which this sleep completes.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Moves the deadline, earlier or later. A registered timer is moved in O(1) and keeps
    /// waking the same waker, so the task awaiting it wakes at the new deadline even if it does
    /// not poll in between; a completed sleep becomes pending again until the new deadline.
    /// A deadline that has already passed wakes the awaiting task at once.
    ///
    /// ```
    /// use std::time::Duration;
    /// use overlap::time::Instant;
    /// use overlap::time::sleep;
    ///
    /// overlap::block_on(async {
    ///     let start = Instant::now();
    ///     let mut s = sleep(Duration::from_secs(3600));
    ///     s.reset(start + Duration::from_millis(1));
    ///     s.await;
    ///     assert!(start.elapsed() < Duration::from_secs(3600));
    /// });
    /// ```
    pub fn reset(&mut self, deadline: Instant) {
        let old = std::mem::replace(&mut self.deadline, deadline);
        match &self.state {
            State::Registered { timers, key }
                if timers.reset(*key, old.into_std(), deadline.into_std()) => {}
            _ => self.state = State::Unregistered,
        }
    }

    /// Whether the deadline has passed: the sleep completes when next polled, or, if its
    /// timer is registered and not fired yet, once the runtime's loop fires it. A sleep whose
    /// deadline never comes (see the [module docs](super)) is never elapsed, even once a
    /// [paused](super::pause) clock has been advanced past its instant: it stays pending, and
    /// this agrees.
    pub fn is_elapsed(&self) -> bool {
        match &self.state {
            State::Elapsed | State::Done => true,
            State::Registered { timers, key } => timers.is_elapsed(*key, self.deadline.into_std()),
            State::Unregistered => super::now() >= self.deadline,
        }
    }
}

/// Terminated once it has returned `Ready`, until [`reset`](Sleep::reset) arms it again: so
/// a `Sleep` can sit directly in a `select!` loop that resets it (an idle timer).
impl futures_core::FusedFuture for Sleep {
    fn is_terminated(&self) -> bool {
        matches!(self.state, State::Done)
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        ready!(this.poll_elapsed(cx));
        // A loop of already-elapsed sleeps must still let other tasks run.
        ready!(crate::coop::poll_proceed(cx));
        this.state = State::Done;
        Poll::Ready(())
    }
}

/// The panic of a timer polled where no runtime runs on this thread.
#[track_caller]
fn polled_outside() -> ! {
    // A blocking job (or `Handle::block_on`) sees its runtime's handle, as tokio's do, yet
    // the runtime's timers fire only on its own thread: say so, and what works from there.
    if crate::Handle::try_current().is_some() {
        panic!(
            "overlap::time: a timer was polled on a blocking-pool thread (or in \
             `Handle::block_on`), off its runtime's thread, where its timers fire: poll it in \
             a task there, with `overlap::Handle::current().spawn_with(..)`"
        );
    }
    panic!("overlap::time: a timer was polled outside of a runtime");
}

impl Sleep {
    /// Whether a timer is registered for it, which wakes the task that last polled it at
    /// its deadline: false before its first poll and once it has seen the deadline pass,
    /// also after a [`reset`](Sleep::reset) that could not move a fired timer.
    pub(crate) fn is_registered(&self) -> bool {
        matches!(self.state, State::Registered { .. })
    }

    /// Whether a poll has seen the deadline pass (whatever it returned then).
    pub(crate) fn has_elapsed(&self) -> bool {
        matches!(self.state, State::Elapsed | State::Done)
    }

    /// Whether the deadline has passed, registering the timer (and `cx`'s waker) if not.
    /// Spends no budget: a [`Timeout`](super::Timeout) must see its deadline even when the
    /// future it wraps has spent the task's budget.
    pub(crate) fn poll_elapsed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let this = self;
        if let State::Registered { timers, key } = &this.state {
            let here = crate::executor::with_current(|core| Rc::ptr_eq(core.timers(), timers))
                .unwrap_or_else(|| polled_outside());
            if !here {
                // Registered with a runtime that is not the one polling it now (gone, or not
                // running): nothing would ever fire it there. Move it here.
                timers.remove(*key, this.deadline.into_std());
                this.state = State::Unregistered;
            }
        }
        match &this.state {
            State::Registered { timers, key } => {
                if timers.poll_registered(*key, cx.waker()) {
                    return Poll::Pending;
                }
                this.state = State::Elapsed;
            }
            State::Unregistered => {
                let timers = crate::executor::with_current(|core| core.timers().clone())
                    .unwrap_or_else(|| polled_outside());
                match timers.register(this.deadline.into_std(), cx.waker()) {
                    Some(key) => {
                        this.state = State::Registered { timers, key };
                        return Poll::Pending;
                    }
                    None => this.state = State::Elapsed,
                }
            }
            State::Elapsed | State::Done => {}
        }
        Poll::Ready(())
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let State::Registered { timers, key } = &self.state {
            timers.remove(*key, self.deadline.into_std());
        }
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Unregistered => "unregistered",
            State::Registered { .. } => "registered",
            State::Elapsed | State::Done => "elapsed",
        };
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .field("state", &state)
            .finish()
    }
}
