//! The cooperative budget: how many ready I/O operations a task may do per poll.
//!
//! Each task poll starts with [`BUDGET`] units. Every readiness check that returns `Ready`
//! spends one; once none are left, readiness checks return `Pending` after waking the task, so
//! it goes to the back of the run queue. A hot connection or an `accept` loop that never sees
//! `WouldBlock` therefore cannot starve other tasks or the reactor. The `sync` channels and
//! locks spend it the same way ([`budgeted`]), so do a `Sleep` and a join (a `JoinHandle`
//! or `JoinSet::join_next` that returns an output).

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll};

/// Units of budget a task gets per poll.
pub(crate) const BUDGET: u32 = 128;

/// What [`LEFT`] holds outside a poll by a runtime's loop: no limit.
const UNLIMITED: u32 = u32::MAX;

/// What [`LEFT`] holds once the poll's budget ran out and that was counted: a poll is counted
/// as exhausted once, however many operations it then tries.
const EXHAUSTED: u32 = u32::MAX - 1;

/// What [`LEFT`] holds while a loop's poll runs an [`unconstrained`] future: no limit, but
/// still inside the loop's poll (see [`in_loop_poll`]).
const UNCONSTRAINED: u32 = u32::MAX - 2;

thread_local! {
    /// Budget left for the task being polled on this thread. Per thread, not per runtime: the
    /// loop that polls a task refills it, whichever runtime is current meanwhile (a task may
    /// hold another runtime's `Runtime::enter` guard across an `.await`). Outside such a
    /// poll (another executor polling under a guard, a blocking job) there is no limit.
    static LEFT: Cell<u32> = const { Cell::new(UNLIMITED) };
}

/// Gives the task the loop is about to poll a full budget, until the returned guard drops
/// (after the poll, or while a panic unwinds out of it): then there is no limit again.
pub(crate) fn poll_budget() -> PollBudget {
    LEFT.with(|l| l.set(BUDGET));
    PollBudget(())
}

/// See [`poll_budget`].
pub(crate) struct PollBudget(());

impl Drop for PollBudget {
    fn drop(&mut self) {
        LEFT.with(|l| l.set(UNLIMITED));
    }
}

/// Spends one unit of the current task's budget, or returns `Pending` (after scheduling the
/// task again) when it is spent. Outside a runtime there is no budget.
pub(crate) fn poll_proceed(cx: &mut Context<'_>) -> Poll<()> {
    let spent = crate::executor::with_current(|core| !spend(core));
    if spent == Some(true) {
        cx.waker().wake_by_ref();
        return Poll::Pending;
    }
    Poll::Ready(())
}

/// Whether a runtime's loop is polling a task (or `block_on`'s future) on this thread now.
pub(crate) fn in_loop_poll() -> bool {
    LEFT.with(Cell::get) != UNLIMITED
}

/// Spends one unit of `core`'s current task budget; false if none was left (the caller then
/// schedules the task again and returns `Pending`). For callers that hold the core already.
pub(crate) fn spend(core: &crate::executor::Core) -> bool {
    let left = LEFT.with(Cell::get);
    match left {
        UNLIMITED | UNCONSTRAINED => true,
        EXHAUSTED => false,
        0 => {
            core.count_budget_exhausted();
            LEFT.with(|l| l.set(EXHAUSTED));
            false
        }
        _ => {
            LEFT.with(|l| l.set(left - 1));
            true
        }
    }
}

