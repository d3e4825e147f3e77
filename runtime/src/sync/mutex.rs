//! `Mutex`: exclusive access to a value held across `.await`, granted in the order tasks
//! asked, built on the [`Semaphore`]'s line. The guards that own an `Rc` of the mutex are in
//! `owned`.

use std::cell::{RefCell, RefMut};
use std::fmt;

use super::semaphore::{Permit, Semaphore, TryAcquireError};

mod owned;

pub use owned::{OwnedMappedMutexGuard, OwnedMutexGuard};

/// Exclusive access to a value for one task at a time, held across `.await`; the tasks of
/// one runtime (not `Send`).
///
/// Within one thread a `RefCell` is enough while no borrow lives across an `.await`. When
/// one must (a connection pool handed out for a whole request, a file written in several
/// awaited steps), the `RefCell` would panic on the second task's borrow: `Mutex` makes that
/// task wait instead. Waiting tasks get the lock first come, first served; dropping a
/// waiting [`lock`](Mutex::lock) leaves the line.
///
/// There is no poisoning (as with tokio's): a task that panics, or is aborted, while it
/// holds the guard releases the lock as it unwinds, and the next task gets the value as the
/// panicking one left it, perhaps half updated.
///
/// To share it between tasks, put it in an `Rc`:
///
/// ```
/// use std::rc::Rc;
/// use overlap::sync::Mutex;
///
/// overlap::block_on(async {
///     let log = Rc::new(Mutex::new(Vec::new()));
///     let tasks: Vec<_> = (0..3)
///         .map(|i| {
///             let log = log.clone();
///             overlap::spawn(async move {
///                 let mut log = log.lock().await;
///                 log.push(i);
///                 overlap::yield_now().await; // the others wait, none interleaves
///                 log.push(i);
///             })
///         })
///         .collect();
///     for t in tasks {
///         t.await.unwrap();
///     }
///     assert_eq!(*log.lock().await, [0, 0, 1, 1, 2, 2]);
/// });
/// ```
///
/// Forgetting a guard (`mem::forget`) keeps the lock held for good: later `lock`s wait
/// forever, as with a std mutex.
///
/// To hold the lock in a task that does not borrow the mutex (a guard moved into
/// [`spawn`](crate::spawn)), lock an `Rc<Mutex<T>>` with [`lock_owned`](Mutex::lock_owned):
/// where tokio's owned locks take an `Arc`, overlap's take an `Rc`, since its tasks stay on
/// one thread.
pub struct Mutex<T: ?Sized> {
    sem: Semaphore,
    value: RefCell<T>,
}

/// The lock is held (or, for [`RwLock::try_read`](super::RwLock::try_read), written) now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TryLockError;

/// Held access to a [`Mutex`]'s value; the lock is released when it is dropped, and the
/// first waiting task gets it.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct MutexGuard<'a, T: ?Sized> {
    // Declared first so it drops first: the next holder finds the value unborrowed.
    value: RefMut<'a, T>,
    permit: Permit<'a>,
    lock: &'a Mutex<T>,
}

/// A [`MutexGuard`] narrowed to a part of the value by [`MutexGuard::map`]; it still holds
/// the whole lock, released when it is dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct MappedMutexGuard<'a, T: ?Sized> {
    value: RefMut<'a, T>,
    permit: Permit<'a>,
}

impl<T> Mutex<T> {
    /// An unlocked mutex holding `value`.
    pub const fn new(value: T) -> Mutex<T> {
        Mutex {
            sem: Semaphore::new(1),
            value: RefCell::new(value),
        }
    }

    /// [`new`](Mutex::new) under tokio's name for its `const` constructor: overlap's `new`
    /// is a `const fn` as well, so either makes a mutex in a `const` context.
    ///
    /// ```
    /// use overlap::sync::Mutex;
    ///
    /// thread_local! {
    ///     static COUNT: Mutex<u32> = const { Mutex::const_new(0) };
    /// }
    /// COUNT.with(|m| *m.try_lock().unwrap() += 1);
    /// COUNT.with(|m| assert_eq!(*m.try_lock().unwrap(), 1));
    /// ```
    pub const fn const_new(value: T) -> Mutex<T> {
        Mutex::new(value)
    }

