//! tokio's `task::coop` module: the calls with which a library's own futures take part in
//! the cooperative budget, 128 units of ready operations per task poll.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use crate::coop::{has_budget_left, poll_proceed as spend_or_yield, refund};

/// Whether the task being polled has budget left: `false` once it has done its 128 ready
/// operations for this poll, after which the next one returns `Pending` and the task goes
/// to the back of the queue. Always `true` outside a task's poll (a blocking job, another
/// executor) and inside [`unconstrained`](crate::unconstrained). Spends nothing: tokio's
/// `task::coop::has_budget_remaining`.
///
/// A loop that does its own ready work can stop at a good point instead of being cut off:
///
/// ```
/// use overlap::task::coop;
///
/// overlap::block_on(async {
///     let (tx, mut rx) = overlap::sync::mpsc::unbounded_channel();
///     for i in 0..1000 {
///         tx.send(i).unwrap();
///     }
///     let mut batch = Vec::new();
///     while coop::has_budget_remaining() {
///         batch.push(rx.recv().await.unwrap()); // each receive spends a unit
///     }
///     assert_eq!(batch.len(), 128, "one poll's budget");
/// });
/// ```
pub fn has_budget_remaining() -> bool {
    has_budget_left()
}

/// Spends a unit of the task's budget for an operation about to be done, or, when none is
/// left, schedules the task again and returns `Pending`: tokio's `task::coop::poll_proceed`,
/// for a leaf future of a library (a queue, a parser over a buffer) that is always ready.
///
/// The unit comes back when the returned guard is dropped, unless
/// [`made_progress`](RestoreOnPending::made_progress) was called: an operation that turns
/// out to wait costs nothing.
///
/// ```
/// use std::future::poll_fn;
/// use std::task::{ready, Poll};
/// use overlap::task::coop;
///
/// overlap::block_on(async {
///     let mut queue: std::collections::VecDeque<u32> = (0..1000).collect();
///     let mut taken = 0;
///     while taken < 1000 {
///         poll_fn(|cx| {
///             let unit = ready!(coop::poll_proceed(cx));
///             match queue.pop_front() {
///                 Some(_) => {
///                     unit.made_progress(); // spent: an item was taken
///                     taken += 1;
///                     Poll::Ready(())
///                 }
///                 None => Poll::Pending, // the unit comes back
///             }
///         })
///         .await;
///     }
/// });
/// ```
pub fn poll_proceed(cx: &mut Context<'_>) -> Poll<RestoreOnPending> {
    ready!(spend_or_yield(cx));
    Poll::Ready(RestoreOnPending { progressed: false })
}

/// A unit of budget [`poll_proceed`] spent: given back when this is dropped, unless
/// [`made_progress`](RestoreOnPending::made_progress) says the operation was done.
#[must_use = "dropped at once, it gives the unit back: keep it until the operation is done"]
pub struct RestoreOnPending {
    progressed: bool,
}

impl RestoreOnPending {
    /// The operation was done: the unit stays spent.
    pub fn made_progress(mut self) {
        self.progressed = true;
    }
}

impl Drop for RestoreOnPending {
    fn drop(&mut self) {
        if !self.progressed {
            refund();
        }
    }
}

impl fmt::Debug for RestoreOnPending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestoreOnPending")
            .field("progressed", &self.progressed)
            .finish()
    }
}

/// Makes `future` spend a unit of the task's budget each time it completes, and yield
/// (returning `Pending` after scheduling the task) when none is left: tokio's
/// `task::coop::cooperative`, for a future from a library that knows nothing of the budget
/// (always ready, it would otherwise starve the other tasks). A poll that returns `Pending`
/// spends nothing.
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// use overlap::task::coop;
///
/// overlap::block_on(async {
///     let other_ran = Rc::new(Cell::new(false));
///     let flag = other_ran.clone();
///     overlap::spawn(async move { flag.set(true) });
///     let mut rounds = 0;
///     while !other_ran.get() {
///         rounds += 1;
///         coop::cooperative(std::future::ready(())).await; // always ready
///     }
///     // 128 rounds spend the poll's budget: the 129th yields, and the other task runs.
///     assert_eq!(rounds, 129);
/// });
/// ```
pub fn cooperative<F: Future>(future: F) -> Cooperative<F> {
    Cooperative { future }
}

pin_project_lite::pin_project! {
    /// The future returned by [`cooperative`].
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct Cooperative<F> {
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for Cooperative<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let unit = ready!(poll_proceed(cx));
        let out = ready!(self.project().future.poll(cx));
        unit.made_progress();
        Poll::Ready(out)
    }
}
