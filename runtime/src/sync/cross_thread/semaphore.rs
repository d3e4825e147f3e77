//! [`Semaphore`]: tokio's semaphore, `Send` and `Sync`, for tasks of several runtimes,
//! `spawn_blocking` jobs and plain threads.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::sync::waiters::wake_all;
use crate::sync::TryAcquireError;

#[cfg(doc)]
use crate::sync::AcquireError;

mod acquire;
mod permit;
mod state;

pub use acquire::{Acquire, AcquireOwned};
pub use permit::{OwnedSemaphorePermit, SemaphorePermit};
use state::State;

/// Limits how many tasks or threads do something at once: each holds a permit while it
/// does, and the others wait, in the order they asked. tokio's `Semaphore`: `Send` and
/// `Sync`, shared in an `Arc` (or a `static`) by the tasks of any runtimes, by
/// [`spawn_blocking`](crate::spawn_blocking) jobs and by plain threads, and its
/// [`OwnedSemaphorePermit`] is `Send`, so it can move into a job or to another thread.
///
/// It has the API of [`sync::Semaphore`](crate::sync::Semaphore), which serves the tasks
/// of one runtime without a lock; this one takes a `std::sync::Mutex` per operation, so
/// use it when a permit or the limit crosses a thread.
///
/// # Fairness
/// Strictly first come, first served, as tokio's: permits that come back go to the first
/// waiter once they satisfy it, and a waiter asking for many permits
/// ([`acquire_many`](Semaphore::acquire_many)) holds back every later request, however
/// small, so it is never starved. While somebody waits,
/// [`available_permits`](Semaphore::available_permits) is 0 and the `try_acquire` calls
/// fail: the free permits are set aside for the first waiter.
///
/// # Cancellation
/// Every acquire is cancel-safe: dropped before it completes (in a `select!`, under a
/// timeout, with its task aborted), it leaves the line, and permits it had already been
/// granted go back, to the next waiters they satisfy. Nothing is lost and the order holds.
///
/// # Permits
/// A permit gives its permits back when dropped, on whatever thread that happens, waking
/// the waiters they satisfy; [`forget`](OwnedSemaphorePermit::forget) keeps them out for
/// good. [`close`](Semaphore::close) fails every waiting and later acquire, but permits
/// held stay valid and still come back when dropped.
///
/// The futures are `Send` and work under any executor; an overlap task's acquire spends a
/// unit of its cooperative budget when it completes, as the other `sync` waits do.
///
/// Bounding blocking work, tokio's pattern: the permit moves into the job and is dropped
/// when the work ends, even if the task gave up on the result.
///
/// ```
/// use std::sync::Arc;
/// use overlap::sync::cross_thread::Semaphore;
///
/// overlap::block_on(async {
///     let slots = Arc::new(Semaphore::new(2));
///     let mut jobs = Vec::new();
///     for n in 0..6u64 {
///         let permit = slots.clone().acquire_owned().await.unwrap();
///         jobs.push(overlap::spawn_blocking(move || {
///             let sum = (0..=n).sum::<u64>(); // CPU work, at most two at once
///             drop(permit);
///             sum
///         }));
///     }
///     let mut sums = Vec::new();
///     for job in jobs {
///         sums.push(job.await.unwrap());
///     }
///     assert_eq!(sums, [0, 1, 3, 6, 10, 15]);
///     assert_eq!(slots.available_permits(), 2);
/// });
/// ```
///
/// One limit shared by two runtimes on two threads (a thread-per-core server capping its
/// connections in all):
///
/// ```
/// use std::sync::Arc;
/// use overlap::sync::cross_thread::Semaphore;
///
/// let limit = Arc::new(Semaphore::new(1));
/// let held = limit.try_acquire().unwrap();
/// let other = limit.clone();
/// let worker = std::thread::spawn(move || {
///     overlap::block_on(async move {
///         // Waits until the main thread's runtime drops its permit.
///         let permit = other.acquire().await.unwrap();
///         permit.num_permits()
///     })
/// });
/// overlap::block_on(async {
///     overlap::time::sleep(std::time::Duration::from_millis(10)).await;
///     drop(held);
/// });
/// assert_eq!(worker.join().unwrap(), 1);
/// assert_eq!(limit.available_permits(), 1);
/// ```
pub struct Semaphore {
    state: Mutex<State>,
}

impl Semaphore {
    /// The most free permits [`new`](Semaphore::new) and
    /// [`add_permits`](Semaphore::add_permits) make: `usize::MAX >> 3`, tokio's bound; they
    /// panic past it, as tokio's do. Permits given back are never refused: added while
    /// others were held out, they can carry the free count past this bound (where tokio's
    /// release panics), and an `add_permits` then panics even for 0.
    pub const MAX_PERMITS: usize = usize::MAX >> 3;

