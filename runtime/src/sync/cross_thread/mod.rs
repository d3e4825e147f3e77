//! The `Send` and `Sync` twins of [`sync`](super)'s primitives that are not channels: a
//! [`Semaphore`] shared by tasks of several runtimes, [`spawn_blocking`](crate::spawn_blocking)
//! jobs and plain threads, whose owned permit can move to another thread. (The channels'
//! twins are [`mpsc::cross_thread`](super::mpsc::cross_thread) and
//! [`oneshot::cross_thread`](super::oneshot::cross_thread).)
//!
//! Each operation takes a `std::sync::Mutex`, where [`sync`](super)'s own types cost
//! none: use these only when a thread boundary is crossed. Their futures are `Send` and
//! work under any executor; wakers are called after the lock is let go.
//!
//! ```
//! use std::sync::Arc;
//! use overlap::sync::cross_thread::Semaphore;
//!
//! overlap::block_on(async {
//!     let limit = Arc::new(Semaphore::new(1));
//!     let permit = limit.clone().acquire_owned().await.unwrap();
//!     overlap::spawn_blocking(move || {
//!         // ... blocking work, while holding the permit ...
//!         drop(permit);
//!     })
//!     .await
//!     .unwrap();
//!     assert_eq!(limit.available_permits(), 1);
//! });
//! ```

mod semaphore;

pub use super::{AcquireError, TryAcquireError};
pub use semaphore::{Acquire, AcquireOwned, OwnedSemaphorePermit, Semaphore, SemaphorePermit};

/// [`SemaphorePermit`] under the name of [`sync::Permit`](super::Permit).
pub type Permit<'a> = SemaphorePermit<'a>;

/// [`OwnedSemaphorePermit`] under the name of [`sync::OwnedPermit`](super::OwnedPermit).
pub type OwnedPermit = OwnedSemaphorePermit;
