//! The permits a cross-thread [`Semaphore`] hands out: borrowed ([`SemaphorePermit`]) or
//! owning an `Arc` of it ([`OwnedSemaphorePermit`]), each given back when dropped, on any
//! thread.

use std::fmt;
use std::sync::Arc;

use super::Semaphore;

/// Permits of a cross-thread [`Semaphore`] (one, or as many as were asked for), given
/// back when dropped, to the waiters they satisfy. `Send` and `Sync`.
#[must_use = "the permit is given back as soon as it is dropped"]
pub struct SemaphorePermit<'a> {
    sem: &'a Semaphore,
    permits: usize,
}

impl<'a> SemaphorePermit<'a> {
    pub(super) fn new(sem: &'a Semaphore, permits: usize) -> SemaphorePermit<'a> {
        SemaphorePermit { sem, permits }
    }

    /// How many permits it holds.
    pub fn num_permits(&self) -> usize {
        self.permits
    }

    /// Keeps its permits out of the semaphore for good: dropping it gives nothing back.
    ///
    /// ```
    /// use overlap::sync::cross_thread::Semaphore;
    ///
    /// let sem = Semaphore::new(2);
    /// sem.try_acquire().unwrap().forget();
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn forget(mut self) {
        self.permits = 0;
    }

    /// Takes `other`'s permits into this one: they go back together when it is dropped.
    ///
    /// # Panics
    /// If the two come from different semaphores (as tokio's); `other` then gives its
    /// permits back to its own semaphore as it drops.
    ///
    /// ```
    /// use overlap::sync::cross_thread::Semaphore;
    ///
    /// let sem = Semaphore::new(3);
    /// let mut a = sem.try_acquire().unwrap();
    /// a.merge(sem.try_acquire_many(2).unwrap());
    /// assert_eq!((a.num_permits(), sem.available_permits()), (3, 0));
    /// drop(a);
    /// assert_eq!(sem.available_permits(), 3);
    /// ```
    #[track_caller]
    pub fn merge(&mut self, mut other: SemaphorePermit<'_>) {
        assert!(
            std::ptr::eq(self.sem, other.sem),
            "merging permits of different semaphores"
        );
        self.permits += std::mem::take(&mut other.permits);
    }

    /// Moves `n` of its permits into a new permit, which gives them back on its own when
    /// dropped; `None` (and nothing moves) if it holds fewer than `n`.
    ///
    /// ```
    /// use overlap::sync::cross_thread::Semaphore;
    ///
    /// let sem = Semaphore::new(3);
    /// let mut three = sem.try_acquire_many(3).unwrap();
    /// let one = three.split(1).unwrap();
    /// assert!(three.split(5).is_none());
    /// drop(one);
    /// assert_eq!((three.num_permits(), sem.available_permits()), (2, 1));
    /// ```
    pub fn split(&mut self, n: usize) -> Option<SemaphorePermit<'a>> {
        self.permits = self.permits.checked_sub(n)?;
        Some(SemaphorePermit::new(self.sem, n))
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        if self.permits > 0 {
            self.sem.release(self.permits);
        }
    }
}

/// Permits of a cross-thread [`Semaphore`] held through an `Arc`: `Send`, so they can move
/// into a task of another runtime, a [`spawn_blocking`](crate::spawn_blocking) job or a
/// thread, and be held exactly as long as the work there runs. Given back when dropped, to
/// the waiters they satisfy, wherever they wait.
///
/// ```
/// use std::sync::Arc;
/// use overlap::sync::cross_thread::Semaphore;
///
/// let sem = Arc::new(Semaphore::new(1));
/// let permit = sem.clone().try_acquire_owned().unwrap();
/// let job = std::thread::spawn(move || {
///     assert_eq!(permit.semaphore().available_permits(), 0);
///     drop(permit); // the work is done
/// });
/// job.join().unwrap();
/// assert_eq!(sem.available_permits(), 1);
/// ```
#[must_use = "the permit is given back as soon as it is dropped"]
pub struct OwnedSemaphorePermit {
    sem: Arc<Semaphore>,
    permits: usize,
}

impl OwnedSemaphorePermit {
    pub(super) fn new(sem: Arc<Semaphore>, permits: usize) -> OwnedSemaphorePermit {
        OwnedSemaphorePermit { sem, permits }
    }

    /// How many permits it holds.
    pub fn num_permits(&self) -> usize {
        self.permits
    }

    /// Keeps its permits out of the semaphore for good: dropping it gives nothing back.
    pub fn forget(mut self) {
        self.permits = 0;
    }

    /// The semaphore it came from.
    pub fn semaphore(&self) -> &Arc<Semaphore> {
        &self.sem
    }

    /// Takes `other`'s permits into this one, as [`SemaphorePermit::merge`] does.
    ///
    /// # Panics
    /// If the two come from different semaphores (as tokio's); `other` then gives its
    /// permits back to its own semaphore as it drops.
    #[track_caller]
    pub fn merge(&mut self, mut other: OwnedSemaphorePermit) {
        assert!(
            Arc::ptr_eq(&self.sem, &other.sem),
            "merging permits of different semaphores"
        );
        self.permits += std::mem::take(&mut other.permits);
    }

    /// Moves `n` of its permits into a new permit, as [`SemaphorePermit::split`] does;
    /// `None` if it holds fewer than `n`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use overlap::sync::cross_thread::Semaphore;
    ///
    /// let sem = Arc::new(Semaphore::new(2));
    /// let mut both = sem.clone().try_acquire_many_owned(2).unwrap();
    /// let one = both.split(1).unwrap();
    /// std::thread::spawn(move || drop(one)).join().unwrap();
    /// assert_eq!((both.num_permits(), sem.available_permits()), (1, 1));
    /// ```
    pub fn split(&mut self, n: usize) -> Option<OwnedSemaphorePermit> {
        self.permits = self.permits.checked_sub(n)?;
        Some(OwnedSemaphorePermit::new(self.sem.clone(), n))
    }
}

impl Drop for OwnedSemaphorePermit {
    fn drop(&mut self) {
        if self.permits > 0 {
            self.sem.release(self.permits);
        }
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("cross_thread::SemaphorePermit")
            .field("permits", &self.permits)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for OwnedSemaphorePermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("cross_thread::OwnedSemaphorePermit")
            .field("permits", &self.permits)
            .finish_non_exhaustive()
    }
}