    /// A semaphore with `permits` permits. A `const fn`, as tokio's `const_new`.
    ///
    /// # Panics
    /// If `permits` is more than [`MAX_PERMITS`](Semaphore::MAX_PERMITS).
    pub const fn new(permits: usize) -> Semaphore {
        assert!(
            permits <= Semaphore::MAX_PERMITS,
            "a semaphore holds at most Semaphore::MAX_PERMITS permits"
        );
        Semaphore {
            state: Mutex::new(State::new(permits)),
        }
    }

    /// [`new`](Semaphore::new) under tokio's name for its `const` constructor: a
    /// semaphore in a `static`, shared by every thread.
    ///
    /// # Panics
    /// As [`new`](Semaphore::new) (at compile time, in a `const` context).
    ///
    /// ```
    /// use overlap::sync::cross_thread::Semaphore;
    ///
    /// static DISK_JOBS: Semaphore = Semaphore::const_new(4);
    ///
    /// let threads: Vec<_> = (0..8)
    ///     .map(|_| std::thread::spawn(|| {
    ///         let _permit = overlap::block_on(DISK_JOBS.acquire()).unwrap();
    ///         // ... at most four threads here at once ...
    ///     }))
    ///     .collect();
    /// threads.into_iter().for_each(|t| t.join().unwrap());
    /// assert_eq!(DISK_JOBS.available_permits(), 4);
    /// ```
    pub const fn const_new(permits: usize) -> Semaphore {
        Semaphore::new(permits)
    }

