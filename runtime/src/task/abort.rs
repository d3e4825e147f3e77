//! `AbortHandle`: stops a task without owning its output.

use std::fmt;
use std::task::Waker;

use super::id::Id;
use super::raw::TaskPtr;

/// A handle that can stop a task, but not await it: made by [`JoinHandle::abort_handle`]
/// or returned by [`JoinSet::spawn`](crate::JoinSet::spawn). It can be cloned freely.
///
/// Dropping it does nothing to the task. It keeps the task's memory (not its future, nor its
/// output) alive until dropped.
///
/// Unlike the task, it is `Send` and `Sync`, as tokio's: another thread may abort the task
/// (its future is then dropped on the runtime's thread, at the runtime's next turn), ask
/// whether it has finished, clone or drop the handle. An abort made while the runtime is
/// not running takes effect when it next runs; once the runtime is gone there is nothing
/// left to abort (its drop cancelled the task).
///
/// [`JoinHandle::abort_handle`]: crate::JoinHandle::abort_handle
///
/// ```
/// overlap::block_on(async {
///     let task = overlap::spawn(std::future::pending::<()>());
///     let stop = task.abort_handle();
///     assert!(!stop.is_finished());
///     stop.abort();
///     assert!(task.await.unwrap_err().is_cancelled());
///     assert!(stop.is_finished());
/// });
/// ```
#[derive(Clone)]
pub struct AbortHandle {
    task: TaskPtr,
    /// The claim that keeps the task cell alive: a waker of the task, which knows how to
    /// count and release itself from any context (see `waker.rs`).
    _claim: Waker,
}

// SAFETY: through `&AbortHandle`, a thread other than the task's runtime thread reaches only
// the task's atomic word (`abort_from_anywhere` off owner context, `is_finished_shared`) and
// its address (`id`); the waker claim is `Sync` itself. (`Send` follows from the fields.)
unsafe impl Sync for AbortHandle {}
// An abort is one atomic note or one call on the runtime's thread: a panic around it leaves
// nothing half done (tokio's `AbortHandle` is unwind-safe too).
impl std::panic::UnwindSafe for AbortHandle {}
impl std::panic::RefUnwindSafe for AbortHandle {}

impl AbortHandle {
    /// # Safety
    /// `claim` must be a waker of `task`, made by the task system.
    pub(crate) unsafe fn new(task: TaskPtr, claim: Waker) -> AbortHandle {
        AbortHandle {
            task,
            _claim: claim,
        }
    }

    /// Asks the task to stop, as [`JoinHandle::abort`](crate::JoinHandle::abort) does: its
    /// future is dropped at the runtime's next turn, and its `JoinHandle` then gives a
    /// cancelled error (a panic error if dropping its future panicked). A task that already
    /// finished keeps its output.
    pub fn abort(&self) {
        super::waker::abort_from_anywhere(self.task);
    }

    /// Whether the task has finished: returned, panicked, or been cancelled. From any
    /// thread.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished_shared()
    }

    /// The task's [`Id`], the same its [`JoinHandle::id`](crate::JoinHandle::id) reports.
    /// This handle keeps it from being reused (see [`Id`]).
    pub fn id(&self) -> Id {
        Id::of(self.task)
    }
}

impl fmt::Debug for AbortHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AbortHandle")
            .field("id", &self.id())
            .field("finished", &self.is_finished())
            .finish()
    }
}
