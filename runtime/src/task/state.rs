//! The two halves of a task's state: what only its runtime thread touches, and the one word
//! other threads may touch.
//!
//! # Why two halves
//! Almost every wake, waker clone and waker drop happens on the runtime's own thread (a task
//! wakes another through a channel, the reactor wakes a task it stores). Those paths use
//! plain `Cell`s and no atomic instruction at all. Other threads go through an atomic word
//! and the runtime's remote queue, which the runtime thread drains.
//!
//! # Owner half (`Header::flags`, `Header::refs`)
//! Touched only on the runtime thread while the runtime runs ("owner context": the thread is
//! inside that runtime's `block_on` and the runtime is not shutting down). Once the runtime
//! has closed its remote queue, `refs` is touched only under that queue's lock (by any
//! thread), and `flags` only by the thread that owned the runtime.
//!
//! - [`SCHEDULED`]: the task sits in the local run queue. The entry is a claim on the cell.
//! - [`COMPLETE`]: the future is gone (returned, panicked or cancelled); wakes are ignored.
//! - [`CANCELLED`]: `abort()` was asked for; the next run drops the future instead of polling.
//! - [`JOIN_INTEREST`]: the `JoinHandle` still exists and will read the output.
//! - [`MAIN`]: the task stands in for a `block_on` future and is never queued.
//! - [`FAILED`]: the task panicked or was cancelled, and its error, not yet read or
//!   dropped, sits where the `JoinHandle`'s waker was (`raw.rs`, `WakerOrError`).
//! - `refs` counts *local references*: the task registry (until the task completes), the
//!   `JoinHandle`, every waker made in owner context, and every remote-queue entry that
//!   carries a reference to drop.
//!
//! # Shared half (`Header::remote`, atomic)
//! - [`REMOTE_QUEUED`]: a wake entry for the task sits in the remote queue; later remote wakes
//!   need not queue another. The bit is a claim on the cell.
//! - the count, in [`UNIT`]s: one for every waker made outside owner context, plus one
//!   standing for all local claims together, held while `refs > 0` or [`SCHEDULED`] is set.
//! - two notes ([`NOTES`]), which are not claims: [`REMOTE_ABORT`], an abort asked for from
//!   another thread, and [`FINISHED`], completion as any thread may read it.
//!
//! Whoever gives up the last claim (the word but its notes) frees the cell; a release that
//! finds its own unit the only claim left skips the atomic subtraction, since no claim
//! remains to make another. Local references never come back
//! from zero (a waker cloned at home from a task with no local references is counted in the
//! shared half), so the standing unit is given up exactly once.

/// The task is in the local run queue; the entry keeps the cell alive.
pub(crate) const SCHEDULED: u8 = 1 << 0;
/// The future has been dropped; the stage holds the output or nothing.
pub(crate) const COMPLETE: u8 = 1 << 1;
/// `abort()` was called: drop the future on the next run.
pub(crate) const CANCELLED: u8 = 1 << 2;
/// The `JoinHandle` is alive and wants the output.
pub(crate) const JOIN_INTEREST: u8 = 1 << 3;
/// The stand-in for a `block_on` future (`main_task.rs`): scheduling it sets [`SCHEDULED`]
/// without queueing it, and `block_on` reads and clears that bit as its "woken" flag.
pub(crate) const MAIN: u8 = 1 << 4;
/// The `JoinHandle` has taken the output: it is terminated (`FusedFuture`).
pub(crate) const OUTPUT_TAKEN: u8 = 1 << 5;
/// An `AbortHandle` was made: finishing also sets [`FINISHED`] in the shared word, where
/// any thread can read it. (Other tasks skip that atomic operation.)
pub(crate) const SHARED_FINISH: u8 = 1 << 6;
/// The task failed (panicked or was cancelled) and the header's join slot holds its error
/// instead of a waker, until the `JoinHandle` reads or drops it.
pub(crate) const FAILED: u8 = 1 << 7;

/// A remote wake entry for the task is queued.
pub(crate) const REMOTE_QUEUED: u32 = 1;
/// An `AbortHandle` on another thread asked for an abort: the runtime thread applies it
/// when it handles the task's wake entry (queued with it), and clears it.
pub(crate) const REMOTE_ABORT: u32 = 1 << 1;
/// The task is complete (set only with [`SHARED_FINISH`]).
pub(crate) const FINISHED: u32 = 1 << 2;
/// The bits of the shared word that are notes, not claims: they never keep the cell alive.
pub(crate) const NOTES: u32 = REMOTE_ABORT | FINISHED;
/// One claim in the shared count.
pub(crate) const UNIT: u32 = 1 << 3;