    /// Waits for a permit, given back when the [`SemaphorePermit`] is dropped. Fails with
    /// [`AcquireError`] once the semaphore is [closed](Semaphore::close). Cancel-safe: a
    /// dropped `acquire` leaves the line, passing a permit it was granted to the next.
    pub fn acquire(&self) -> Acquire<'_> {
        self.acquire_many(1)
    }

    /// Waits for `n` permits at once, given back together when the [`SemaphorePermit`] is
    /// dropped. The request keeps its place in the line: later ones wait behind it even if
    /// they are smaller. A request for zero, which takes nothing from anybody, is granted
    /// at once; one for more permits than the semaphore will ever have waits until it is
    /// closed. Cancel-safe, as `acquire` is.
    ///
    /// ```
    /// use overlap::sync::cross_thread::Semaphore;
    ///
    /// overlap::block_on(async {
    ///     let sem = Semaphore::new(5);
    ///     let three = sem.acquire_many(3).await.unwrap();
    ///     assert_eq!((three.num_permits(), sem.available_permits()), (3, 2));
    ///     drop(three);
    ///     assert_eq!(sem.available_permits(), 5);
    /// });
    /// ```
    pub fn acquire_many(&self, n: u32) -> Acquire<'_> {
        Acquire::new(self, n as usize)
    }

    /// Like [`acquire`](Semaphore::acquire), with a permit that owns an `Arc` of the
    /// semaphore, so it can move into a task, a job or another thread.
    pub fn acquire_owned(self: Arc<Self>) -> AcquireOwned {
        self.acquire_many_owned(1)
    }

    /// Like [`acquire_many`](Semaphore::acquire_many), with a permit that owns an `Arc` of
    /// the semaphore.
    pub fn acquire_many_owned(self: Arc<Self>, n: u32) -> AcquireOwned {
        AcquireOwned::new(self, n as usize)
    }

    /// A permit if one is free now and nobody waits for one.
    pub fn try_acquire(&self) -> Result<SemaphorePermit<'_>, TryAcquireError> {
        self.try_acquire_many(1)
    }

    /// `n` permits if they are free now and nobody waits for any (zero permits: at once,
    /// unless the semaphore is closed).
    pub fn try_acquire_many(&self, n: u32) -> Result<SemaphorePermit<'_>, TryAcquireError> {
        self.try_take(n as usize)?;
        Ok(SemaphorePermit::new(self, n as usize))
    }

    /// Like [`try_acquire`](Semaphore::try_acquire), with a permit that owns an `Arc` of
    /// the semaphore: "take a slot or refuse the work".
    ///
    /// ```
    /// use std::sync::Arc;
    /// use overlap::sync::{cross_thread::Semaphore, TryAcquireError};
    ///
    /// let limit = Arc::new(Semaphore::new(1));
    /// let held = limit.clone().try_acquire_owned().unwrap();
    /// let refused = limit.clone().try_acquire_owned();
    /// assert_eq!(refused.unwrap_err(), TryAcquireError::NoPermits);
    /// std::thread::spawn(move || drop(held)).join().unwrap();
    /// assert!(limit.try_acquire_owned().is_ok());
    /// ```
    pub fn try_acquire_owned(self: Arc<Self>) -> Result<OwnedSemaphorePermit, TryAcquireError> {
        self.try_acquire_many_owned(1)
    }

    /// Like [`try_acquire_many`](Semaphore::try_acquire_many), with a permit that owns an
    /// `Arc` of the semaphore.
    pub fn try_acquire_many_owned(
        self: Arc<Self>,
        n: u32,
    ) -> Result<OwnedSemaphorePermit, TryAcquireError> {
        self.try_take(n as usize)?;
        Ok(OwnedSemaphorePermit::new(self, n as usize))
    }

    fn try_take(&self, n: usize) -> Result<(), TryAcquireError> {
        let mut state = self.lock();
        if state.is_closed() {
            return Err(TryAcquireError::Closed);
        }
        if !state.try_take(n) {
            return Err(TryAcquireError::NoPermits);
        }
        Ok(())
    }

    /// Permits free now for a new acquire. While somebody waits in line (for more permits
    /// than are free), the free ones are set aside for it, so this is 0, as on tokio.
    ///
    /// ```
    /// use overlap::sync::cross_thread::Semaphore;
    ///
    /// # overlap::block_on(async {
    /// let sem = Semaphore::new(3);
    /// let one = sem.acquire().await.unwrap();
    /// assert_eq!(sem.available_permits(), 2);
    /// let mut all_three = std::pin::pin!(sem.acquire_many(3));
    /// // Polled once, it waits in line: the two free permits are kept for it.
    /// assert!(futures_util::poll!(all_three.as_mut()).is_pending());
    /// assert_eq!(sem.available_permits(), 0);
    /// drop(one);
    /// assert_eq!(all_three.await.unwrap().num_permits(), 3);
    /// # });
    /// ```
    pub fn available_permits(&self) -> usize {
        self.lock().available()
    }

    /// Adds `n` permits, waking the waiters they satisfy, on whatever thread they wait.
    /// Also after [`close`](Semaphore::close), where nobody waits any more.
    ///
    /// # Panics
    /// If the free permits would then be more than
    /// [`MAX_PERMITS`](Semaphore::MAX_PERMITS), as tokio's does; nothing is added then.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use overlap::sync::cross_thread::Semaphore;
    ///
    /// let sem = Arc::new(Semaphore::new(0));
    /// let waiter = sem.clone();
    /// let worker = std::thread::spawn(move || {
    ///     overlap::block_on(async { waiter.acquire_many(2).await.unwrap().num_permits() })
    /// });
    /// sem.add_permits(2);
    /// assert_eq!(worker.join().unwrap(), 2);
    /// assert_eq!(sem.available_permits(), 2, "given back when the permit dropped");
    /// ```
    #[track_caller]
    pub fn add_permits(&self, n: usize) {
        let mut state = self.lock();
        if state.would_pass(n, Semaphore::MAX_PERMITS) {
            drop(state);
            panic!(
                "number of added permits ({n}) would overflow Semaphore::MAX_PERMITS ({})",
                Semaphore::MAX_PERMITS
            );
        }
        let wakers = state.release(n);
        drop(state);
        wake_all(wakers);
    }

    /// Takes up to `n` free permits out of the semaphore for good and returns how many it
    /// took: at most [`available_permits`](Semaphore::available_permits), so permits held,
    /// or set aside for a waiter in line, are not touched.
    ///
    /// ```
    /// use overlap::sync::cross_thread::Semaphore;
    ///
    /// let sem = Semaphore::new(3);
    /// let held = sem.try_acquire().unwrap();
    /// assert_eq!(sem.forget_permits(5), 2);
    /// drop(held);
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn forget_permits(&self, n: usize) -> usize {
        self.lock().forget(n)
    }

    /// Closes the semaphore: every waiting acquire, on whatever thread, is woken and fails
    /// with [`AcquireError`], and so do later ones (`try_acquire` with
    /// [`TryAcquireError::Closed`]). Permits held stay valid and come back when dropped;
    /// an acquire granted its permits before the close still gets them.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use overlap::sync::{cross_thread::Semaphore, AcquireError};
    ///
    /// let sem = Arc::new(Semaphore::new(1));
    /// let held = sem.try_acquire().unwrap();
    /// let waiter = sem.clone();
    /// let worker = std::thread::spawn(move || overlap::block_on(async {
    ///     waiter.acquire().await.map(|p| p.num_permits())
    /// }));
    /// sem.close();
    /// assert_eq!(worker.join().unwrap(), Err(AcquireError));
    /// drop(held);
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn close(&self) {
        let wakers = self.lock().close();
        wake_all(wakers);
    }

    /// Whether [`close`](Semaphore::close) was called.
    pub fn is_closed(&self) -> bool {
        self.lock().is_closed()
    }

    /// `n` permits of a dropped permit come back, to the waiters they satisfy.
    fn release(&self, n: usize) {
        let wakers = self.lock().release(n);
        wake_all(wakers);
    }

    /// Locks the state. No user code runs under the lock (wakers are cloned before it is
    /// taken, called and dropped after the unlock) and every change is one step, so a
    /// poisoned lock is used as is.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("cross_thread::Semaphore")
            .field("permits", &state.free())
            .field("waiting", &state.waiting())
            .field("closed", &state.is_closed())
            .finish()
    }
}
