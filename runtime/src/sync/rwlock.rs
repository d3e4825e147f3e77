//! `RwLock`: shared reading or exclusive writing of a value held across `.await`, built on
//! the [`Semaphore`]'s line (a reader takes one permit, a writer all of them). The guards
//! that own an `Rc` of the lock are in `owned`.

use std::cell::{Ref, RefCell, RefMut};
use std::fmt;

use super::semaphore::{Permit, Semaphore};
#[cfg(doc)]
use super::Mutex;
use super::TryLockError;

mod owned;

pub use owned::{OwnedRwLockMappedWriteGuard, OwnedRwLockReadGuard, OwnedRwLockWriteGuard};

/// Shared reading or exclusive writing of a value, held across `.await`; the tasks of one
/// runtime (not `Send`).
///
/// Any number of readers, or one writer. Requests are served first come, first served: a
/// waiting writer holds back the readers that come after it, so a stream of readers cannot
/// starve it; readers in a row are let in together. As with [`Mutex`], there is no
/// poisoning: a writer that panics releases the lock and leaves the value as it was then.
///
/// ```
/// use std::rc::Rc;
/// use overlap::sync::RwLock;
///
/// overlap::block_on(async {
///     let config = Rc::new(RwLock::new(String::from("v1")));
///     let a = config.read().await;
///     let b = config.read().await; // readers share
///     assert_eq!((a.as_str(), b.as_str()), ("v1", "v1"));
///     assert!(config.try_write().is_err());
///     drop((a, b));
///     config.write().await.push_str("+patch");
///     assert_eq!(*config.read().await, "v1+patch");
/// });
/// ```
///
/// To hold a guard in a task that does not borrow the lock, lock an `Rc<RwLock<T>>` with
/// [`read_owned`](RwLock::read_owned) or [`write_owned`](RwLock::write_owned) (an `Rc`
/// where tokio takes an `Arc`).
pub struct RwLock<T: ?Sized> {
    /// Readers at once; a writer takes this many permits.
    max_readers: u32,
    sem: Semaphore,
    value: RefCell<T>,
}

/// Readers at once by default, and at most; a writer takes all of them. Far beyond any real
/// count of tasks (tokio's bound).
const MAX_READERS: u32 = u32::MAX >> 3;

/// Shared access to an [`RwLock`]'s value, released when dropped (the last reader to go
/// lets the first waiting writer in).
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    value: Ref<'a, T>,
    permit: Permit<'a>,
}

/// Exclusive access to an [`RwLock`]'s value, released when dropped: the tasks waiting
/// first in line get it.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    value: RefMut<'a, T>,
    permit: Permit<'a>,
    lock: &'a RwLock<T>,
}

/// An [`RwLockWriteGuard`] narrowed to a part of the value by [`RwLockWriteGuard::map`];
/// it still holds the whole lock, released when it is dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockMappedWriteGuard<'a, T: ?Sized> {
    value: RefMut<'a, T>,
    permit: Permit<'a>,
}

impl<T> RwLock<T> {
    /// An unlocked lock holding `value`.
    pub const fn new(value: T) -> RwLock<T> {
        RwLock::with_max_readers(value, MAX_READERS)
    }

    /// An unlocked lock holding `value` that lets at most `max_readers` readers in at once;
    /// the next reader waits until one of them goes.
    ///
    /// # Panics
    /// If `max_readers` is 0 or more than `u32::MAX >> 3` (tokio's bound).
    ///
    /// ```
    /// use overlap::sync::RwLock;
    ///
    /// let lock = RwLock::with_max_readers(0, 2);
    /// let (a, b) = (lock.try_read().unwrap(), lock.try_read().unwrap());
    /// assert!(lock.try_read().is_err(), "two readers already");
    /// drop(a);
    /// assert!(lock.try_read().is_ok());
    /// # drop(b);
    /// ```
    pub const fn with_max_readers(value: T, max_readers: u32) -> RwLock<T> {
        assert!(
            max_readers >= 1 && max_readers <= MAX_READERS,
            "an RwLock lets in between 1 and u32::MAX >> 3 readers"
        );
        RwLock {
            max_readers,
            sem: Semaphore::new(max_readers as usize),
            value: RefCell::new(value),
        }
    }

