//! The overlap runtime: a single-threaded executor, an epoll reactor, timers and a blocking
//! pool, and on them the [`sync`] channels and locks, Unix [`signal`]s and the [`io`] helpers.
//!
//! Most users depend on the `overlap` facade crate, which re-exports everything here.
//!
//! ```
//! let n = overlap_runtime::block_on(async {
//!     let task = overlap_runtime::spawn(async { 21 * 2 });
//!     task.await.unwrap()
//! });
//! assert_eq!(n, 42);
//! ```

#[macro_use]
mod sys;

mod blocking;
pub mod codec;
mod coop;
pub mod coop_api;
mod executor;
pub mod io;
mod metrics;
mod poison;
mod reactor;
pub mod signal;
mod slab;
pub mod stream;
#[doc(hidden)]
pub use stream::random_below;
pub mod sync;
mod task;
pub mod time;
mod unwind;

pub use blocking::{
    durable_work, spawn_blocking, spawn_blocking_detached, spawn_blocking_or_error, DurableWork,
};
pub use coop::{consume_budget, coop_poll_proceed, unconstrained, Unconstrained};
#[doc(hidden)]
pub use coop::{coop_budgeted, coop_refund};
#[doc(hidden)]
pub use executor::block_on_start_paused;
pub use executor::{block_on, metrics, Builder, Handle, RemoteJoinHandle, Runtime, RuntimeGuard};
pub use metrics::RuntimeMetrics;
#[doc(hidden)]
pub use reactor::check_io_runtime;
pub use reactor::{
    own_waits, AsyncFd, AsyncFdReadyGuard, AsyncFdReadyMutGuard, AsyncFdTryNewError, Direction,
    Interest, OwnWaits, Ready, ReadyEvent, Registered, TryIoError,
};
pub use task::{
    spawn, try_spawn, yield_now, AbortHandle, AbortOnDropHandle, AccessError, JoinError,
    JoinHandle, JoinNext, JoinNextWithId, JoinSet, LocalKey, TaskLocalFuture, TaskTracker,
    TaskTrackerToken, TaskTrackerWaitFuture, TrackedFuture, YieldNow,
};
/// Task IDs ([`task_id::Id`], [`task_id::id`], [`task_id::try_id`]), re-exported by the
/// `overlap` crate as `overlap::task::{Id, id, try_id}`.
pub mod task_id {
    pub use crate::task::{id, try_id, Id};
}
