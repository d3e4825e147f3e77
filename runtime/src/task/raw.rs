//! The raw task: one heap cell holding a header and the future (later its output).
//!
//! This is the task system's unsafe layer, kept small so the executor above it is safe Rust.
//! The state it keeps, and who may touch which part, is described in `state.rs`; the wakers
//! are in `waker.rs`.
//!
//! # Invariants
//! 1. The stage (future or output), the join slot and `flags` are touched only on the thread
//!    that owns the runtime the task was spawned on; `refs` too while the runtime runs
//!    (afterwards under the remote queue's lock). Other threads touch only `remote`
//!    (atomically) and `shared` (an `Arc<Shared>`, which is `Sync`).
//! 2. The cell is freed exactly once: by whoever gives up the last claim in the `remote`
//!    word (see `state.rs`). Before that point the runtime thread has already dropped the
//!    future and the output, so freeing never runs user code on a foreign thread.

use std::cell::{Cell, UnsafeCell};
use std::future::Future;
use std::mem::{self, ManuallyDrop};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{Poll, Waker};

pub(crate) use super::join::Repr;
use super::state::{
    CANCELLED, COMPLETE, FAILED, FINISHED, JOIN_INTEREST, MAIN, NOTES, OUTPUT_TAKEN, REMOTE_ABORT,
    REMOTE_QUEUED, SCHEDULED, SHARED_FINISH, UNIT,
};
use super::{Id, JoinError};
use crate::executor::{Core, Shared};
use cell::{drop_error, Stage, TaskCell};
pub(crate) use units::CellCredit;

mod cell;
mod units;

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
    /// The runtime's `Shared`, kept alive by the cell's unit of its count (`units.rs`);
    /// released when the cell is freed.
    shared: *const Shared,
    /// The `JoinHandle`'s waker; once the task failed, its error ([`FAILED`] says which).
    join: UnsafeCell<WakerOrError>,
}

/// The join slot: a waiting `JoinHandle`'s waker until the task completes; then, if it failed
/// (panicked or was cancelled), its error until the handle reads or drops it. The error
/// takes the waker's place instead of a place in the stage, so a failure costs a small
/// task's cell nothing: the stage of `async {}` is one byte, and its cell fits a 64-byte
/// allocation (a separate error would make it 80).
///
/// The slot holds `error` exactly while [`FAILED`] is set, otherwise `waker` (maybe `None`).
/// Every error is read or dropped on the runtime thread before the cell is freed.
union WakerOrError {
    waker: ManuallyDrop<Option<Waker>>,
    error: ManuallyDrop<Repr>,
}

// The header's size is part of every task's memory (a tracked benchmark); the error a
// failed task keeps is one word pair, its task ID being the cell's address (`id.rs`), and
// it shares its place with the join waker.
const _: () = assert!(mem::size_of::<Header>() == 48);
const _: () = assert!(mem::size_of::<Repr>() == 16);
const _: () = assert!(mem::size_of::<WakerOrError>() == 16);

/// The per-future-type operations, monomorphised once per spawned future type.
struct TaskVTable {
    poll: unsafe fn(NonNull<Header>) -> Polled,
    cancel: unsafe fn(NonNull<Header>) -> Repr,
    read_output: unsafe fn(NonNull<Header>, *mut ()),
    drop_stage: unsafe fn(NonNull<Header>),
    dealloc: unsafe fn(NonNull<Header>),
}

/// How a poll of a task's future ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Polled {
    /// The future is not done.
    Pending,
    /// The future returned; its output is stored.
    Returned,
    /// The future panicked and is dropped; its error waits for [`take_poll_panic`], which
    /// the caller calls next, on this thread. (Handed over aside, so that every poll returns
    /// one byte, not a 24-byte `Option` of an error that is almost never there.)
    Panicked,
}

thread_local! {
    /// The error of the poll that just returned [`Polled::Panicked`] on this thread.
    static POLL_PANIC: Cell<Option<Repr>> = const { Cell::new(None) };
}

