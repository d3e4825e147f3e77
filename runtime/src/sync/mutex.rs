//! `Mutex` and `RwLock`: access to a value held across `.await`, granted in the order tasks
//! asked, built on the [`Semaphore`]'s line.

use std::cell::{Ref, RefCell, RefMut};
use std::fmt;
use std::ops::{Deref, DerefMut};

use super::semaphore::{Permit, Semaphore, TryAcquireError};

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
pub struct Mutex<T: ?Sized> {
    sem: Semaphore,
    value: RefCell<T>,
}

/// The lock is held (or, for [`RwLock::try_read`], written) now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TryLockError;

/// Held access to a [`Mutex`]'s value; the lock is released when it is dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct MutexGuard<'a, T: ?Sized> {
    // Declared first so it drops first: the next holder finds the value unborrowed.
    value: RefMut<'a, T>,
    _permit: Permit<'a>,
}

impl<T> Mutex<T> {
    /// An unlocked mutex holding `value`.
    pub fn new(value: T) -> Mutex<T> {
        Mutex {
            sem: Semaphore::new(1),
            value: RefCell::new(value),
        }
    }

    /// The value, taking the mutex apart.
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Waits until the lock is free, then holds it until the guard is dropped.
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
            _permit: permit,
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

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
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

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.value, f)
    }
}

impl fmt::Display for TryLockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the lock is held")
    }
}

impl std::error::Error for TryLockError {}

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
pub struct RwLock<T: ?Sized> {
    sem: Semaphore,
    value: RefCell<T>,
}

/// Readers at once; a writer takes all of them. Far beyond any real count of tasks.
const MAX_READERS: u32 = u32::MAX >> 3;

/// Shared access to an [`RwLock`]'s value, released when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    value: Ref<'a, T>,
    _permit: Permit<'a>,
}

/// Exclusive access to an [`RwLock`]'s value, released when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    value: RefMut<'a, T>,
    _permit: Permit<'a>,
}

impl<T> RwLock<T> {
    /// An unlocked lock holding `value`.
    pub fn new(value: T) -> RwLock<T> {
        RwLock {
            sem: Semaphore::new(MAX_READERS as usize),
            value: RefCell::new(value),
        }
    }

    /// The value, taking the lock apart.
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Waits until no writer holds the lock or waits before this reader, then reads.
    pub async fn read(&self) -> RwLockReadGuard<'_, T> {
        match self.sem.acquire().await {
            Ok(permit) => self.read_guard(permit),
            Err(_) => unreachable!("a lock never closes its semaphore"),
        }
    }

    /// Waits until nobody holds the lock, then writes.
    pub async fn write(&self) -> RwLockWriteGuard<'_, T> {
        match self.sem.acquire_many(MAX_READERS).await {
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
        match self.sem.try_acquire_many(MAX_READERS) {
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
            _permit: permit,
        }
    }

    fn write_guard<'a>(&'a self, permit: Permit<'a>) -> RwLockWriteGuard<'a, T> {
        RwLockWriteGuard {
            // A writer holds every permit: no other guard exists.
            value: self.value.borrow_mut(),
            _permit: permit,
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

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
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

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.value, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.value, f)
    }
}
