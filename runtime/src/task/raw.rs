//! The raw task: one heap cell holding a header and the future (later its output).
//!
//! This is the task system's unsafe layer, kept small so the executor above it is safe Rust.
//! The state it keeps, and who may touch which part, is described in `state.rs`; the wakers
//! are in `waker.rs`.
//!
//! # Invariants
//! 1. The stage (future or output), `join_waker` and `flags` are touched only on the thread
//!    that owns the runtime the task was spawned on; `refs` too while the runtime runs
//!    (afterwards under the remote queue's lock). Other threads touch only `remote`
//!    (atomically) and `shared` (an `Arc<Shared>`, which is `Sync`).
//! 2. The cell is freed exactly once: by whoever gives up the last claim in the `remote`
//!    word (see `state.rs`). Before that point the runtime thread has already dropped the
//!    future and the output, so freeing never runs user code on a foreign thread.

use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::future::Future;
use std::mem;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use super::join::Repr;
use super::state::{
    CANCELLED, COMPLETE, FINISHED, JOIN_INTEREST, MAIN, NOTES, OUTPUT_TAKEN, REMOTE_ABORT,
    REMOTE_QUEUED, SCHEDULED, SHARED_FINISH, UNIT,
};
use super::{Id, JoinError};
use crate::executor::{Core, Shared};

/// The type-independent start of every task cell (48 bytes).
#[repr(C)]
pub(crate) struct Header {
    /// The shared half of the state (`state.rs`).
    remote: AtomicU32,
    /// The owner's flags (`state.rs`).
    flags: Cell<u8>,
    /// Local references (`state.rs`).
    refs: Cell<u32>,
    registry_key: Cell<u32>,
    vtable: &'static TaskVTable,
    /// An `Arc<Shared>` turned into a raw pointer; released when the cell is freed.
    shared: *const Shared,
    join_waker: UnsafeCell<Option<Waker>>,
}

// The header's size is part of every task's memory (a tracked benchmark); the error a
// finished task keeps is one word pair, its task ID being the cell's address (`id.rs`).
const _: () = assert!(mem::size_of::<Header>() == 48);
const _: () = assert!(mem::size_of::<Repr>() == 16);

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
    /// The error is kept without its task ID (which is the cell's address, see `id.rs`),
    /// so that it takes no room in the cell: `read_output` adds it.
    Finished(Result<F::Output, Repr>),
    Consumed,
}

#[repr(C)]
struct TaskCell<F: Future> {
    header: Header,
    stage: UnsafeCell<Stage<F>>,
}

/// What a remote-queue entry asks the runtime thread to do with a task.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum RemoteOp {
    /// Schedule it; the entry holds the [`REMOTE_QUEUED`] claim.
    Wake,
    /// Drop one local reference, which the entry carries.
    Release,
    /// Both.
    WakeRelease,
}

/// A pointer to a live task cell. Copying it does not count a reference: who holds one must
/// hold a claim on the cell by other means.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct TaskPtr(NonNull<Header>);

// SAFETY: a TaskPtr that crosses threads is only used for the `remote` word and the `shared`
// pointer, plus `refs` under the closed queue's lock (invariant 1); everything else is
// touched on the runtime thread.
unsafe impl Send for TaskPtr {}

