//! [`Timeout`]: a future with a deadline, and its [`Elapsed`] error.

use std::error::Error;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;

use super::sleep::{sleep_until, Sleep};
use super::Instant;

/// Runs `future` for at most `duration`: `Ok(output)` if it finishes first, otherwise
/// `Err(Elapsed)`. The future lives inside the [`Timeout`] and is dropped with it (at once
/// when `timeout(..).await` returns; [`Timeout::into_inner`] takes it back instead).
///
/// The future is always polled before the clock is looked at, so a future that is ready at
/// once wins even with `Duration::ZERO`; polled in a task that has spent its cooperative
/// budget (where an operation returns `Pending` without looking), the timeout yields once
/// first, as tokio's does, so that holds there too. The timer is registered only if the
/// future returns `Pending`, so a timeout around an operation that is already ready costs
/// almost nothing.
///
/// Timing out cancels the future by dropping it, like any other drop: an I/O handle it
/// borrowed stays usable afterwards.
///
/// # Panics
/// When the timer is polled outside a runtime.
///
/// ```
/// use std::time::Duration;
/// use overlap::time::{sleep, timeout};
///
/// overlap::block_on(async {
///     assert_eq!(timeout(Duration::MAX, async { 1 }).await, Ok(1));
///     let late = timeout(Duration::from_millis(1), sleep(Duration::from_secs(60))).await;
///     assert!(late.is_err());
/// });
/// ```
pub fn timeout<F: IntoFuture>(duration: Duration, future: F) -> Timeout<F::IntoFuture> {
    timeout_at(super::deadline_after(super::now(), duration), future)
}

/// Like [`timeout`], with a deadline instead of a duration.
///
/// ```
/// use std::time::Duration;
/// use overlap::time::Instant;
/// use overlap::time::{sleep, timeout_at};
///
/// overlap::block_on(async {
///     let deadline = Instant::now() + Duration::from_millis(1);
///     let res = timeout_at(deadline, sleep(Duration::from_secs(60))).await;
///     assert!(res.is_err() && Instant::now() >= deadline);
/// });
/// ```
pub fn timeout_at<F: IntoFuture>(deadline: Instant, future: F) -> Timeout<F::IntoFuture> {
    Timeout {
        future: future.into_future(),
        sleep: sleep_until(deadline),
        starved: false,
    }
}

pin_project! {
    /// The future returned by [`timeout`] and [`timeout_at`].
    ///
    /// Dropping it drops the inner future and cancels the timer.
    #[must_use = "futures do nothing unless polled"]
    pub struct Timeout<F> {
        #[pin]
        future: F,
        sleep: Sleep,
        // The last poll began on a spent budget and yielded instead of looking at the clock.
        starved: bool,
    }
}

impl<F> Timeout<F> {
    /// The instant at which the timeout expires.
    pub fn deadline(&self) -> Instant {
        self.sleep.deadline()
    }

    /// The inner future.
    pub fn get_ref(&self) -> &F {
        &self.future
    }

    /// The inner future, mutably (only if it is `Unpin`, or through a pinned projection).
    pub fn get_mut(&mut self) -> &mut F {
        &mut self.future
    }

    /// Gives back the inner future, dropping the timer.
    pub fn into_inner(self) -> F {
        self.future
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let had_budget = crate::coop::has_budget_left();
        if let Poll::Ready(out) = this.future.poll(cx) {
            return Poll::Ready(Ok(out));
        }
        if had_budget {
            *this.starved = false;
        } else if !*this.starved {
            // The task spent its budget before this poll, so the future may have returned
            // `Pending` without looking (a receive with a value queued): the clock must not
            // win over it. Yield once; the next poll brings a fresh budget. Once only, so a
            // task whose every poll spends its budget elsewhere still times out.
            *this.starved = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        // Unbudgeted: a future that keeps spending the whole budget must still time out.
        match this.sleep.poll_elapsed(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed(()))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Terminated once it has returned `Ready`: its future finished, or its time ran out.
impl<F: futures_core::FusedFuture> futures_core::FusedFuture for Timeout<F> {
    fn is_terminated(&self) -> bool {
        // Its sleep is polled without the budget, so a sleep seen elapsed means this returned.
        self.future.is_terminated() || self.sleep.has_elapsed()
    }
}

impl<F> fmt::Debug for Timeout<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("sleep", &self.sleep)
            .finish_non_exhaustive()
    }
}

/// The error of a [`Timeout`] whose deadline passed before its future finished.
///
/// Converts into an [`io::Error`] of kind [`io::ErrorKind::TimedOut`], so `?` works in
/// functions returning `io::Result`.
///
/// ```
/// use std::io;
/// use std::time::Duration;
/// use overlap::time::{sleep, timeout};
///
/// async fn slow() -> io::Result<()> {
///     timeout(Duration::from_millis(1), sleep(Duration::from_secs(60))).await?;
///     Ok(())
/// }
/// let err = overlap::block_on(slow()).unwrap_err();
/// assert_eq!(err.kind(), io::ErrorKind::TimedOut);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elapsed(());

impl Elapsed {
    /// The error of a deadline that passed (for the stream adapters' timeouts).
    pub(crate) fn new() -> Elapsed {
        Elapsed(())
    }
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl Error for Elapsed {}

impl From<Elapsed> for io::Error {
    fn from(e: Elapsed) -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, e)
    }
}