    /// [`new`](RwLock::new) under tokio's name for its `const` constructor: overlap's `new`
    /// is a `const fn` as well, so either makes a lock in a `const` context.
    ///
    /// ```
    /// use overlap::sync::RwLock;
    ///
    /// thread_local! {
    ///     static ROUTES: RwLock<Vec<&'static str>> = const { RwLock::const_new(Vec::new()) };
    /// }
    /// ROUTES.with(|r| r.try_write().unwrap().push("/"));
    /// ROUTES.with(|r| assert_eq!(*r.try_read().unwrap(), ["/"]));
    /// ```
    pub const fn const_new(value: T) -> RwLock<T> {
        RwLock::new(value)
    }

    /// [`with_max_readers`](RwLock::with_max_readers) under tokio's name for its `const`
    /// form (overlap's is a `const fn` as well).
    ///
    /// # Panics
    /// As `with_max_readers` (at compile time, in a `const` context).
    pub const fn const_with_max_readers(value: T, max_readers: u32) -> RwLock<T> {
        RwLock::with_max_readers(value, max_readers)
    }

    /// The value, taking the lock apart.
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Waits until no writer holds the lock or waits before this reader, then reads.
    /// Cancel-safe, as [`Mutex::lock`](crate::sync::Mutex::lock) is.
    pub async fn read(&self) -> RwLockReadGuard<'_, T> {
        match self.sem.acquire().await {
            Ok(permit) => self.read_guard(permit),
            Err(_) => unreachable!("a lock never closes its semaphore"),
        }
    }

    /// Waits until nobody holds the lock, then writes. Cancel-safe: a dropped `write` leaves the
    /// line, and the readers waiting behind it go ahead.
    pub async fn write(&self) -> RwLockWriteGuard<'_, T> {
        match self.sem.acquire_many(self.max_readers).await {
            Ok(permit) => self.write_guard(permit),
            Err(_) => unreachable!("a lock never closes its semaphore"),
        }
    }

    /// A read guard if no writer holds the lock and nobody waits for it now.
    pub fn try_read(&self) -> Result<RwLockReadGuard<'_, T>, TryLockError> {
        match self.sem.try_acquire() {
            Ok(permit) => Ok(self.read_guard(permit)),
            Err(_) => Err(TryLockError),
        }
    }

    /// A write guard if nobody holds the lock or waits for it now.
    pub fn try_write(&self) -> Result<RwLockWriteGuard<'_, T>, TryLockError> {
        match self.sem.try_acquire_many(self.max_readers) {
            Ok(permit) => Ok(self.write_guard(permit)),
            Err(_) => Err(TryLockError),
        }
    }

    /// The value, with no locking: `&mut self` proves no guard exists.
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }

    fn read_guard<'a>(&'a self, permit: Permit<'a>) -> RwLockReadGuard<'a, T> {
        RwLockReadGuard {
            // A reader's permit means no writer holds all of them: no mutable borrow exists.
            value: self.value.borrow(),
            permit,
        }
    }

    fn write_guard<'a>(&'a self, permit: Permit<'a>) -> RwLockWriteGuard<'a, T> {
        RwLockWriteGuard {
            // A writer holds every permit: no other guard exists.
            value: self.value.borrow_mut(),
            permit,
            lock: self,
        }
    }
}

