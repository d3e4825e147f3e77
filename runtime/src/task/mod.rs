//! Tasks: `spawn`, `JoinHandle`, `AbortOnDropHandle`, `JoinSet`, `TaskTracker`, `yield_now`.

mod abort;
mod abort_on_drop;
mod id;
mod join;
mod join_next;
mod join_set;
mod local;
mod main_task;
pub(crate) mod raw;
pub(crate) mod state;
mod tracker;
pub(crate) mod waker;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

pub use abort::AbortHandle;
pub use abort_on_drop::AbortOnDropHandle;
pub use id::{id, try_id, Id};
pub use join::{JoinError, JoinHandle};
pub use join_next::{JoinNext, JoinNextWithId};
pub use join_set::JoinSet;
pub use local::{AccessError, LocalKey, TaskLocalFuture};
pub(crate) use main_task::MainTask;
pub use tracker::{TaskTracker, TaskTrackerToken, TaskTrackerWaitFuture, TrackedFuture};

/// Spawns a future as a new task on the current thread's runtime.
///
/// The future need not be `Send`: tasks never leave the runtime's thread, so `Rc` and
/// `RefCell` work inside them. The task starts running at the runtime's next turn, whether or
/// not the returned [`JoinHandle`] is awaited; dropping the handle detaches the task.
///
/// # Panics
/// When called outside a runtime: not inside [`block_on`](crate::block_on) or
/// [`Runtime::block_on`](crate::Runtime::block_on), nor under a
/// [`Runtime::enter`](crate::Runtime::enter) guard (where the task waits for that
/// runtime's next `block_on`). [`try_spawn`] hands the future back instead. A
/// blocking-pool thread and [`Handle::block_on`](crate::Handle::block_on) run no runtime:
/// there `Handle::current().spawn(..)` starts a task on the runtime they belong to.
///
/// ```
/// use std::{cell::RefCell, rc::Rc};
///
/// overlap::block_on(async {
///     let log = Rc::new(RefCell::new(Vec::new()));
///     let l = log.clone();
///     overlap::spawn(async move { l.borrow_mut().push("task") }).await.unwrap();
///     assert_eq!(*log.borrow(), ["task"]);
/// });
/// ```
#[track_caller]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
{
    crate::executor::with_current(|core| core.spawn(future)).unwrap_or_else(|| {
        crate::executor::no_runtime_here(
            "overlap::spawn",
            "overlap::Handle::current().spawn(..)` (or `spawn_with(..)`, for a future that is \
             not `Send`",
        )
    })
}

/// Like [`spawn`], but outside a runtime it hands the future back instead of panicking: for
/// code that may run either way, such as a destructor that wants to finish work in the
/// background.
///
/// ```
/// let outside = overlap::try_spawn(async { 1 });
/// assert!(outside.is_err());
/// overlap::block_on(async {
///     let inside = overlap::try_spawn(async { 2 }).ok().unwrap();
///     assert_eq!(inside.await.unwrap(), 2);
/// });
/// ```
pub fn try_spawn<F>(future: F) -> Result<JoinHandle<F::Output>, F>
where
    F: Future + 'static,
{
    if crate::executor::with_current(|_| ()).is_none() {
        return Err(future);
    }
    Ok(spawn(future))
}

/// Yields once to the runtime, letting other ready tasks, the reactor and the timers run
/// before this task continues: the task is woken again after the loop's next look at I/O
/// and timers, behind every task ready by then (as tokio does). A task that yields while it
/// waits for another task's I/O thus sees that I/O after one yield. Polled with any other
/// waker than its task's own (by another executor, or a combinator such as
/// `FuturesUnordered` that wakes its futures through wakers of its own), it wakes that
/// waker at once instead, as it cannot tell whether a runtime loop will ever come back to
/// it; the reactor then gets its turn after at most `event_interval` task polls.
///
/// ```
/// overlap::block_on(async {
///     overlap::yield_now().await;
/// });
/// ```
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future returned by [`yield_now`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        let deferred = crate::coop::in_loop_poll()
            && crate::executor::with_driving(|core| core.defer(cx.waker())) == Some(true);
        if !deferred {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}
