//! The guards of `Mutex::lock_owned`: a borrowed guard kept together with the `Rc` of the
//! mutex it borrows, so that it can move into a task.

use std::rc::Rc;

use super::{MappedMutexGuard, Mutex, MutexGuard, TryLockError};

/// Held access to a [`Mutex`]'s value through an `Rc` of the mutex, so the guard can move
/// into a task that does not borrow the mutex; see [`Mutex::lock_owned`]. The lock is
/// released when it is dropped, and the first waiting task gets it.
///
/// `T` must be `'static` (as what moves into a spawned task must be anyway), which tokio's
/// `OwnedMutexGuard` does not ask.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct OwnedMutexGuard<T: ?Sized + 'static> {
    // Declared first so it drops first, while `lock` still keeps the mutex alive.
    guard: MutexGuard<'static, T>,
    lock: Rc<Mutex<T>>,
}

/// An [`OwnedMutexGuard`] narrowed to a part `U` of the value by
/// [`OwnedMutexGuard::map`]; it still holds the whole lock, released when it is dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct OwnedMappedMutexGuard<T: ?Sized + 'static, U: ?Sized + 'static = T> {
    guard: MappedMutexGuard<'static, U>,
    lock: Rc<Mutex<T>>,
}

/// Keeps `guard` together with the `Rc` of the mutex it borrows.
fn own<T: ?Sized + 'static>(guard: MutexGuard<'_, T>, lock: Rc<Mutex<T>>) -> OwnedMutexGuard<T> {
    debug_assert!(std::ptr::eq(guard.lock, &*lock));
    // Only the lifetime changes. The guard borrows the mutex inside the `Rc` allocation that
    // `lock` keeps alive, at an address that does not move; the guard is dropped before
    // `lock` (field order), and no method hands the `'static` borrow out: derefs are tied to
    // the owned guard's own lifetime.
    // SAFETY: so the mutex outlives the guard, which never lends its borrow further.
    let guard = unsafe { std::mem::transmute::<MutexGuard<'_, T>, MutexGuard<'static, T>>(guard) };
    OwnedMutexGuard { guard, lock }
}

impl<T: ?Sized + 'static> Mutex<T> {
    /// Like [`lock`](Mutex::lock), with a guard that owns an `Rc` of the mutex instead of
    /// borrowing it, so it can move into a spawned task. Waiting tasks are served first come,
    /// first served, owned or not. Cancel-safe, as `lock` is.
    ///
    /// ```
    /// use std::rc::Rc;
    /// use overlap::sync::Mutex;
    ///
    /// overlap::block_on(async {
    ///     let counter = Rc::new(Mutex::new(0));
    ///     let mut guard = counter.clone().lock_owned().await;
    ///     let task = overlap::spawn(async move {
    ///         *guard += 1; // the lock moves with the guard, and goes when the task ends
    ///     });
    ///     assert!(counter.try_lock().is_err());
    ///     task.await.unwrap();
    ///     assert_eq!(*counter.lock().await, 1);
    /// });
    /// ```
    pub async fn lock_owned(self: Rc<Self>) -> OwnedMutexGuard<T> {
        let guard = self.lock().await;
        own(guard, self.clone())
    }

    /// Like [`try_lock`](Mutex::try_lock), with a guard that owns an `Rc` of the mutex.
    pub fn try_lock_owned(self: Rc<Self>) -> Result<OwnedMutexGuard<T>, TryLockError> {
        let guard = self.try_lock()?;
        Ok(own(guard, self.clone()))
    }
}

impl<T: ?Sized + 'static> OwnedMutexGuard<T> {
    /// Narrows the guard to a part of the value, keeping the lock held until the returned
    /// guard is dropped, as [`MutexGuard::map`] does.
    pub fn map<U: ?Sized + 'static>(
        this: Self,
        f: impl FnOnce(&mut T) -> &mut U,
    ) -> OwnedMappedMutexGuard<T, U> {
        OwnedMappedMutexGuard {
            guard: MutexGuard::map(this.guard, f),
            lock: this.lock,
        }
    }

    /// Like [`map`](OwnedMutexGuard::map), for a part that may be missing: when `f` gives
    /// `None`, the guard comes back unchanged in the error.
    pub fn try_map<U: ?Sized + 'static>(
        this: Self,
        f: impl FnOnce(&mut T) -> Option<&mut U>,
    ) -> Result<OwnedMappedMutexGuard<T, U>, Self> {
        let OwnedMutexGuard { guard, lock } = this;
        match MutexGuard::try_map(guard, f) {
            Ok(guard) => Ok(OwnedMappedMutexGuard { guard, lock }),
            Err(guard) => Err(OwnedMutexGuard { guard, lock }),
        }
    }

    /// The mutex this guard locks.
    pub fn mutex(this: &Self) -> &Rc<Mutex<T>> {
        &this.lock
    }
}

impl<T: ?Sized + 'static, U: ?Sized + 'static> OwnedMappedMutexGuard<T, U> {
    /// Narrows the guard further, as [`MutexGuard::map`] does.
    pub fn map<V: ?Sized + 'static>(
        this: Self,
        f: impl FnOnce(&mut U) -> &mut V,
    ) -> OwnedMappedMutexGuard<T, V> {
        OwnedMappedMutexGuard {
            guard: MappedMutexGuard::map(this.guard, f),
            lock: this.lock,
        }
    }

    /// Narrows the guard further if `f` finds the part; else gives it back.
    pub fn try_map<V: ?Sized + 'static>(
        this: Self,
        f: impl FnOnce(&mut U) -> Option<&mut V>,
    ) -> Result<OwnedMappedMutexGuard<T, V>, Self> {
        let OwnedMappedMutexGuard { guard, lock } = this;
        match MappedMutexGuard::try_map(guard, f) {
            Ok(guard) => Ok(OwnedMappedMutexGuard { guard, lock }),
            Err(guard) => Err(OwnedMappedMutexGuard { guard, lock }),
        }
    }

    /// The mutex this guard locks.
    pub fn mutex(this: &Self) -> &Rc<Mutex<T>> {
        &this.lock
    }
}

guard_deref!([T: ?Sized + 'static] OwnedMutexGuard<T> => mut T, guard);
guard_deref!([T: ?Sized + 'static, U: ?Sized + 'static] OwnedMappedMutexGuard<T, U> => mut U, guard);
