//! The permits a [`Semaphore`] hands out: borrowed ([`Permit`]) or owning an `Rc` of it
//! ([`OwnedPermit`]), each given back when dropped.

use std::fmt;
use std::rc::Rc;

use super::Semaphore;

/// Permits of a [`Semaphore`] (one, or as many as were asked for), given back when dropped.
#[must_use = "the permit is given back as soon as it is dropped"]
pub struct Permit<'a> {
    pub(super) sem: &'a Semaphore,
    pub(super) permits: usize,
}

impl<'a> Permit<'a> {
    /// How many permits it holds.
    pub fn num_permits(&self) -> usize {
        self.permits
    }

    /// Keeps its permits out of the semaphore for good: dropping it gives nothing back.
    pub fn forget(mut self) {
        self.permits = 0;
    }

    /// Takes `other`'s permits into this one: they go back together when it is dropped.
    ///
    /// # Panics
    /// If the two come from different semaphores.
    ///
    /// ```
    /// use overlap::sync::Semaphore;
    ///
    /// let sem = Semaphore::new(3);
    /// let mut a = sem.try_acquire().unwrap();
    /// a.merge(sem.try_acquire_many(2).unwrap());
    /// assert_eq!((a.num_permits(), sem.available_permits()), (3, 0));
    /// drop(a);
    /// assert_eq!(sem.available_permits(), 3);
    /// ```
    pub fn merge(&mut self, mut other: Permit<'_>) {
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
    /// use overlap::sync::Semaphore;
    ///
    /// let sem = Semaphore::new(3);
    /// let mut three = sem.try_acquire_many(3).unwrap();
    /// let one = three.split(1).unwrap();
    /// assert!(three.split(5).is_none());
    /// drop(one);
    /// assert_eq!((three.num_permits(), sem.available_permits()), (2, 1));
    /// ```
    pub fn split(&mut self, n: usize) -> Option<Permit<'a>> {
        self.permits = self.permits.checked_sub(n)?;
        Some(Permit {
            sem: self.sem,
            permits: n,
        })
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.permits > 0 {
            self.sem.release(self.permits);
        }
    }
}

/// Permits of a [`Semaphore`] held through an `Rc`, so they can move into a task; given back
/// when dropped.
#[must_use = "the permit is given back as soon as it is dropped"]
pub struct OwnedPermit {
    pub(super) sem: Rc<Semaphore>,
    pub(super) permits: usize,
}

impl OwnedPermit {
    /// How many permits it holds.
    pub fn num_permits(&self) -> usize {
        self.permits
    }

    /// Keeps its permits out of the semaphore for good: dropping it gives nothing back.
    pub fn forget(mut self) {
        self.permits = 0;
    }

    /// The semaphore it came from.
    pub fn semaphore(&self) -> &Rc<Semaphore> {
        &self.sem
    }

    /// Takes `other`'s permits into this one, as [`Permit::merge`] does.
    ///
    /// # Panics
    /// If the two come from different semaphores.
    pub fn merge(&mut self, mut other: OwnedPermit) {
        assert!(
            Rc::ptr_eq(&self.sem, &other.sem),
            "merging permits of different semaphores"
        );
        self.permits += std::mem::take(&mut other.permits);
    }

    /// Moves `n` of its permits into a new permit, as [`Permit::split`] does; `None` if
    /// it holds fewer than `n`.
    ///
    /// ```
    /// use std::rc::Rc;
    /// use overlap::sync::Semaphore;
    ///
    /// let sem = Rc::new(Semaphore::new(2));
    /// let mut both = sem.clone().try_acquire_many_owned(2).unwrap();
    /// let one = both.split(1).unwrap();
    /// overlap::block_on(async move {
    ///     overlap::spawn(async move { drop(one) }).await.unwrap();
    /// });
    /// assert_eq!((both.num_permits(), sem.available_permits()), (1, 1));
    /// ```
    pub fn split(&mut self, n: usize) -> Option<OwnedPermit> {
        self.permits = self.permits.checked_sub(n)?;
        Some(OwnedPermit {
            sem: self.sem.clone(),
            permits: n,
        })
    }
}

impl Drop for OwnedPermit {
    fn drop(&mut self) {
        if self.permits > 0 {
            self.sem.release(self.permits);
        }
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("permits", &self.permits)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for OwnedPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedPermit")
            .field("permits", &self.permits)
            .finish_non_exhaustive()
    }
}