/// Puts a panicking poll's error where [`take_poll_panic`] finds it.
fn hand_over_panic(err: Repr) {
    // Fails only while this thread's locals are being destroyed (a runtime driven from a
    // thread-local's destructor): the error is dropped, and the task reports a cancellation.
    let _ = POLL_PANIC.try_with(|p| p.set(Some(err)));
}

/// The error of the poll that just returned [`Polled::Panicked`] on this thread.
pub(crate) fn take_poll_panic() -> Repr {
    POLL_PANIC
        .try_with(Cell::take)
        .ok()
        .flatten()
        .unwrap_or(Repr::Cancelled)
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
    /// Runtime thread only: the cell's unit of `shared`'s count comes from `credit`, the
    /// runtime's own.
    pub(crate) fn allocate<F: Future + 'static>(
        future: F,
        shared: &Arc<Shared>,
        credit: &CellCredit,
    ) -> TaskPtr {
        credit.take(shared);
        Self::allocate_with(future, shared, SCHEDULED | JOIN_INTEREST, 2)
    }

    /// Allocates the stand-in task of a `block_on` future ([`MAIN`], see `main_task.rs`):
    /// never queued, no JoinHandle, one local reference (its owner's), and marked woken.
    pub(crate) fn allocate_main(shared: &Arc<Shared>) -> TaskPtr {
        units::take_units(shared, 1);
        Self::allocate_with(std::future::pending::<()>(), shared, MAIN | SCHEDULED, 1)
    }

    /// For the [`MAIN`] task: lowers [`SCHEDULED`] (its "woken" flag); returns whether it
    /// was set. Runtime thread only.
    pub(crate) fn take_scheduled(&self) -> bool {
        let f = self.flags();
        self.set_flags(f & !SCHEDULED);
        f & SCHEDULED != 0
    }

    /// The caller took the cell's unit of `shared`'s count.
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
                shared: Arc::as_ptr(shared),
                join: UnsafeCell::new(WakerOrError {
                    waker: ManuallyDrop::new(None),
                }),
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

    /// Polls the future once. Runtime thread only.
    pub(crate) fn poll(&self) -> Polled {
        // SAFETY: called on the runtime thread (invariant 1) for a task not yet complete.
        unsafe { (self.header().vtable.poll)(self.0) }
    }

    /// Drops the future; returns the error to hand to [`finish`](TaskPtr::finish)
    /// (cancelled, or a panic if the future's destructor panicked). Runtime thread only.
    #[must_use]
    pub(crate) fn cancel(&self) -> Repr {
        // SAFETY: runtime thread only (invariant 1).
        unsafe { (self.header().vtable.cancel)(self.0) }
    }

    /// Marks the task complete after its output was stored, or with the error it failed
    /// with: wakes the JoinHandle, or drops the output (or error) at once when nobody will
    /// read it. Runtime thread only.
    pub(crate) fn finish(&self, failure: Option<Repr>) {
        let h = self.header();
        let f = self.flags();
        self.set_flags(f | COMPLETE);
        if f & SHARED_FINISH != 0 {
            h.remote.fetch_or(FINISHED, Ordering::Release);
        }
        if f & JOIN_INTEREST != 0 {
            let waker = self.take_join_waker();
            if let Some(err) = failure {
                self.store_failure(err);
            }
            if let Some(w) = waker {
                // A waker of the user's own (a hand-written combinator polling the handle)
                // may panic, even with a payload that panics when dropped; the loop must
                // not unwind with the task half-completed.
                crate::unwind::contain(|| w.wake());
            }
        } else {
            // SAFETY: runtime thread only (invariant 1).
            unsafe { (h.vtable.drop_stage)(self.0) };
            if let Some(err) = failure {
                drop_error(err);
            }
        }
    }

    /// Takes the JoinHandle's waker out of the join slot. Runtime thread only, with
    /// [`FAILED`] clear.
    fn take_join_waker(&self) -> Option<Waker> {
        debug_assert!(self.flags() & FAILED == 0);
        // SAFETY: runtime thread only (invariant 1), and no other borrow of the slot is live;
        // without FAILED the slot holds a waker.
        unsafe { Option::take(&mut (*self.header().join.get()).waker) }
    }

    /// Puts a failed task's error in the join slot, whose waker was taken. Runtime thread
    /// only.
    fn store_failure(&self, err: Repr) {
        // SAFETY: runtime thread only (invariant 1); the slot holds a taken (`None`) waker,
        // which owns nothing, so writing over it leaks nothing.
        unsafe { (*self.header().join.get()).error = ManuallyDrop::new(err) };
        self.set_flags(self.flags() | FAILED);
    }

    /// Takes the error out of the join slot, leaving an empty waker there. Runtime thread
    /// only, with [`FAILED`] set.
    fn take_failure(&self) -> Repr {
        let f = self.flags();
        debug_assert!(f & FAILED != 0);
        // SAFETY: runtime thread only (invariant 1), no other borrow of the slot is live;
        // with FAILED the slot holds an error, moved out here and never read again, since
        // the slot is made an empty waker at once.
        let err = unsafe {
            let slot = &mut *self.header().join.get();
            let err = ManuallyDrop::take(&mut slot.error);
            slot.waker = ManuallyDrop::new(None);
            err
        };
        self.set_flags(f & !FAILED);
        err
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
        if self.flags() & COMPLETE == 0 {
            // SAFETY: runtime thread only (invariant 1); the borrow ends within this statement
            // and runs no user code (`will_wake` compares pointers). An incomplete task's slot
            // holds a waker (FAILED is set only on completion).
            let stored = unsafe { (*h.join.get()).waker.as_ref() };
            if stored.is_some_and(|w| w.will_wake(waker)) {
                return;
            }
            // The clone is user code (a waker of the caller's own), which may run this task's
            // runtime until the task completes, or drop it, which cancels the task: either
            // may put an error in the slot. So it is made with the slot not borrowed, and the
            // state read again after it.
            let new = waker.clone();
            if self.flags() & COMPLETE == 0 {
                // SAFETY: as above; the task is still incomplete, so the slot holds a waker,
                // and nothing runs while it is borrowed.
                let old = unsafe { (*(*h.join.get()).waker).replace(new) };
                // Dropped only once the cell is no longer borrowed: a waker's drop is user
                // code, which may even drop the runtime, whose shutdown takes and wakes the
                // waker stored here (dropping the old one in place used to let it do so
                // mid-drop: a double free).
                drop(old);
                return;
            }
            // The task completed meanwhile: its output (or error) is ready now.
            drop(new);
        }
        if self.flags() & FAILED != 0 {
            let err = self.take_failure();
            *out = Poll::Ready(Err(JoinError::new(err, Id::of(*self))));
        } else {
            // SAFETY: the caller guarantees `T` matches; runtime thread only.
            unsafe {
                (h.vtable.read_output)(self.0, (out as *mut Poll<Result<T, JoinError>>).cast())
            };
        }
        self.set_flags(self.flags() | OUTPUT_TAKEN);
    }

    /// JoinHandle side: the handle goes away. Drops an unread output or error and the
    /// handle's local reference. Runtime thread only.
    pub(crate) fn drop_join(self) {
        let h = self.header();
        let f = self.flags();
        self.set_flags(f & !JOIN_INTEREST);
        if f & FAILED != 0 {
            drop_error(self.take_failure());
        } else {
            drop(self.take_join_waker());
        }
        if f & COMPLETE != 0 {
            // SAFETY: runtime thread only (invariant 1); the future is already gone.
            unsafe { (h.vtable.drop_stage)(self.0) };
        }
        super::waker::release_local_ref(self);
    }
}
