//! Locking the process-wide mutexes whose every critical section leaves the data
//! consistent (the signal registry, the standard streams' write queues): a panic while one
//! was held (a user's waker, a write) must not make them unusable for the rest of the
//! process.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, also when a panic poisoned it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