/// Runs `poll` under the budget, for operations that do not go through the reactor (the
/// `sync` channels and locks): spends a unit first (`Pending`, with the task rescheduled,
/// once none is left), and gives it back if `poll` turns out `Pending`. An always-ready
/// receive or acquire loop thus yields every [`BUDGET`] operations, as I/O does.
#[inline]
pub(crate) fn budgeted<T>(
    cx: &mut Context<'_>,
    poll: impl FnOnce(&mut Context<'_>) -> Poll<T>,
) -> Poll<T> {
    if poll_proceed(cx).is_pending() {
        return Poll::Pending;
    }
    let res = poll(cx);
    if res.is_pending() {
        refund();
    }
    res
}

/// Whether the task being polled has budget left (always, outside a loop's poll). Spends
/// nothing. For a [`Timeout`](crate::time::Timeout): polled on a spent budget, the future
/// it wraps may have returned `Pending` without looking.
pub(crate) fn has_budget_left() -> bool {
    !matches!(LEFT.with(Cell::get), 0 | EXHAUSTED)
}

/// Gives back the unit spent by a readiness check that turned out `Pending`.
pub(crate) fn refund() {
    LEFT.with(|l| {
        if l.get() < BUDGET {
            l.set(l.get() + 1);
        }
    });
}

/// Spends a unit of budget for an operation that does not go through the reactor (a timer, a
/// channel). Returns `Pending` after scheduling the task when the budget is spent.
///
/// ```
/// use std::cell::Cell;
/// use std::future::poll_fn;
/// use std::rc::Rc;
///
/// overlap::block_on(async {
///     let other_ran = Rc::new(Cell::new(false));
///     let flag = other_ran.clone();
///     overlap::spawn(async move { flag.set(true) });
///     // A loop of always-ready operations still yields to others now and then.
///     for _ in 0..1000 {
///         poll_fn(|cx| overlap::coop_poll_proceed(cx)).await;
///     }
///     assert!(other_ran.get(), "the loop let the other task run");
/// });
/// ```
pub fn coop_poll_proceed(cx: &mut Context<'_>) -> Poll<()> {
    poll_proceed(cx)
}

/// [`budgeted`] for overlap's other crates (`overlap-fs`): spends a unit of the task's
/// budget first (`Pending`, with the task scheduled again, once none is left) and gives it
/// back if `poll` turns out `Pending`, so that an operation that waits costs nothing.
#[doc(hidden)]
pub fn coop_budgeted<T>(
    cx: &mut Context<'_>,
    poll: impl FnOnce(&mut Context<'_>) -> Poll<T>,
) -> Poll<T> {
    budgeted(cx, poll)
}

/// [`refund`] for overlap's other crates (`overlap-pipe`): gives back a unit that a
/// readiness check spent for an operation that then waits on another fd after all.
#[doc(hidden)]
pub fn coop_refund() {
    refund();
}

/// Spends one unit of the current task's budget, and yields to the runtime (once) if it was
/// spent, as tokio's `task::consume_budget` does: for a loop of work that never waits (CPU
/// work, or operations of a library that knows nothing of the budget), so that it lets the
/// other tasks and the reactor run every 128 rounds without paying a yield in each.
///
/// Cancel-safe: dropping it gives up nothing.
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
///
/// overlap::block_on(async {
///     let other_ran = Rc::new(Cell::new(false));
///     let flag = other_ran.clone();
///     overlap::spawn(async move { flag.set(true) });
///     let mut rounds = 0;
///     while !other_ran.get() {
///         rounds += 1; // some work that never waits
///         overlap::task::consume_budget().await;
///     }
///     // A poll's budget is 128 units: the 129th call yields, and the other task runs.
///     assert_eq!(rounds, 129);
/// });
/// ```
pub async fn consume_budget() {
    poll_fn(poll_proceed).await
}

/// Runs `future` free of the cooperative budget, as tokio's `task::unconstrained` does:
/// while it is polled, I/O, channels, locks and timers inside it never return `Pending`
/// just because the task used up its budget, and it spends none of the budget of the rest
/// of the task.
///
/// Only for a future that is known to end or to wait soon: one that keeps finding work
/// ready starves every other task and the reactor for as long as it runs.
///
/// ```
/// use overlap::sync::mpsc;
///
/// overlap::block_on(async {
///     let (tx, mut rx) = mpsc::unbounded_channel();
///     for i in 0..1000 {
///         tx.send(i).unwrap();
///     }
///     // Drains all 1000 in one go, with no forced yield every 128.
///     let sum = overlap::task::unconstrained(async {
///         let mut sum = 0;
///         for _ in 0..1000 {
///             sum += rx.recv().await.unwrap();
///         }
///         sum
///     })
///     .await;
///     assert_eq!(sum, 499_500);
/// });
/// ```
pub fn unconstrained<F: Future>(future: F) -> Unconstrained<F> {
    Unconstrained { future }
}

pin_project_lite::pin_project! {
    /// The future returned by [`unconstrained`].
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct Unconstrained<F> {
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for Unconstrained<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        /// Puts the task's own budget back after the poll, also when it unwinds.
        struct Restore(u32);
        impl Drop for Restore {
            fn drop(&mut self) {
                LEFT.with(|l| l.set(self.0));
            }
        }
        let before = LEFT.with(Cell::get);
        let _restore = Restore(before);
        if before != UNLIMITED {
            LEFT.with(|l| l.set(UNCONSTRAINED));
        }
        self.project().future.poll(cx)
    }
}