impl<'a, T: ?Sized> RwLockReadGuard<'a, T> {
    /// Narrows the guard to a part of the value, still holding the read lock until the
    /// returned guard is dropped. An associated function (`RwLockReadGuard::map(guard, f)`),
    /// so it does not hide a `map` method of `T`.
    ///
    /// ```
    /// use overlap::sync::{RwLock, RwLockReadGuard};
    ///
    /// overlap::block_on(async {
    ///     let lock = RwLock::new((1, "one"));
    ///     let name = RwLockReadGuard::map(lock.read().await, |v| &v.1);
    ///     assert_eq!(*name, "one");
    ///     assert!(lock.try_write().is_err(), "still read");
    /// });
    /// ```
    pub fn map<U: ?Sized>(this: Self, f: impl FnOnce(&T) -> &U) -> RwLockReadGuard<'a, U> {
        RwLockReadGuard {
            value: Ref::map(this.value, f),
            permit: this.permit,
        }
    }

    /// Like [`map`](RwLockReadGuard::map), for a part that may be missing: when `f` gives
    /// `None`, the guard comes back unchanged in the error.
    pub fn try_map<U: ?Sized>(
        this: Self,
        f: impl FnOnce(&T) -> Option<&U>,
    ) -> Result<RwLockReadGuard<'a, U>, Self> {
        let RwLockReadGuard { value, permit } = this;
        match Ref::filter_map(value, f) {
            Ok(value) => Ok(RwLockReadGuard { value, permit }),
            Err(value) => Err(RwLockReadGuard { value, permit }),
        }
    }
}

impl<'a, T: ?Sized> RwLockWriteGuard<'a, T> {
    /// Narrows the guard to a part of the value, still holding the write lock until the
    /// returned guard is dropped.
    ///
    /// ```
    /// use overlap::sync::{RwLock, RwLockWriteGuard};
    ///
    /// overlap::block_on(async {
    ///     let lock = RwLock::new(vec![1, 2]);
    ///     let mut last = RwLockWriteGuard::map(lock.write().await, |v| v.last_mut().unwrap());
    ///     *last = 20;
    ///     assert!(lock.try_read().is_err(), "still written");
    ///     drop(last);
    ///     assert_eq!(*lock.read().await, [1, 20]);
    /// });
    /// ```
    pub fn map<U: ?Sized>(
        this: Self,
        f: impl FnOnce(&mut T) -> &mut U,
    ) -> RwLockMappedWriteGuard<'a, U> {
        RwLockMappedWriteGuard::map(RwLockWriteGuard::into_mapped(this), f)
    }

    /// Like [`map`](RwLockWriteGuard::map), for a part that may be missing: when `f` gives
    /// `None`, the guard comes back unchanged in the error.
    pub fn try_map<U: ?Sized>(
        this: Self,
        f: impl FnOnce(&mut T) -> Option<&mut U>,
    ) -> Result<RwLockMappedWriteGuard<'a, U>, Self> {
        let RwLockWriteGuard {
            value,
            permit,
            lock,
        } = this;
        match RefMut::filter_map(value, f) {
            Ok(value) => Ok(RwLockMappedWriteGuard { value, permit }),
            Err(value) => Err(RwLockWriteGuard {
                value,
                permit,
                lock,
            }),
        }
    }

    /// The same guard as a mapped one, of the whole value.
    pub fn into_mapped(this: Self) -> RwLockMappedWriteGuard<'a, T> {
        RwLockMappedWriteGuard {
            value: this.value,
            permit: this.permit,
        }
    }

    /// Turns the write lock into a read lock without letting it go: no writer can get in
    /// between, and the readers waiting behind it in line are let in with it.
    ///
    /// ```
    /// use overlap::sync::{RwLock, RwLockWriteGuard};
    ///
    /// overlap::block_on(async {
    ///     let lock = RwLock::new(1);
    ///     let mut w = lock.write().await;
    ///     *w += 1;
    ///     let r = RwLockWriteGuard::downgrade(w);
    ///     assert_eq!((*r, *lock.try_read().unwrap()), (2, 2));
    ///     assert!(lock.try_write().is_err());
    /// });
    /// ```
    pub fn downgrade(this: Self) -> RwLockReadGuard<'a, T> {
        let RwLockWriteGuard {
            value,
            permit,
            lock,
        } = this;
        drop(value);
        reader_keeping_one(permit, lock.value.borrow())
    }

    /// [`downgrade`](RwLockWriteGuard::downgrade)s the lock and narrows the read guard to
    /// a part of the value, in one step no writer can get in between: tokio's
    /// `downgrade_map`.
    ///
    /// ```
    /// use overlap::sync::{RwLock, RwLockWriteGuard};
    ///
    /// overlap::block_on(async {
    ///     let lock = RwLock::new((0u32, String::from("v1")));
    ///     let mut w = lock.write().await;
    ///     w.0 += 1;
    ///     w.1 = String::from("v2");
    ///     let name = RwLockWriteGuard::downgrade_map(w, |state| &state.1);
    ///     assert_eq!(*name, "v2");
    ///     assert_eq!(lock.try_read().unwrap().0, 1, "other readers get in");
    ///     assert!(lock.try_write().is_err());
    /// });
    /// ```
    pub fn downgrade_map<U: ?Sized>(
        this: Self,
        f: impl FnOnce(&T) -> &U,
    ) -> RwLockReadGuard<'a, U> {
        RwLockReadGuard::map(RwLockWriteGuard::downgrade(this), f)
    }

    /// Like [`downgrade_map`](RwLockWriteGuard::downgrade_map), for a part that may be
    /// missing: when `f` gives `None`, the write guard comes back unchanged (still
    /// exclusive: nothing got in meanwhile), as tokio's `try_downgrade_map`.
    pub fn try_downgrade_map<U: ?Sized>(
        this: Self,
        f: impl FnOnce(&T) -> Option<&U>,
    ) -> Result<RwLockReadGuard<'a, U>, Self> {
        let RwLockWriteGuard {
            value,
            permit,
            lock,
        } = this;
        drop(value);
        // This guard's permits (all of them) keep every other guard out while `f` looks
        // through a shared borrow.
        match Ref::filter_map(lock.value.borrow(), f) {
            Ok(part) => Ok(reader_keeping_one(permit, part)),
            Err(whole) => {
                drop(whole);
                Err(lock.write_guard(permit))
            }
        }
    }
}

