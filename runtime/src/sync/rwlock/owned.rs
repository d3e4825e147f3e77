//! The guards of `RwLock::read_owned` and `write_owned`: a borrowed guard kept together
//! with the `Rc` of the lock it borrows, so that it can move into a task.

use std::rc::Rc;

use super::{RwLock, RwLockMappedWriteGuard, RwLockReadGuard, RwLockWriteGuard, TryLockError};

/// Shared access to an [`RwLock`]'s value (or, after [`map`](OwnedRwLockReadGuard::map), to
/// a part `U` of it) through an `Rc` of the lock, so the guard can move into a task; see
/// [`RwLock::read_owned`]. Released when dropped.
///
/// `T` must be `'static` (as what moves into a spawned task must be anyway), which tokio's
/// owned guards do not ask.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct OwnedRwLockReadGuard<T: ?Sized + 'static, U: ?Sized + 'static = T> {
    // Declared first so it drops first, while `lock` still keeps the lock alive.
    guard: RwLockReadGuard<'static, U>,
    lock: Rc<RwLock<T>>,
}

/// Exclusive access to an [`RwLock`]'s value through an `Rc` of the lock, so the guard can
/// move into a task; see [`RwLock::write_owned`]. Released when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct OwnedRwLockWriteGuard<T: ?Sized + 'static> {
    guard: RwLockWriteGuard<'static, T>,
    lock: Rc<RwLock<T>>,
}

/// An [`OwnedRwLockWriteGuard`] narrowed to a part `U` of the value by
/// [`OwnedRwLockWriteGuard::map`]; it still holds the whole lock, released when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct OwnedRwLockMappedWriteGuard<T: ?Sized + 'static, U: ?Sized + 'static = T> {
    guard: RwLockMappedWriteGuard<'static, U>,
    lock: Rc<RwLock<T>>,
}

impl<T: ?Sized + 'static> RwLock<T> {
    /// Like [`read`](RwLock::read), with a guard that owns an `Rc` of the lock instead of
    /// borrowing it, so it can move into a spawned task. Cancel-safe, as `read` is.
    ///
    /// ```
    /// use std::rc::Rc;
    /// use overlap::sync::RwLock;
    ///
    /// overlap::block_on(async {
    ///     let lock = Rc::new(RwLock::new(5));
    ///     let guard = lock.clone().read_owned().await;
    ///     let task = overlap::spawn(async move { *guard * 2 });
    ///     assert!(lock.try_write().is_err(), "the task reads");
    ///     assert_eq!(task.await.unwrap(), 10);
    ///     assert!(lock.try_write().is_ok());
    /// });
    /// ```
    pub async fn read_owned(self: Rc<Self>) -> OwnedRwLockReadGuard<T> {
        let guard = self.read().await;
        own_read(guard, self.clone())
    }

    /// Like [`write`](RwLock::write), with a guard that owns an `Rc` of the lock.
    /// Cancel-safe, as `write` is.
    pub async fn write_owned(self: Rc<Self>) -> OwnedRwLockWriteGuard<T> {
        let guard = self.write().await;
        own_write(guard, self.clone())
    }

    /// Like [`try_read`](RwLock::try_read), with a guard that owns an `Rc` of the lock.
    pub fn try_read_owned(self: Rc<Self>) -> Result<OwnedRwLockReadGuard<T>, TryLockError> {
        let guard = self.try_read()?;
        Ok(own_read(guard, self.clone()))
    }

    /// Like [`try_write`](RwLock::try_write), with a guard that owns an `Rc` of the lock.
    pub fn try_write_owned(self: Rc<Self>) -> Result<OwnedRwLockWriteGuard<T>, TryLockError> {
        let guard = self.try_write()?;
        Ok(own_write(guard, self.clone()))
    }
}

/// Keeps a read `guard` of `lock`'s value together with `lock`.
fn own_read<T: ?Sized + 'static>(
    guard: RwLockReadGuard<'_, T>,
    lock: Rc<RwLock<T>>,
) -> OwnedRwLockReadGuard<T> {
    // Only the lifetime changes. The guard borrows the lock inside the `Rc` allocation that
    // `lock` keeps alive, at an address that does not move; the guard is dropped before
    // `lock` (field order), and no method hands the `'static` borrow out: derefs are tied to
    // the owned guard's own lifetime, and `map`'s closure is given a borrow it cannot keep.
    // SAFETY: so the lock outlives the guard, which never lends its borrow further.
    let guard = unsafe {
        std::mem::transmute::<RwLockReadGuard<'_, T>, RwLockReadGuard<'static, T>>(guard)
    };
    OwnedRwLockReadGuard { guard, lock }
}

/// Keeps a write `guard` of `lock`'s value together with `lock`.
fn own_write<T: ?Sized + 'static>(
    guard: RwLockWriteGuard<'_, T>,
    lock: Rc<RwLock<T>>,
) -> OwnedRwLockWriteGuard<T> {
    debug_assert!(std::ptr::eq(guard.lock, &*lock));
    // SAFETY: as in `own_read`: the guard's `lock` field points into the same allocation.
    let guard = unsafe {
        std::mem::transmute::<RwLockWriteGuard<'_, T>, RwLockWriteGuard<'static, T>>(guard)
    };
    OwnedRwLockWriteGuard { guard, lock }
}