    /// The value, taking the mutex apart.
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Waits until the lock is free, then holds it until the guard is dropped. Waiters get
    /// the lock in the order they first polled. Cancel-safe: a dropped `lock` holds nothing,
    /// and one already chosen passes the lock to the next in line.
    pub async fn lock(&self) -> MutexGuard<'_, T> {
        match self.sem.acquire().await {
            Ok(permit) => self.guard(permit),
            Err(_) => unreachable!("a mutex never closes its semaphore"),
        }
    }

    /// The lock if it is free now and no task waits for it.
    pub fn try_lock(&self) -> Result<MutexGuard<'_, T>, TryLockError> {
        match self.sem.try_acquire() {
            Ok(permit) => Ok(self.guard(permit)),
            Err(TryAcquireError::NoPermits | TryAcquireError::Closed) => Err(TryLockError),
        }
    }

    /// The value, with no locking: `&mut self` proves no guard exists.
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }

    fn guard<'a>(&'a self, permit: Permit<'a>) -> MutexGuard<'a, T> {
        MutexGuard {
            // The one permit is held by one guard at a time, so the value is not borrowed.
            value: self.value.borrow_mut(),
            permit,
            lock: self,
        }
    }
}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// Narrows the guard to a part of the value (a field, an element), keeping the lock
    /// held until the returned guard is dropped. An associated function (call it as
    /// `MutexGuard::map(guard, f)`), so it does not hide a `map` method of `T`.
    ///
    /// ```
    /// use overlap::sync::{MappedMutexGuard, Mutex, MutexGuard};
    ///
    /// overlap::block_on(async {
    ///     let pair = Mutex::new((1, String::from("a")));
    ///     let mut name: MappedMutexGuard<'_, String> =
    ///         MutexGuard::map(pair.lock().await, |p| &mut p.1);
    ///     name.push('b');
    ///     assert!(pair.try_lock().is_err(), "still locked");
    ///     drop(name);
    ///     assert_eq!(*pair.lock().await, (1, String::from("ab")));
    /// });
    /// ```
    pub fn map<U: ?Sized>(this: Self, f: impl FnOnce(&mut T) -> &mut U) -> MappedMutexGuard<'a, U> {
        let whole = MappedMutexGuard {
            value: this.value,
            permit: this.permit,
        };
        MappedMutexGuard::map(whole, f)
    }

    /// Like [`map`](MutexGuard::map), for a part that may be missing: when `f` gives
    /// `None`, the guard comes back unchanged in the error.
    ///
    /// ```
    /// use overlap::sync::{Mutex, MutexGuard};
    ///
    /// overlap::block_on(async {
    ///     let v = Mutex::new(vec![1, 2]);
    ///     let guard = MutexGuard::try_map(v.lock().await, |v| v.get_mut(5)).unwrap_err();
    ///     let mut first = MutexGuard::try_map(guard, |v| v.first_mut()).unwrap();
    ///     *first = 10;
    ///     drop(first);
    ///     assert_eq!(*v.lock().await, [10, 2]);
    /// });
    /// ```
    pub fn try_map<U: ?Sized>(
        this: Self,
        f: impl FnOnce(&mut T) -> Option<&mut U>,
    ) -> Result<MappedMutexGuard<'a, U>, Self> {
        let MutexGuard {
            value,
            permit,
            lock,
        } = this;
        match RefMut::filter_map(value, f) {
            Ok(value) => Ok(MappedMutexGuard { value, permit }),
            Err(value) => Err(MutexGuard {
                value,
                permit,
                lock,
            }),
        }
    }

    /// The mutex this guard locks.
    pub fn mutex(this: &Self) -> &'a Mutex<T> {
        this.lock
    }
}

impl<'a, T: ?Sized> MappedMutexGuard<'a, T> {
    /// Narrows the guard further, as [`MutexGuard::map`] does.
    pub fn map<U: ?Sized>(this: Self, f: impl FnOnce(&mut T) -> &mut U) -> MappedMutexGuard<'a, U> {
        MappedMutexGuard {
            value: RefMut::map(this.value, f),
            permit: this.permit,
        }
    }

    /// Narrows the guard further if `f` finds the part, as [`MutexGuard::try_map`] does;
    /// else gives it back.
    pub fn try_map<U: ?Sized>(
        this: Self,
        f: impl FnOnce(&mut T) -> Option<&mut U>,
    ) -> Result<MappedMutexGuard<'a, U>, Self> {
        let MappedMutexGuard { value, permit } = this;
        match RefMut::filter_map(value, f) {
            Ok(value) => Ok(MappedMutexGuard { value, permit }),
            Err(value) => Err(MappedMutexGuard { value, permit }),
        }
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Mutex<T> {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(value: T) -> Mutex<T> {
        Mutex::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.value.try_borrow() {
            Ok(v) => d.field("value", &&*v),
            Err(_) => d.field("value", &format_args!("<locked>")),
        };
        d.finish()
    }
}

impl fmt::Display for TryLockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the lock is held")
    }
}

impl std::error::Error for TryLockError {}

guard_deref!([T: ?Sized] MutexGuard<'_, T> => mut T, value);
guard_deref!([T: ?Sized] MappedMutexGuard<'_, T> => mut T, value);
