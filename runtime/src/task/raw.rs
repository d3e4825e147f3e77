//! The raw task: one heap cell holding a header and the future (later its output).
//!
//! This is the task system's unsafe layer, kept small so the executor above it is safe Rust.
//!
//! # Invariants
//! 1. The stage (future or output), `join_waker`, `join_interest` and `registry_key` are
//!    touched only on the thread that owns the runtime the task was spawned on. Other threads
//!    touch only `state` (atomically) and `shared` (an `Arc<Shared>`, which is `Sync`).
//! 2. The cell is freed exactly once: by whoever moves the state word to "no references and
//!    not [`SCHEDULED`]" (see `state.rs`). Before that point the runtime thread has already
//!    dropped the future and the output, so freeing never runs user code on a foreign thread.

use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::future::Future;
use std::mem;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use super::state::{self, CANCELLED, COMPLETE, REF_ONE, SCHEDULED};
use super::JoinError;
use crate::executor::Shared;

/// The type-independent start of every task cell.
#[repr(C)]
pub(crate) struct Header {
    state: AtomicUsize,
    vtable: &'static TaskVTable,
    /// An `Arc<Shared>` turned into a raw pointer; released when the cell is freed.
    shared: *const Shared,
    join_waker: UnsafeCell<Option<Waker>>,
    join_interest: Cell<bool>,
    registry_key: Cell<usize>,
}

/// The per-future-type operations, monomorphised once per spawned future type.
struct TaskVTable {
    poll: unsafe fn(NonNull<Header>) -> bool,
    cancel: unsafe fn(NonNull<Header>),
    read_output: unsafe fn(NonNull<Header>, *mut ()),
    drop_stage: unsafe fn(NonNull<Header>),
    dealloc: unsafe fn(NonNull<Header>),
}

enum Stage<F: Future> {
    Running(F),
    Finished(Result<F::Output, JoinError>),
    Consumed,
}

#[repr(C)]
struct TaskCell<F: Future> {
    header: Header,
    stage: UnsafeCell<Stage<F>>,
}

/// A pointer to a live task cell. Copying it does not count a reference: who holds one must
/// hold a reference or the [`SCHEDULED`] bit by other means.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct TaskPtr(NonNull<Header>);

// SAFETY: a TaskPtr that crosses threads is only used for the state word and the `shared`
// pointer (invariant 1); everything else is touched on the runtime thread.
unsafe impl Send for TaskPtr {}

