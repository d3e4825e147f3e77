//! The typed half of a task cell: the stage (future, then output) behind the header, and
//! the operations of the cell's vtable, monomorphised once per spawned future type. The
//! same invariants hold as in `raw.rs`, whose private items this module shares.

use std::any::Any;
use std::cell::UnsafeCell;
use std::future::Future;
use std::mem::{self, ManuallyDrop};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll};

use super::{Header, JoinError, Polled, Repr, TaskPtr, TaskVTable, FAILED};
use crate::unwind::drop_payload;

/// What the cell holds after its header.
pub(super) enum Stage<F: Future> {
    /// The future, pinned here until it is dropped in place.
    Running(F),
    /// The output of a future that returned. A failed task's stage is `Consumed`: its
    /// error is in the header's join slot (`WakerOrError`).
    Finished(F::Output),
    /// Nothing: the output was read or dropped, or the task failed.
    Consumed,
}

/// A task's heap cell: the header first (a `NonNull<Header>` points at the whole cell).
#[repr(C)]
pub(super) struct TaskCell<F: Future> {
    pub(super) header: Header,
    pub(super) stage: UnsafeCell<Stage<F>>,
}

impl<F: Future + 'static> TaskCell<F> {
    pub(super) const VTABLE: TaskVTable = TaskVTable {
        poll: Self::poll,
        cancel: Self::cancel,
        read_output: Self::read_output,
        drop_stage: Self::drop_stage,
        dealloc: Self::dealloc,
    };

    /// # Safety
    /// `ptr` must point at a live `TaskCell<F>`, on the runtime thread (invariant 1).
    unsafe fn stage<'a>(ptr: NonNull<Header>) -> &'a mut Stage<F> {
        // SAFETY: the header is the first field of a repr(C) TaskCell<F> (caller's contract),
        // and only the runtime thread touches the stage, one borrow at a time.
        unsafe { &mut *ptr.cast::<TaskCell<F>>().as_ref().stage.get() }
    }

    /// # Safety
    /// As for [`Self::stage`]; the stage must be `Running`.
    unsafe fn poll(ptr: NonNull<Header>) -> Polled {
        // SAFETY: the task is live and being polled on its runtime thread, in owner context.
        let waker = unsafe { crate::task::waker::borrowed(TaskPtr(ptr)) };
        let mut cx = Context::from_waker(&waker);
        // SAFETY: caller's contract.
        let stage = unsafe { Self::stage(ptr) };
        let Stage::Running(fut) = stage else {
            return Polled::Returned;
        };
        // SAFETY: the future lives inside a heap cell that never moves until it is freed, and
        // it is dropped in place, so it is pinned.
        let fut = unsafe { Pin::new_unchecked(fut) };
        match catch_unwind(AssertUnwindSafe(|| fut.poll(&mut cx))) {
            Ok(Poll::Pending) => Polled::Pending,
            Ok(Poll::Ready(v)) => {
                Self::replace_stage(stage, Stage::Finished(v));
                Polled::Returned
            }
            Err(payload) => Self::poll_panicked(stage, payload),
        }
    }

    /// The future panicked while polled: drops it and hands the error over (see
    /// [`Polled::Panicked`]).
    #[cold]
    #[inline(never)]
    fn poll_panicked(stage: &mut Stage<F>, payload: Box<dyn Any + Send>) -> Polled {
        Self::replace_stage(stage, Stage::Consumed);
        super::hand_over_panic(Repr::panic(payload));
        Polled::Panicked
    }

    /// Replaces the stage without letting a panicking destructor unwind into the runtime.
    ///
    /// The old stage is dropped *where it lies*, before the new one is written: a running
    /// future is pinned, and may point into itself (a future holding a borrow of its own
    /// local, such as `tx.send(v)` on a `tx` it owns). Moving it out first, as
    /// `mem::replace` would, runs its destructor on a copy whose inner pointers lead to the
    /// overwritten cell.
    ///
    /// Inlined by force: out of line, it made spawning and joining a task about 20% slower
    /// (measured with `runtime_bench`), once the panic path gained a call.
    #[inline(always)]
    fn replace_stage(stage: &mut Stage<F>, new: Stage<F>) {
        let slot: *mut Stage<F> = stage;
        // SAFETY: `slot` comes from a live `&mut`, and is overwritten just below.
        let panicked = unsafe { Self::drop_stage_caught(slot) };
        // SAFETY: the old value was dropped just above and is never touched again, so
        // writing over it without dropping is what is needed; `slot` is valid for writes.
        unsafe { std::ptr::write(slot, new) };
        if let Some(payload) = panicked {
            drop_payload(payload);
        }
    }

    /// Drops the stage at `slot` in place, catching a panicking destructor; returns its
    /// payload. The stage counts as dropped either way: even if a destructor panics, the
    /// drop glue finishes the other fields while unwinding.
    ///
    /// # Safety
    /// `slot` must point at a valid, initialised stage, which the caller overwrites (with
    /// `ptr::write`) before anything reads it again.
    #[inline(always)]
    unsafe fn drop_stage_caught(slot: *mut Stage<F>) -> Option<Box<dyn Any + Send>> {
        // SAFETY: caller's contract: valid, and dropped exactly once here.
        catch_unwind(AssertUnwindSafe(|| unsafe {
            std::ptr::drop_in_place(slot)
        }))
        .err()
    }

    /// # Safety
    /// As for [`Self::stage`].
    unsafe fn cancel(ptr: NonNull<Header>) -> Repr {
        // SAFETY: caller's contract.
        let stage = unsafe { Self::stage(ptr) };
        let slot: *mut Stage<F> = stage;
        // A future whose destructor panics while it is aborted reports that panic (as
        // tokio's does), not a plain cancellation.
        // SAFETY: `slot` comes from a live `&mut`, and is overwritten just below.
        let err = match unsafe { Self::drop_stage_caught(slot) } {
            None => Repr::Cancelled,
            Some(payload) => Repr::panic(payload),
        };
        // SAFETY: the old value was dropped just above and is never touched again;
        // `slot` is valid for writes.
        unsafe { std::ptr::write(slot, Stage::Consumed) };
        err
    }

    /// # Safety
    /// As for [`Self::stage`]; `out` must point at a `Poll<Result<F::Output, JoinError>>`.
    unsafe fn read_output(ptr: NonNull<Header>, out: *mut ()) {
        // SAFETY: caller's contract.
        let stage = unsafe { Self::stage(ptr) };
        if let Stage::Finished(v) = mem::replace(stage, Stage::Consumed) {
            // SAFETY: caller's contract on `out`; assignment drops the old `Pending` value.
            unsafe { *out.cast::<Poll<Result<F::Output, JoinError>>>() = Poll::Ready(Ok(v)) };
        }
    }

    /// # Safety
    /// As for [`Self::stage`].
    unsafe fn drop_stage(ptr: NonNull<Header>) {
        // SAFETY: caller's contract.
        let stage = unsafe { Self::stage(ptr) };
        Self::replace_stage(stage, Stage::Consumed);
    }

    /// # Safety
    /// `ptr` must point at a `TaskCell<F>` made by `allocate`, with no claims left
    /// (invariant 2). The stage is already `Consumed` or holds only memory-owning data.
    unsafe fn dealloc(ptr: NonNull<Header>) {
        // SAFETY: caller's contract; the cell came from Box::leak in `allocate`.
        let cell = unsafe { Box::from_raw(ptr.cast::<TaskCell<F>>().as_ptr()) };
        let shared = cell.header.shared;
        // Every error is read or dropped on the runtime thread (`WakerOrError`), so the join
        // slot holds a waker, if anything; one left behind is Send. Checked all the same,
        // since the slot's reading depends on it: an error left behind would be dropped here
        // (it is Send too), never read as a waker.
        let failed = cell.header.flags.get() & FAILED != 0;
        debug_assert!(!failed, "a failed task's error outlived its handle");
        if failed {
            // SAFETY: with FAILED the slot holds an error, taken once, here; the cell is
            // dropped just below without touching the slot again.
            drop_error(unsafe { ManuallyDrop::take(&mut (*cell.header.join.get()).error) });
        } else {
            // SAFETY: without FAILED the slot holds a waker; the cell is dropped just below
            // without touching the slot again (its drop glue leaves a union alone).
            drop(unsafe { ManuallyDrop::take(&mut (*cell.header.join.get()).waker) });
        }
        // The runtime thread already emptied the stage (invariant 2), so this runs no user
        // code even on a foreign thread.
        drop(cell);
        // SAFETY: the cell, which held this unit (taken when it was allocated), is gone.
        unsafe { super::units::release_cell_unit(shared) };
    }
}

/// Drops the error of a failed task nobody will read, on the runtime thread: a panic
/// payload's destructor is user code, and may panic too.
#[cold]
#[inline(never)]
pub(super) fn drop_error(err: Repr) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(err))) {
        drop_payload(payload);
    }
}