impl TaskPtr {
    /// Allocates a task for `future` with two local references (registry and JoinHandle),
    /// join interest, and [`SCHEDULED`] set, because the caller is about to queue it.
    pub(crate) fn allocate<F: Future + 'static>(future: F, shared: &Arc<Shared>) -> TaskPtr {
        Self::allocate_with(future, shared, SCHEDULED | JOIN_INTEREST, 2)
    }

    /// Allocates the stand-in task of a `block_on` future ([`MAIN`], see `main_task.rs`):
    /// never queued, no JoinHandle, one local reference (its owner's), and marked woken.
    pub(crate) fn allocate_main(shared: &Arc<Shared>) -> TaskPtr {
        Self::allocate_with(std::future::pending::<()>(), shared, MAIN | SCHEDULED, 1)
    }

    /// For the [`MAIN`] task: lowers [`SCHEDULED`] (its "woken" flag); returns whether it
    /// was set. Runtime thread only.
    pub(crate) fn take_scheduled(&self) -> bool {
        let f = self.flags();
        self.set_flags(f & !SCHEDULED);
        f & SCHEDULED != 0
    }

    fn allocate_with<F: Future + 'static>(
        future: F,
        shared: &Arc<Shared>,
        flags: u8,
        refs: u32,
    ) -> TaskPtr {
        let cell = Box::new(TaskCell {
            header: Header {
                remote: AtomicU32::new(UNIT),
                flags: Cell::new(flags),
                refs: Cell::new(refs),
                registry_key: Cell::new(u32::MAX),
                vtable: &TaskCell::<F>::VTABLE,
                shared: Arc::into_raw(shared.clone()),
                join_waker: UnsafeCell::new(None),
            },
            stage: UnsafeCell::new(Stage::Running(future)),
        });
        TaskPtr(NonNull::from(Box::leak(cell)).cast())
    }

    /// # Safety
    /// `ptr` must be the data pointer of a task waker (a live task cell).
    pub(crate) unsafe fn from_raw(ptr: *const ()) -> TaskPtr {
        // SAFETY: caller's contract: a live, non-null cell.
        TaskPtr(unsafe { NonNull::new_unchecked(ptr as *mut Header) })
    }

    pub(crate) fn as_raw(self) -> *const () {
        self.0.as_ptr() as *const ()
    }

    /// The cell's address: the task's [`Id`] (see `id.rs`).
    pub(crate) fn addr(self) -> std::num::NonZeroUsize {
        self.0.addr()
    }

    fn header(&self) -> &Header {
        // SAFETY: a TaskPtr always points at a live cell (see the type's docs).
        unsafe { self.0.as_ref() }
    }

    /// The runtime this task belongs to.
    pub(crate) fn shared(&self) -> &Shared {
        // SAFETY: the cell holds a counted `Arc<Shared>` until it is freed.
        unsafe { &*self.header().shared }
    }

    pub(crate) fn shared_ptr(&self) -> *const Shared {
        self.header().shared
    }

    /// The owner's flags. Runtime thread only.
    pub(crate) fn flags(&self) -> u8 {
        self.header().flags.get()
    }

    fn set_flags(&self, f: u8) {
        self.header().flags.set(f)
    }

    /// The number of local references. Owner context only.
    pub(crate) fn local_refs(&self) -> u32 {
        self.header().refs.get()
    }

    /// Owner context: sets [`SCHEDULED`] unless it or [`COMPLETE`] is set, and if so queues
    /// the task on `core` (unless it is the [`MAIN`] stand-in, for which the bit is all).
    pub(crate) fn schedule_local(self, core: &Core) {
        if self.mark_scheduled() && self.flags() & MAIN == 0 {
            core.push_local(self);
        }
    }

    /// Owner context: sets [`SCHEDULED`] unless it or [`COMPLETE`] is set; returns whether
    /// it did, so that the caller must queue the task (the entry is a claim on it).
    pub(crate) fn mark_scheduled(self) -> bool {
        let f = self.flags();
        let free = f & (SCHEDULED | COMPLETE) == 0;
        if free {
            self.set_flags(f | SCHEDULED);
        }
        free
    }

    /// Owner context: takes the task off the local run queue. Returns the flags before, or
    /// `None` if that was the last local claim (the task is complete and nobody refers to
    /// it locally), in which case the cell may already be freed.
    pub(crate) fn unschedule_local(self) -> Option<u8> {
        let f = self.flags();
        self.set_flags(f & !SCHEDULED);
        if self.local_refs() == 0 {
            self.release_unit();
            return None;
        }
        Some(f)
    }

    /// Owner context: one more local reference.
    pub(crate) fn ref_inc_local(&self) {
        let refs = &self.header().refs;
        match refs.get().checked_add(1) {
            Some(n) => refs.set(n),
            None => std::process::abort(),
        }
    }

    /// Owner context: drops one local reference.
    pub(crate) fn ref_dec_local(self) {
        let refs = &self.header().refs;
        let n = refs.get() - 1;
        refs.set(n);
        if n == 0 && self.flags() & SCHEDULED == 0 {
            self.release_unit();
        }
    }

    /// Closed runtime, under the remote queue's lock: drops one local reference. Returns
    /// whether the caller must free the cell (after releasing the lock).
    pub(crate) fn ref_dec_closed(self) -> bool {
        let refs = &self.header().refs;
        let n = refs.get() - 1;
        refs.set(n);
        // No task of a closed runtime is in a local run queue (`Core::shutdown`).
        n == 0 && self.release_unit_deferred()
    }

    /// One more claim in the shared count (a waker made outside owner context).
    pub(crate) fn unit_inc(&self) {
        let prev = self.header().remote.fetch_add(UNIT, Ordering::Relaxed);
        if prev > u32::MAX / 2 {
            std::process::abort();
        }
    }

    /// Gives up one shared claim, freeing the cell if it was the last.
    pub(crate) fn release_unit(self) {
        if self.release_unit_deferred() {
            // SAFETY: that was the last claim on the cell (invariant 2).
            unsafe { self.dealloc() };
        }
    }

    /// Gives up one shared claim; returns whether it was the last, so the caller must free.
    fn release_unit_deferred(self) -> bool {
        let remote = &self.header().remote;
        // The usual last release: the caller's unit is the only claim. Nobody else holds
        // one, so nobody can make one (a claim comes only from a claim) or touch the word:
        // no read-modify-write is needed. The acquire pairs with the release of whoever gave
        // up a claim before, as the `fetch_sub` would.
        if remote.load(Ordering::Acquire) & !NOTES == UNIT {
            return true;
        }
        remote.fetch_sub(UNIT, Ordering::AcqRel) & !NOTES == UNIT
    }

    /// A remote wake: sets [`REMOTE_QUEUED`] and, if `release_unit`, gives up one shared
    /// claim in the same step. Returns whether the bit was clear, so the caller must queue
    /// a [`RemoteOp::Wake`] entry. Never frees: the bit is left as a claim.
    pub(crate) fn mark_remote(&self, release_unit: bool) -> bool {
        let dec = if release_unit { UNIT } else { 0 };
        let prev = if dec == 0 {
            self.header()
                .remote
                .fetch_or(REMOTE_QUEUED, Ordering::AcqRel)
        } else {
            let st = &self.header().remote;
            let mut cur = st.load(Ordering::Relaxed);
            loop {
                let next = (cur - dec) | REMOTE_QUEUED;
                match st.compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Relaxed) {
                    Ok(_) => break cur,
                    Err(actual) => cur = actual,
                }
            }
        };
        prev & REMOTE_QUEUED == 0
    }

    /// Clears [`REMOTE_QUEUED`] once its entry is handled, and takes [`REMOTE_ABORT`] with
    /// it. Returns whether the caller must free the cell (that bit was the last claim), and
    /// whether an abort was asked for.
    pub(crate) fn clear_remote(self) -> (bool, bool) {
        let prev = self
            .header()
            .remote
            .fetch_and(!(REMOTE_QUEUED | REMOTE_ABORT), Ordering::AcqRel);
        (prev & !NOTES == REMOTE_QUEUED, prev & REMOTE_ABORT != 0)
    }

    /// From any thread holding a claim: notes an abort for the runtime thread to apply when
    /// it handles the task's next wake entry (see [`clear_remote`](Self::clear_remote)).
    pub(crate) fn note_remote_abort(&self) {
        self.header()
            .remote
            .fetch_or(REMOTE_ABORT, Ordering::AcqRel);
    }

    /// Runtime thread: from now on, completion is also noted where any thread can read it
    /// ([`FINISHED`]), for an `AbortHandle`'s `is_finished`.
    pub(crate) fn share_finish(self) {
        let f = self.flags();
        if f & SHARED_FINISH == 0 {
            self.set_flags(f | SHARED_FINISH);
            if f & COMPLETE != 0 {
                self.header().remote.fetch_or(FINISHED, Ordering::Release);
            }
        }
    }

    /// From any thread holding a claim, for a task whose completion is shared (see
    /// [`share_finish`](Self::share_finish)): whether it is complete.
    pub(crate) fn is_finished_shared(&self) -> bool {
        self.header().remote.load(Ordering::Acquire) & FINISHED != 0
    }

    /// Frees the cell.
    ///
    /// # Safety
    /// The caller brought the `remote` word to zero: no claim on the cell is left.
    pub(crate) unsafe fn dealloc(self) {
        // SAFETY: caller's contract.
        unsafe { (self.header().vtable.dealloc)(self.0) };
    }

    /// Asks the task to stop (for its handles): marks it cancelled and schedules it, unless
    /// it already completed. Runtime thread only.
    pub(crate) fn abort(self) {
        if self.set_cancelled() {
            super::waker::wake_by_ref(self);
        }
    }

    /// Whether the future is gone (returned, panicked or cancelled). Runtime thread only.
    pub(crate) fn is_complete(&self) -> bool {
        self.flags() & COMPLETE != 0
    }

    /// Marks the task for cancellation. Returns false if it already completed. Runtime
    /// thread only.
    pub(crate) fn set_cancelled(&self) -> bool {
        let f = self.flags();
        self.set_flags(f | CANCELLED);
        f & COMPLETE == 0
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
        let f = self.flags();
        self.set_flags(f | COMPLETE);
        if f & SHARED_FINISH != 0 {
            h.remote.fetch_or(FINISHED, Ordering::Release);
        }
        if f & JOIN_INTEREST != 0 {
            // SAFETY: runtime thread only (invariant 1); no other borrow of the cell is live.
            let waker = unsafe { (*h.join_waker.get()).take() };
            if let Some(w) = waker {
                // A waker of the user's own (a hand-written combinator polling the handle)
                // may panic; the loop must not unwind with the task half-completed.
                let _ = catch_unwind(AssertUnwindSafe(|| w.wake()));
            }
        } else {
            // SAFETY: runtime thread only (invariant 1).
            unsafe { (h.vtable.drop_stage)(self.0) };
        }
    }

    pub(crate) fn registry_key(&self) -> usize {
        self.header().registry_key.get() as usize
    }

    pub(crate) fn set_registry_key(&self, key: usize) {
        let key = u32::try_from(key).expect("more than 4 billion live tasks");
        self.header().registry_key.set(key)
    }

    /// JoinHandle side: moves the output into `out` if the task is complete, otherwise stores
    /// `waker` to be woken on completion. Runtime thread only.
    ///
    /// # Safety
    /// `T` must be the output type of the future this task was spawned with.
    pub(crate) unsafe fn poll_join<T>(&self, out: &mut Poll<Result<T, JoinError>>, waker: &Waker) {
        let h = self.header();
        let f = self.flags();
        if f & COMPLETE != 0 {
            // SAFETY: the caller guarantees `T` matches; runtime thread only.
            unsafe {
                (h.vtable.read_output)(self.0, (out as *mut Poll<Result<T, JoinError>>).cast())
            };
            self.set_flags(f | OUTPUT_TAKEN);
            return;
        }
        let old = {
            // SAFETY: runtime thread only (invariant 1); nothing else borrows the cell now,
            // and the borrow ends before any user code runs (the clone is made first).
            let slot = unsafe { &mut *h.join_waker.get() };
            match slot {
                Some(w) if w.will_wake(waker) => return,
                _ => slot.replace(waker.clone()),
            }
        };
        // Dropped only once the cell is no longer borrowed: a waker's drop is user code,
        // which may even drop the runtime, whose shutdown takes and wakes the waker stored
        // here (dropping the old one in place used to let it do so mid-drop: a double free).
        drop(old);
    }

    /// JoinHandle side: the handle goes away. Drops an unread output and the handle's local
    /// reference. Runtime thread only.
    pub(crate) fn drop_join(self) {
        let h = self.header();
        let f = self.flags();
        self.set_flags(f & !JOIN_INTEREST);
        // SAFETY: runtime thread only (invariant 1).
        let waker = unsafe { (*h.join_waker.get()).take() };
        drop(waker);
        if f & COMPLETE != 0 {
            // SAFETY: runtime thread only (invariant 1); the future is already gone.
            unsafe { (h.vtable.drop_stage)(self.0) };
        }
        super::waker::release_local_ref(self);
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
        // SAFETY: the task is live and being polled on its runtime thread, in owner context.
        let waker = unsafe { super::waker::borrowed(TaskPtr(ptr)) };
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
            Err(payload) => Err(Repr::panic(payload)),
        };
        Self::replace_stage(stage, Stage::Finished(result));
        true
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
    unsafe fn cancel(ptr: NonNull<Header>) {
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
        unsafe { std::ptr::write(slot, Stage::Finished(Err(err))) };
    }

    /// # Safety
    /// As for [`Self::stage`]; `out` must point at a `Poll<Result<F::Output, JoinError>>`.
    unsafe fn read_output(ptr: NonNull<Header>, out: *mut ()) {
        // SAFETY: caller's contract.
        let stage = unsafe { Self::stage(ptr) };
        if let Stage::Finished(res) = mem::replace(stage, Stage::Consumed) {
            let res = res.map_err(|repr| JoinError::new(repr, Id::of(TaskPtr(ptr))));
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

/// Drops the payload of a destructor's panic, where no unwinding may escape; one whose own
/// destructor panics too is leaked, the only safe choice.
#[cold]
#[inline(never)]
fn drop_payload(payload: Box<dyn Any + Send>) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        mem::forget(again);
    }
}