impl TaskPtr {
    /// Allocates a task for `future`, with two references (registry and JoinHandle) and the
    /// [`SCHEDULED`] bit set, because the caller is about to put it in the run queue.
    pub(crate) fn allocate<F: Future + 'static>(future: F, shared: &Arc<Shared>) -> TaskPtr {
        let cell = Box::new(TaskCell {
            header: Header {
                state: AtomicUsize::new((2 * REF_ONE) | SCHEDULED),
                vtable: &TaskCell::<F>::VTABLE,
                shared: Arc::into_raw(shared.clone()),
                join_waker: UnsafeCell::new(None),
                join_interest: Cell::new(true),
                registry_key: Cell::new(usize::MAX),
            },
            stage: UnsafeCell::new(Stage::Running(future)),
        });
        TaskPtr(NonNull::from(Box::leak(cell)).cast())
    }

    fn header(&self) -> &Header {
        // SAFETY: a TaskPtr always points at a live cell (see the type's docs).
        unsafe { self.0.as_ref() }
    }

    pub(crate) fn state(&self) -> usize {
        self.header().state.load(Ordering::Acquire)
    }

    /// The runtime this task belongs to.
    pub(crate) fn shared(&self) -> &Shared {
        // SAFETY: the cell holds a counted `Arc<Shared>` until it is freed.
        unsafe { &*self.header().shared }
    }

    /// Sets [`SCHEDULED`] unless it or [`COMPLETE`] is already set. Returns whether the
    /// caller must now push the task on a run queue.
    pub(crate) fn transition_to_scheduled(&self) -> bool {
        let st = &self.header().state;
        let mut cur = st.load(Ordering::Relaxed);
        loop {
            if cur & (SCHEDULED | COMPLETE) != 0 {
                return false;
            }
            match st.compare_exchange_weak(
                cur,
                cur | SCHEDULED,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// A by-value wake: schedules the task if needed and gives up the Waker's reference, in
    /// one atomic step (the hot path of every channel and I/O wake).
    fn wake_by_val(self) {
        let st = &self.header().state;
        let mut cur = st.load(Ordering::Relaxed);
        loop {
            let enqueue = cur & (SCHEDULED | COMPLETE) == 0;
            let next = (cur - REF_ONE) | if enqueue { SCHEDULED } else { 0 };
            match st.compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => {
                    if enqueue {
                        // The SCHEDULED claim keeps the cell alive without our reference.
                        crate::executor::schedule(self);
                    } else if state::refs(next) == 0 && next & SCHEDULED == 0 {
                        // SAFETY: that was the last claim on the cell (invariant 2).
                        unsafe { (self.header().vtable.dealloc)(self.0) };
                    }
                    return;
                }
                Err(actual) => cur = actual,
            }
        }
    }

    /// Marks the task for cancellation. Returns false if it already completed.
    pub(crate) fn set_cancelled(&self) -> bool {
        let prev = self.header().state.fetch_or(CANCELLED, Ordering::AcqRel);
        prev & COMPLETE == 0
    }

    /// Takes the task off a run queue: clears [`SCHEDULED`]. Returns the state before, or
    /// `None` if that was the last claim on the cell, which has then been freed.
    pub(crate) fn unschedule(self) -> Option<usize> {
        let prev = self.header().state.fetch_and(!SCHEDULED, Ordering::AcqRel);
        if state::refs(prev) == 0 {
            // SAFETY: no references and no queue entry remain (invariant 2).
            unsafe { (self.header().vtable.dealloc)(self.0) };
            return None;
        }
        Some(prev)
    }

    /// Adds a reference (for a new Waker).
    fn ref_inc(&self) {
        let prev = self.header().state.fetch_add(REF_ONE, Ordering::Relaxed);
        if prev > isize::MAX as usize {
            std::process::abort();
        }
    }

    /// Drops one reference, freeing the cell if it was the last claim on it.
    pub(crate) fn ref_dec(self) {
        let prev = self.header().state.fetch_sub(REF_ONE, Ordering::AcqRel);
        if state::refs(prev) == 1 && prev & SCHEDULED == 0 {
            // SAFETY: that was the last reference and no queue holds the task (invariant 2).
            unsafe { (self.header().vtable.dealloc)(self.0) };
        }
    }

    /// Polls the future once. Returns true if it completed (returned or panicked); its
    /// output is then stored. Runtime thread only.
    pub(crate) fn poll(&self) -> bool {
        // SAFETY: called on the runtime thread (invariant 1) for a task not yet complete.
        unsafe { (self.header().vtable.poll)(self.0) }
    }

    /// Drops the future and stores a cancelled `JoinError`. Runtime thread only.
    pub(crate) fn cancel(&self) {
        // SAFETY: runtime thread only (invariant 1).
        unsafe { (self.header().vtable.cancel)(self.0) }
    }

    /// Marks the task complete after its output was stored: wakes the JoinHandle, or drops
    /// the output at once when nobody will read it. Runtime thread only.
    pub(crate) fn finish(&self) {
        let h = self.header();
        h.state.fetch_or(COMPLETE, Ordering::AcqRel);
        if h.join_interest.get() {
            // SAFETY: runtime thread only (invariant 1); no other borrow of the cell is live.
            let waker = unsafe { (*h.join_waker.get()).take() };
            if let Some(w) = waker {
                w.wake();
            }
        } else {
            // SAFETY: runtime thread only (invariant 1).
            unsafe { (h.vtable.drop_stage)(self.0) };
        }
    }

    pub(crate) fn registry_key(&self) -> usize {
        self.header().registry_key.get()
    }

    pub(crate) fn set_registry_key(&self, key: usize) {
        self.header().registry_key.set(key)
    }

    /// JoinHandle side: moves the output into `out` if the task is complete, otherwise stores
    /// `waker` to be woken on completion. Runtime thread only.
    ///
    /// # Safety
    /// `T` must be the output type of the future this task was spawned with.
    pub(crate) unsafe fn poll_join<T>(&self, out: &mut Poll<Result<T, JoinError>>, waker: &Waker) {
        let h = self.header();
        if h.state.load(Ordering::Acquire) & COMPLETE != 0 {
            // SAFETY: the caller guarantees `T` matches; runtime thread only.
            unsafe {
                (h.vtable.read_output)(self.0, (out as *mut Poll<Result<T, JoinError>>).cast())
            };
            return;
        }
        // SAFETY: runtime thread only (invariant 1); nothing else borrows the cell now.
        let slot = unsafe { &mut *h.join_waker.get() };
        match slot {
            Some(w) if w.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
    }

    /// JoinHandle side: the handle goes away. Drops an unread output. Runtime thread only.
    pub(crate) fn drop_join(self) {
        let h = self.header();
        h.join_interest.set(false);
        // SAFETY: runtime thread only (invariant 1).
        let waker = unsafe { (*h.join_waker.get()).take() };
        drop(waker);
        if h.state.load(Ordering::Acquire) & COMPLETE != 0 {
            // SAFETY: runtime thread only (invariant 1); the future is already gone.
            unsafe { (h.vtable.drop_stage)(self.0) };
        }
        self.ref_dec();
    }
}

impl<F: Future + 'static> TaskCell<F> {
    const VTABLE: TaskVTable = TaskVTable {
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
    unsafe fn poll(ptr: NonNull<Header>) -> bool {
        // A borrowed waker: it does not own a reference, so it must not be dropped.
        // SAFETY: WAKER_VTABLE upholds the RawWaker contract; ManuallyDrop keeps the count.
        let waker = mem::ManuallyDrop::new(unsafe {
            Waker::from_raw(RawWaker::new(ptr.as_ptr() as *const (), &WAKER_VTABLE))
        });
        let mut cx = Context::from_waker(&waker);
        // SAFETY: caller's contract.
        let stage = unsafe { Self::stage(ptr) };
        let Stage::Running(fut) = stage else {
            return true;
        };
        // SAFETY: the future lives inside a heap cell that never moves until it is freed, and
        // it is dropped in place, so it is pinned.
        let fut = unsafe { Pin::new_unchecked(fut) };
        let result = match catch_unwind(AssertUnwindSafe(|| fut.poll(&mut cx))) {
            Ok(Poll::Pending) => return false,
            Ok(Poll::Ready(v)) => Ok(v),
            Err(payload) => Err(JoinError::panic(payload)),
        };
        Self::replace_stage(stage, Stage::Finished(result));
        true
    }

    /// Replaces the stage without letting a panicking destructor unwind into the runtime.
    fn replace_stage(stage: &mut Stage<F>, new: Stage<F>) {
        let old = mem::replace(stage, new);
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| drop(old))) {
            forget_payload(payload);
        }
    }

    /// # Safety
    /// As for [`Self::stage`].
    unsafe fn cancel(ptr: NonNull<Header>) {
        // SAFETY: caller's contract.
        let stage = unsafe { Self::stage(ptr) };
        Self::replace_stage(stage, Stage::Finished(Err(JoinError::cancelled())));
    }

    /// # Safety
    /// As for [`Self::stage`]; `out` must point at a `Poll<Result<F::Output, JoinError>>`.
    unsafe fn read_output(ptr: NonNull<Header>, out: *mut ()) {
        // SAFETY: caller's contract.
        let stage = unsafe { Self::stage(ptr) };
        if let Stage::Finished(res) = mem::replace(stage, Stage::Consumed) {
            // SAFETY: caller's contract on `out`; assignment drops the old `Pending` value.
            unsafe { *out.cast::<Poll<Result<F::Output, JoinError>>>() = Poll::Ready(res) };
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
        // SAFETY: `shared` came from Arc::into_raw in `allocate` and is released once, here.
        drop(unsafe { Arc::from_raw(cell.header.shared) });
        // The runtime thread already emptied the stage (invariant 2), so this runs no user
        // code even on a foreign thread; a join waker left behind is Send.
        drop(cell);
    }
}

/// A panic payload whose own destructor panicked: leaking it is the only safe choice.
fn forget_payload(payload: Box<dyn Any + Send>) {
    mem::forget(payload);
}

static WAKER_VTABLE: RawWakerVTable =
    RawWakerVTable::new(waker_clone, waker_wake, waker_wake_by_ref, waker_drop);

/// # Safety
/// `ptr` is the data pointer of a task Waker: a live task cell on which it owns a reference.
unsafe fn waker_clone(ptr: *const ()) -> RawWaker {
    // SAFETY: caller's contract: the pointer is a live, non-null task cell.
    let task = TaskPtr(unsafe { NonNull::new_unchecked(ptr as *mut Header) });
    task.ref_inc();
    RawWaker::new(ptr, &WAKER_VTABLE)
}

/// # Safety
/// As for [`waker_clone`]; consumes the Waker's reference.
unsafe fn waker_wake(ptr: *const ()) {
    // SAFETY: caller's contract.
    let task = TaskPtr(unsafe { NonNull::new_unchecked(ptr as *mut Header) });
    task.wake_by_val();
}

/// # Safety
/// As for [`waker_clone`].
unsafe fn waker_wake_by_ref(ptr: *const ()) {
    // SAFETY: caller's contract.
    let task = TaskPtr(unsafe { NonNull::new_unchecked(ptr as *mut Header) });
    if task.transition_to_scheduled() {
        crate::executor::schedule(task);
    }
}

/// # Safety
/// As for [`waker_clone`]; consumes the Waker's reference.
unsafe fn waker_drop(ptr: *const ()) {
    // SAFETY: caller's contract.
    let task = TaskPtr(unsafe { NonNull::new_unchecked(ptr as *mut Header) });
    task.ref_dec();
}