/// The read guard a downgraded writer becomes: of its permits (all of them) it keeps one,
/// as a reader does, and the others go back to the line once `value` is borrowed.
fn reader_keeping_one<'a, U: ?Sized>(
    mut permit: Permit<'a>,
    value: Ref<'a, U>,
) -> RwLockReadGuard<'a, U> {
    let others = permit.split(permit.num_permits() - 1);
    let reader = RwLockReadGuard { value, permit };
    drop(others);
    reader
}

impl<'a, T: ?Sized> RwLockMappedWriteGuard<'a, T> {
    /// Narrows the guard further, as [`RwLockWriteGuard::map`] does.
    pub fn map<U: ?Sized>(
        this: Self,
        f: impl FnOnce(&mut T) -> &mut U,
    ) -> RwLockMappedWriteGuard<'a, U> {
        RwLockMappedWriteGuard {
            value: RefMut::map(this.value, f),
            permit: this.permit,
        }
    }

    /// Narrows the guard further if `f` finds the part; else gives it back.
    pub fn try_map<U: ?Sized>(
        this: Self,
        f: impl FnOnce(&mut T) -> Option<&mut U>,
    ) -> Result<RwLockMappedWriteGuard<'a, U>, Self> {
        let RwLockMappedWriteGuard { value, permit } = this;
        match RefMut::filter_map(value, f) {
            Ok(value) => Ok(RwLockMappedWriteGuard { value, permit }),
            Err(value) => Err(RwLockMappedWriteGuard { value, permit }),
        }
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> RwLock<T> {
        RwLock::new(T::default())
    }
}

impl<T> From<T> for RwLock<T> {
    fn from(value: T) -> RwLock<T> {
        RwLock::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.value.try_borrow() {
            Ok(v) => d.field("value", &&*v),
            Err(_) => d.field("value", &format_args!("<written>")),
        };
        d.finish()
    }
}

guard_deref!([T: ?Sized] RwLockReadGuard<'_, T> => T, value);
guard_deref!([T: ?Sized] RwLockWriteGuard<'_, T> => mut T, value);
guard_deref!([T: ?Sized] RwLockMappedWriteGuard<'_, T> => mut T, value);
