//! Task wakers: one vtable per half of the task state (see `state.rs`).
//!
//! - A **local** waker is counted in the task's local references. It is what a task's own
//!   poll hands out, and what cloning in owner context makes. In owner context every
//!   operation on it is a few plain loads and stores.
//! - A **shared** waker is counted atomically. Cloning any waker outside owner context makes
//!   one; it works from every thread.
//!
//! Outside owner context, an operation that must touch local state (waking, or dropping a
//! local waker) becomes an entry in the runtime's remote queue, which the runtime thread
//! applies; a wake also sets [`REMOTE_QUEUED`](super::state::REMOTE_QUEUED) so that many
//! remote wakes queue one entry.

use std::mem::ManuallyDrop;
use std::task::{RawWaker, RawWakerVTable, Waker};

use super::raw::{RemoteOp, TaskPtr};
use crate::executor::with_owner;

// Cloning and waking by reference do not depend on how the waker is counted: both vtables
// share those entries.
static LOCAL: RawWakerVTable =
    RawWakerVTable::new(raw_clone, local_wake, raw_wake_by_ref, local_drop);

static SHARED: RawWakerVTable =
    RawWakerVTable::new(raw_clone, shared_wake, raw_wake_by_ref, shared_drop);

/// The waker a task is polled with: local, and owning no reference, so it must never be
/// dropped (hence `ManuallyDrop`); clones of it count their own.
///
/// # Safety
/// `task` must be live and polled in owner context for as long as the waker is used.
pub(crate) unsafe fn borrowed(task: TaskPtr) -> ManuallyDrop<Waker> {
    // SAFETY: LOCAL upholds the RawWaker contract for a live task; the caller keeps the task
    // live, and ManuallyDrop keeps the reference count untouched.
    ManuallyDrop::new(unsafe { Waker::from_raw(RawWaker::new(task.as_raw(), &LOCAL)) })
}

/// Whether `waker` is one of `task`'s own wakers (not, say, a combinator's that wraps it).
pub(crate) fn is_own(waker: &Waker, task: TaskPtr) -> bool {
    waker.data() == task.as_raw()
        && (std::ptr::eq(waker.vtable(), &LOCAL) || std::ptr::eq(waker.vtable(), &SHARED))
}

/// Queues `op` for `task` on its runtime's remote queue (see `Shared::push_remote`), and
/// frees the cell if the runtime is gone and that was the last claim.
fn push_remote(task: TaskPtr, op: RemoteOp) {
    if task.shared().push_remote(task, op) {
        // SAFETY: `push_remote` applied `op` to a closed runtime's task and took the last
        // claim on the cell; nothing refers to it any more.
        unsafe { task.dealloc() };
    }
}

/// Drops one local reference from anywhere: at once in owner context, otherwise through
/// the remote queue.
pub(crate) fn release_local_ref(task: TaskPtr) {
    if with_owner(task, |_| task.ref_dec_local()).is_none() {
        push_remote(task, RemoteOp::Release);
    }
}

/// Schedules `task` from anywhere, without giving up any reference.
pub(crate) fn wake_by_ref(task: TaskPtr) {
    if with_owner(task, |core| task.schedule_local(core)).is_none() && task.mark_remote(false) {
        push_remote(task, RemoteOp::Wake);
    }
}

/// Aborts `task` from anywhere: at once in owner context; otherwise the abort is noted in
/// the shared word and a wake entry queued, and the runtime thread applies it at its next
/// turn (see `Core::drain_remote`). The caller holds a claim on the task.
pub(crate) fn abort_from_anywhere(task: TaskPtr) {
    if with_owner(task, |_| task.abort()).is_none() {
        // The note goes first: the entry that carries it may be handled the moment it is
        // queued, and an entry handled before the note sees none; then the bit is clear
        // again and this call queues a new one.
        task.note_remote_abort();
        if task.mark_remote(false) {
            push_remote(task, RemoteOp::Wake);
        }
    }
}

/// A new waker for `task`: local when made in owner context for a task with local
/// references (so its count can be kept without atomics), shared otherwise.
fn clone_waker(task: TaskPtr) -> RawWaker {
    let local = with_owner(task, |_| {
        if task.local_refs() > 0 {
            task.ref_inc_local();
            true
        } else {
            false
        }
    });
    if local == Some(true) {
        RawWaker::new(task.as_raw(), &LOCAL)
    } else {
        task.unit_inc();
        RawWaker::new(task.as_raw(), &SHARED)
    }
}

/// A new waker for `task`, held as a claim on its cell (see `AbortHandle`): it counts
/// itself as any waker clone does, so dropping it anywhere releases the claim correctly.
/// The caller must hold a claim on the task already.
pub(crate) fn claim(task: TaskPtr) -> Waker {
    // SAFETY: `clone_waker` makes a counted waker with one of this module's vtables, which
    // uphold the RawWaker contract for a live task; the caller's claim keeps it live now.
    unsafe { Waker::from_raw(clone_waker(task)) }
}

/// A new atomically counted waker for `task`, as a claim on its cell for code on another
/// thread: dropping it anywhere costs one atomic decrement, never a remote-queue entry.
/// The caller must hold a claim on the task already.
pub(crate) fn shared_claim(task: TaskPtr) -> Waker {
    task.unit_inc();
    // SAFETY: SHARED upholds the RawWaker contract for a live task, and the unit counted
    // just above is the one this waker owns.
    unsafe { Waker::from_raw(RawWaker::new(task.as_raw(), &SHARED)) }
}

/// # Safety
/// `ptr` is the data pointer of a task waker (either vtable): a live task cell on which it
/// holds a claim.
unsafe fn raw_clone(ptr: *const ()) -> RawWaker {
    // SAFETY: caller's contract.
    clone_waker(unsafe { TaskPtr::from_raw(ptr) })
}

/// # Safety
/// As for [`raw_clone`]; consumes the waker's local reference.
unsafe fn local_wake(ptr: *const ()) {
    // SAFETY: caller's contract.
    let task = unsafe { TaskPtr::from_raw(ptr) };
    let home = with_owner(task, |core| {
        task.schedule_local(core);
        task.ref_dec_local();
    });
    if home.is_none() {
        let op = if task.mark_remote(false) {
            RemoteOp::WakeRelease
        } else {
            RemoteOp::Release
        };
        push_remote(task, op);
    }
}

/// # Safety
/// As for [`raw_clone`].
unsafe fn raw_wake_by_ref(ptr: *const ()) {
    // SAFETY: caller's contract.
    wake_by_ref(unsafe { TaskPtr::from_raw(ptr) });
}

/// # Safety
/// As for [`raw_clone`]; consumes the waker's local reference.
unsafe fn local_drop(ptr: *const ()) {
    // SAFETY: caller's contract.
    release_local_ref(unsafe { TaskPtr::from_raw(ptr) });
}

/// # Safety
/// As for [`raw_clone`], for a shared waker; consumes its unit.
unsafe fn shared_wake(ptr: *const ()) {
    // SAFETY: caller's contract.
    let task = unsafe { TaskPtr::from_raw(ptr) };
    if with_owner(task, |core| task.schedule_local(core)).is_some() {
        task.release_unit();
    } else if task.mark_remote(true) {
        // The unit went in the same atomic step; the queued bit keeps the cell alive.
        push_remote(task, RemoteOp::Wake);
    }
}

/// # Safety
/// As for [`raw_clone`], for a shared waker; consumes its unit.
unsafe fn shared_drop(ptr: *const ()) {
    // SAFETY: caller's contract.
    unsafe { TaskPtr::from_raw(ptr) }.release_unit();
}
