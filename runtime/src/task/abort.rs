//! `AbortHandle`: stops a task without owning its output.

use std::fmt;
use std::marker::PhantomData;
use std::rc::Rc;
use std::task::Waker;

use super::id::Id;
use super::raw::TaskPtr;

/// A handle that can stop a task, but not await it: made by [`JoinHandle::abort_handle`]
/// or returned by [`JoinSet::spawn`](crate::JoinSet::spawn). It can be cloned freely.
///
/// Dropping it does nothing to the task. It keeps the task's memory (not its future, nor its
/// output) alive until dropped. Like the task, it belongs to the runtime's thread (`!Send`).
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
    _not_send: PhantomData<Rc<()>>,
}

impl AbortHandle {
    /// # Safety
    /// `claim` must be a waker of `task`, made by the task system.
    pub(crate) unsafe fn new(task: TaskPtr, claim: Waker) -> AbortHandle {
        AbortHandle {
            task,
            _claim: claim,
            _not_send: PhantomData,
        }
    }

    /// Asks the task to stop, as [`JoinHandle::abort`](crate::JoinHandle::abort) does: its
    /// future is dropped at the runtime's next turn, and its `JoinHandle` then gives a
    /// cancelled error (a panic error if dropping its future panicked). A task that already
    /// finished keeps its output.
    pub fn abort(&self) {
        self.task.abort();
    }

    /// Whether the task has finished: returned, panicked, or been cancelled.
    pub fn is_finished(&self) -> bool {
        self.task.is_complete()
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
