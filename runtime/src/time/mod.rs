//! Timers: [`sleep`] and [`sleep_until`].

mod driver;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use driver::TimerKey;
pub(crate) use driver::Timers;

/// Waits until `duration` has elapsed. Never completes early.
///
/// # Panics
/// When first polled outside a runtime.
///
/// ```
/// use std::time::{Duration, Instant};
/// overlap::block_on(async {
///     let start = Instant::now();
///     overlap::time::sleep(Duration::from_millis(2)).await;
///     assert!(start.elapsed() >= Duration::from_millis(2));
/// });
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    let now = Instant::now();
    sleep_until(now.checked_add(duration).unwrap_or_else(far_future))
}

/// Waits until `deadline`. A deadline in the past completes on the next poll.
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        entry: None,
    }
}

/// An instant so far ahead it is never reached (about 30 years).
pub(crate) fn far_future() -> Instant {
    let now = Instant::now();
    now.checked_add(Duration::from_secs(86_400 * 365 * 30))
        .unwrap_or(now)
}

/// The future returned by [`sleep`] and [`sleep_until`].
///
/// Dropping it before it fires removes its timer.
#[must_use = "futures do nothing unless polled"]
pub struct Sleep {
    deadline: Instant,
    entry: Option<(Rc<Timers>, TimerKey)>,
}

impl Sleep {
    /// The instant at which this sleep completes.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Moves the deadline, earlier or later; a completed sleep may be reset and awaited again.
    pub fn reset(&mut self, deadline: Instant) {
        self.cancel();
        self.deadline = deadline;
    }

    /// Whether the deadline has passed.
    pub fn is_elapsed(&self) -> bool {
        Instant::now() >= self.deadline
    }

    fn cancel(&mut self) {
        if let Some((timers, key)) = self.entry.take() {
            timers.remove(key);
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            self.cancel();
            return Poll::Ready(());
        }
        if let Some((timers, key)) = &self.entry {
            if timers.update_waker(*key, cx.waker()) {
                return Poll::Pending;
            }
        }
        let timers = crate::executor::with_current(|core| core.timers().clone())
            .expect("overlap::time::sleep polled outside of a runtime");
        let key = timers.insert(self.deadline, cx.waker().clone());
        self.entry = Some((timers, key));
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.cancel();
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .finish()
    }
}
