//! The stand-in task behind the `block_on` future's waker.
//!
//! The future given to `block_on` is not a task (it borrows from the caller's stack), yet its
//! waker should be as cheap as a task's: cloned, woken and dropped at home without atomics,
//! and usable from any thread. So `block_on` makes a task cell marked
//! [`MAIN`](super::state::MAIN) that is never queued or polled: waking it only sets its
//! `SCHEDULED` bit, which `block_on` reads as "the main future was woken". Remote wakes reach
//! it through the remote queue like any task's.

use std::sync::Arc;
use std::task::Waker;

use super::raw::TaskPtr;
use super::waker;
use crate::executor::Shared;

/// Owns the stand-in task for one `block_on` call. Dropping it completes the task (later
/// wakes do nothing) and gives up its reference; wakers may outlive it.
#[derive(Debug)]
pub(crate) struct MainTask {
    task: TaskPtr,
    /// `!Send`: the flags are the runtime thread's.
    _not_send: std::marker::PhantomData<std::rc::Rc<()>>,
}

impl MainTask {
    /// Makes the stand-in for the runtime owning `shared`, marked woken so the main future
    /// is polled first thing.
    pub(crate) fn new(shared: &Arc<Shared>) -> MainTask {
        MainTask {
            task: TaskPtr::allocate_main(shared),
            _not_send: std::marker::PhantomData,
        }
    }

    /// The stand-in task (for `Core` to recognise the future's own waker).
    pub(crate) fn task(&self) -> TaskPtr {
        self.task
    }

    /// Lowers the woken flag; returns whether it was raised.
    pub(crate) fn take_woken(&self) -> bool {
        self.task.take_scheduled()
    }

    /// Whether the main future was woken since the flag was last lowered.
    pub(crate) fn is_woken(&self) -> bool {
        self.task.flags() & super::state::SCHEDULED != 0
    }

    /// Runs `f` with the main future's waker. Call in owner context (inside `block_on`).
    pub(crate) fn with_waker<R>(&self, f: impl FnOnce(&Waker) -> R) -> R {
        // SAFETY: `self` keeps the task live (and not complete) for the whole call, and the
        // caller is in owner context; the borrowed waker does not escape `f` (clones made in
        // it count their own references).
        let waker = unsafe { waker::borrowed(self.task) };
        f(&waker)
    }
}

impl Drop for MainTask {
    fn drop(&mut self) {
        // Complete it so later wakes are ignored; no queue entry holds it, so lower the
        // woken bit (a claim on the cell) before giving up the reference.
        let err = self.task.cancel();
        self.task.finish(Some(err));
        self.task.take_scheduled();
        waker::release_local_ref(self.task);
    }
}