impl<T: ?Sized + 'static, U: ?Sized + 'static> OwnedRwLockReadGuard<T, U> {
    /// Narrows the guard to a part of the value, as [`RwLockReadGuard::map`] does.
    pub fn map<V: ?Sized + 'static>(
        this: Self,
        f: impl FnOnce(&U) -> &V,
    ) -> OwnedRwLockReadGuard<T, V> {
        OwnedRwLockReadGuard {
            guard: RwLockReadGuard::map(this.guard, f),
            lock: this.lock,
        }
    }

    /// Narrows the guard if `f` finds the part; else gives it back.
    pub fn try_map<V: ?Sized + 'static>(
        this: Self,
        f: impl FnOnce(&U) -> Option<&V>,
    ) -> Result<OwnedRwLockReadGuard<T, V>, Self> {
        let OwnedRwLockReadGuard { guard, lock } = this;
        match RwLockReadGuard::try_map(guard, f) {
            Ok(guard) => Ok(OwnedRwLockReadGuard { guard, lock }),
            Err(guard) => Err(OwnedRwLockReadGuard { guard, lock }),
        }
    }

    /// The lock this guard reads.
    pub fn rwlock(this: &Self) -> &Rc<RwLock<T>> {
        &this.lock
    }
}

impl<T: ?Sized + 'static> OwnedRwLockWriteGuard<T> {
    /// Narrows the guard to a part of the value, as [`RwLockWriteGuard::map`] does.
    pub fn map<U: ?Sized + 'static>(
        this: Self,
        f: impl FnOnce(&mut T) -> &mut U,
    ) -> OwnedRwLockMappedWriteGuard<T, U> {
        OwnedRwLockMappedWriteGuard {
            guard: RwLockWriteGuard::map(this.guard, f),
            lock: this.lock,
        }
    }

    /// Narrows the guard if `f` finds the part; else gives it back.
    pub fn try_map<U: ?Sized + 'static>(
        this: Self,
        f: impl FnOnce(&mut T) -> Option<&mut U>,
    ) -> Result<OwnedRwLockMappedWriteGuard<T, U>, Self> {
        let OwnedRwLockWriteGuard { guard, lock } = this;
        match RwLockWriteGuard::try_map(guard, f) {
            Ok(guard) => Ok(OwnedRwLockMappedWriteGuard { guard, lock }),
            Err(guard) => Err(OwnedRwLockWriteGuard { guard, lock }),
        }
    }

    /// Turns the write lock into a read lock without letting it go, as
    /// [`RwLockWriteGuard::downgrade`] does.
    pub fn downgrade(this: Self) -> OwnedRwLockReadGuard<T> {
        OwnedRwLockReadGuard {
            guard: RwLockWriteGuard::downgrade(this.guard),
            lock: this.lock,
        }
    }

    /// Downgrades and narrows in one step, as [`RwLockWriteGuard::downgrade_map`] does.
    pub fn downgrade_map<U: ?Sized + 'static>(
        this: Self,
        f: impl FnOnce(&T) -> &U,
    ) -> OwnedRwLockReadGuard<T, U> {
        OwnedRwLockReadGuard {
            guard: RwLockWriteGuard::downgrade_map(this.guard, f),
            lock: this.lock,
        }
    }

    /// Downgrades and narrows if `f` finds the part; else gives the write guard back, as
    /// [`RwLockWriteGuard::try_downgrade_map`] does.
    pub fn try_downgrade_map<U: ?Sized + 'static>(
        this: Self,
        f: impl FnOnce(&T) -> Option<&U>,
    ) -> Result<OwnedRwLockReadGuard<T, U>, Self> {
        let OwnedRwLockWriteGuard { guard, lock } = this;
        match RwLockWriteGuard::try_downgrade_map(guard, f) {
            Ok(guard) => Ok(OwnedRwLockReadGuard { guard, lock }),
            Err(guard) => Err(OwnedRwLockWriteGuard { guard, lock }),
        }
    }

    /// The lock this guard writes.
    pub fn rwlock(this: &Self) -> &Rc<RwLock<T>> {
        &this.lock
    }
}

impl<T: ?Sized + 'static, U: ?Sized + 'static> OwnedRwLockMappedWriteGuard<T, U> {
    /// Narrows the guard further, as [`RwLockWriteGuard::map`] does.
    pub fn map<V: ?Sized + 'static>(
        this: Self,
        f: impl FnOnce(&mut U) -> &mut V,
    ) -> OwnedRwLockMappedWriteGuard<T, V> {
        OwnedRwLockMappedWriteGuard {
            guard: RwLockMappedWriteGuard::map(this.guard, f),
            lock: this.lock,
        }
    }

    /// Narrows the guard further if `f` finds the part; else gives it back.
    pub fn try_map<V: ?Sized + 'static>(
        this: Self,
        f: impl FnOnce(&mut U) -> Option<&mut V>,
    ) -> Result<OwnedRwLockMappedWriteGuard<T, V>, Self> {
        let OwnedRwLockMappedWriteGuard { guard, lock } = this;
        match RwLockMappedWriteGuard::try_map(guard, f) {
            Ok(guard) => Ok(OwnedRwLockMappedWriteGuard { guard, lock }),
            Err(guard) => Err(OwnedRwLockMappedWriteGuard { guard, lock }),
        }
    }

    /// The lock this guard writes.
    pub fn rwlock(this: &Self) -> &Rc<RwLock<T>> {
        &this.lock
    }
}

guard_deref!([T: ?Sized + 'static, U: ?Sized + 'static] OwnedRwLockReadGuard<T, U> => U, guard);
guard_deref!([T: ?Sized + 'static] OwnedRwLockWriteGuard<T> => mut T, guard);
guard_deref!([T: ?Sized + 'static, U: ?Sized + 'static] OwnedRwLockMappedWriteGuard<T, U> => mut U, guard);
