//! The bits of a task's state word.
//!
//! One `AtomicUsize` per task holds flags in its low byte and a reference count above them.
//! It is the only part of a task that threads other than the runtime's may touch.
//!
//! - [`SCHEDULED`]: the task sits in a run queue (the local one or the remote one). The queue
//!   entry owns the task's memory while the bit is set, like a reference would, so a task is
//!   freed only when the count is zero *and* this bit is clear. Setting it is how a wake
//!   enqueues; a wake that finds it already set does nothing, so a task is queued at most once.
//! - [`COMPLETE`]: the future is gone (it returned, panicked, or was cancelled). Wakes are
//!   ignored from then on. Only the runtime thread sets it.
//! - [`CANCELLED`]: `abort()` was asked for; the next run drops the future instead of polling.
//! - the count ([`REF_ONE`] per reference) counts: the runtime's task registry (until the task
//!   completes), the `JoinHandle` (until it is dropped), and each live `Waker`.

/// The task is in a run queue; the queue entry keeps its memory alive.
pub(crate) const SCHEDULED: usize = 1 << 0;
/// The future has been dropped; the stage holds the output or nothing.
pub(crate) const COMPLETE: usize = 1 << 1;
/// `abort()` was called: drop the future on the next run.
pub(crate) const CANCELLED: usize = 1 << 2;
/// One reference in the count.
pub(crate) const REF_ONE: usize = 1 << 8;

/// Number of references counted in the state word `s`.
pub(crate) fn refs(s: usize) -> usize {
    s >> 8
}
