//! `Semaphore`: a count of permits, handed out in the order tasks asked.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::waiters::{wake_all, WaitQueue, Waiter, Wakes};

mod permit;

pub use permit::{OwnedPermit, Permit};

/// Limits how many tasks do something at once: each holds a permit while it does, and the
/// others wait, in the order they asked. For the tasks of one runtime (not `Send`).
///
/// Permits go back when dropped, straight to the first waiter if it now has all it asked for.
/// A waiter asking for many permits ([`acquire_many`](Semaphore::acquire_many)) is not
/// overtaken by later, smaller requests: the line is strictly first come, first served. A
/// waiting acquire that is dropped leaves the line, passing on permits it had already been
/// handed.
///
/// Capping the connections a server serves at once (the accept loop waits while the cap is
/// reached, leaving further clients in the kernel's backlog):
///
/// ```
/// use std::rc::Rc;
/// use overlap::net::TcpListener;
/// use overlap::sync::Semaphore;
///
/// # overlap::block_on(async {
/// let listener = TcpListener::bind("127.0.0.1:0").await?;
/// let limit = Rc::new(Semaphore::new(1000));
/// # let addr = listener.local_addr()?;
/// # overlap::spawn(overlap::net::TcpStream::connect(addr));
/// loop {
///     let permit = limit.clone().acquire_owned().await.expect("never closed");
///     let (conn, _) = listener.accept().await?;
///     overlap::spawn(async move {
///         // ... serve `conn` ...
///         drop((conn, permit)); // the next client may be accepted
///     });
/// #   break;
/// }
/// # std::io::Result::Ok(())
/// # }).unwrap();
/// ```
///
/// # Bounding blocking work
/// A permit is not `Send`, so it cannot go into a [`spawn_blocking`](crate::spawn_blocking)
/// closure, as tokio's `OwnedSemaphorePermit` is moved there to be held exactly as long as
/// the work runs. Keep it in the task and await the job's handle to its end instead, also
/// after giving up on the result (a timeout, a client gone): dropping or aborting the handle
/// does not stop a job that has started, so a permit dropped with it would let one more job
/// run than the semaphore allows. Tell the job to stop early through a flag it checks (an
/// `Arc<AtomicBool>`, or a [`CancellationToken`](crate::sync::CancellationToken)). Or use
/// [`cross_thread::Semaphore`](crate::sync::cross_thread::Semaphore), whose owned permit is
/// `Send` and moves into the job, as tokio's does.
///
/// ```
/// use std::rc::Rc;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
/// use std::time::Duration;
/// use overlap::sync::Semaphore;
///
/// overlap::block_on(async {
///     let slots = Rc::new(Semaphore::new(2));
///     let permit = slots.clone().acquire_owned().await.unwrap();
///     let stop = Arc::new(AtomicBool::new(false));
///     let flag = stop.clone();
///     let mut job = overlap::spawn_blocking(move || {
///         let mut rounds = 0u64;
///         while !flag.load(Ordering::Relaxed) {
///             rounds += 1; // a step of CPU work
///             std::thread::sleep(Duration::from_millis(1));
///         }
///         rounds
///     });
///     let late = overlap::time::timeout(Duration::from_millis(20), &mut job).await;
///     assert!(late.is_err(), "given up on");
///     assert_eq!(slots.available_permits(), 1, "the work still runs: its slot is taken");
///     stop.store(true, Ordering::Relaxed);
///     let _rounds = job.await.unwrap(); // the job has ended: only now may the slot go
///     drop(permit);
///     assert_eq!(slots.available_permits(), 2);
/// });
/// ```
pub struct Semaphore {
    permits: Cell<usize>,
    /// Tasks waiting, each for its number of permits; a chosen one was handed them directly.
    waiters: WaitQueue,
    closed: Cell<bool>,
}

/// The semaphore was [closed](Semaphore::close).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcquireError;

/// Why [`Semaphore::try_acquire`] gave no permit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryAcquireError {
    /// None free now (or the free ones are promised to waiting tasks).
    NoPermits,
    /// The semaphore was closed.
    Closed,
}

/// [`Permit`] under tokio's name.
pub type SemaphorePermit<'a> = Permit<'a>;

/// [`OwnedPermit`] under tokio's name.
pub type OwnedSemaphorePermit = OwnedPermit;

impl Semaphore {
    /// The most permits [`new`](Semaphore::new) accepts: `usize::MAX >> 3`, tokio's bound.
    /// (Overlap's count has no need of the spare bits, and [`add_permits`] saturates at
    /// `usize::MAX` instead of panicking past this bound as tokio's does.)
    ///
    /// [`add_permits`]: Semaphore::add_permits
    pub const MAX_PERMITS: usize = usize::MAX >> 3;

    /// A semaphore with `permits` permits.
    ///
    /// # Panics
    /// If `permits` is more than [`MAX_PERMITS`](Semaphore::MAX_PERMITS), as tokio's does.
    pub const fn new(permits: usize) -> Semaphore {
        assert!(
            permits <= Semaphore::MAX_PERMITS,
            "a semaphore holds at most Semaphore::MAX_PERMITS permits"
        );
        Semaphore {
            permits: Cell::new(permits),
            waiters: WaitQueue::new(),
            closed: Cell::new(false),
        }
    }

    /// [`new`](Semaphore::new) under tokio's name for its `const` constructor: overlap's
    /// `new` is a `const fn` as well, so either makes a semaphore in a `const` context.
    ///
    /// # Panics
    /// As [`new`](Semaphore::new) (at compile time, in a `const` context).
    ///
    /// ```
    /// use overlap::sync::Semaphore;
    ///
    /// thread_local! {
    ///     static CONNECTIONS: Semaphore = const { Semaphore::const_new(2) };
    /// }
    /// CONNECTIONS.with(|sem| assert_eq!(sem.available_permits(), 2));
    /// ```
    pub const fn const_new(permits: usize) -> Semaphore {
        Semaphore::new(permits)
    }

    /// Waits for a permit, which is returned when the [`Permit`] is dropped. Cancel-safe: a
    /// dropped `acquire` holds nothing, and passes a permit it was handed to the next in line.
    pub fn acquire(&self) -> Acquire<'_> {
        self.acquire_many(1)
    }

    /// Waits for `n` permits at once, returned together when the [`Permit`] is dropped. The
    /// request keeps its place in the line: later ones wait behind it even if they are
    /// smaller (so a large request is never starved); a request for zero, which takes
    /// nothing from it, is granted at once (as on tokio). More permits than the semaphore will
    /// ever have means waiting until it is closed. Cancel-safe, as `acquire` is: a dropped
    /// request leaves the line, and the requests behind it may go ahead.
    ///
    /// ```
    /// use overlap::sync::Semaphore;
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
        Acquire {
            sem: self,
            wanted: n as usize,
            waiter: None,
        }
    }

    /// Like [`acquire`](Semaphore::acquire), with a permit that owns a reference to the
    /// semaphore, so it can move into a task.
    pub fn acquire_owned(self: Rc<Self>) -> AcquireOwned {
        self.acquire_many_owned(1)
    }

    /// Like [`acquire_many`](Semaphore::acquire_many), with a permit that owns a reference
    /// to the semaphore.
    pub fn acquire_many_owned(self: Rc<Self>, n: u32) -> AcquireOwned {
        AcquireOwned {
            sem: self,
            wanted: n as usize,
            waiter: None,
        }
    }

    /// A permit if one is free now and nobody waits for one.
    pub fn try_acquire(&self) -> Result<Permit<'_>, TryAcquireError> {
        self.try_acquire_many(1)
    }

    /// `n` permits if they are free now and nobody waits for any (zero permits: at once,
    /// unless the semaphore is closed).
    pub fn try_acquire_many(&self, n: u32) -> Result<Permit<'_>, TryAcquireError> {
        self.try_take(n as usize)?;
        Ok(Permit {
            sem: self,
            permits: n as usize,
        })
    }

    /// Like [`try_acquire`](Semaphore::try_acquire), with a permit that owns a reference to
    /// the semaphore: "take a slot or refuse the work", as a connection limit does.
    ///
    /// ```
    /// use std::rc::Rc;
    /// use overlap::sync::Semaphore;
    ///
    /// let limit = Rc::new(Semaphore::new(1));
    /// let held = limit.clone().try_acquire_owned().unwrap();
    /// assert!(limit.clone().try_acquire_owned().is_err(), "full");
    /// drop(held);
    /// assert!(limit.try_acquire_owned().is_ok());
    /// ```
    pub fn try_acquire_owned(self: Rc<Self>) -> Result<OwnedPermit, TryAcquireError> {
        self.try_acquire_many_owned(1)
    }

    /// Like [`try_acquire_many`](Semaphore::try_acquire_many), with a permit that owns a
    /// reference to the semaphore.
    pub fn try_acquire_many_owned(self: Rc<Self>, n: u32) -> Result<OwnedPermit, TryAcquireError> {
        self.try_take(n as usize)?;
        Ok(OwnedPermit {
            sem: self,
            permits: n as usize,
        })
    }

    fn try_take(&self, n: usize) -> Result<(), TryAcquireError> {
        if self.closed.get() {
            return Err(TryAcquireError::Closed);
        }
        // Zero permits take nothing from a waiter in line: granted at once, as on tokio.
        if (n > 0 && !self.waiters.is_empty()) || self.permits.get() < n {
            return Err(TryAcquireError::NoPermits);
        }
        self.permits.set(self.permits.get() - n);
        Ok(())
    }

    /// Permits free now for a new acquire. While a task waits in line (for more permits
    /// than are free), the free ones are set aside for it, so this is 0, as on tokio, and
    /// [`try_acquire`](Semaphore::try_acquire) fails.
    ///
    /// ```
    /// use overlap::sync::Semaphore;
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
        if self.waiters.is_empty() {
            self.permits.get()
        } else {
            0
        }
    }

    /// Adds `n` permits, waking the waiting tasks they satisfy (the count saturates at
    /// `usize::MAX`).
    pub fn add_permits(&self, n: usize) {
        self.release(n);
    }

    /// Takes up to `n` free permits out of the semaphore for good and returns how many it
    /// took: at most [`available_permits`](Semaphore::available_permits), so permits held, or
    /// set aside for a task waiting in line, are not touched.
    ///
    /// ```
    /// use overlap::sync::Semaphore;
    ///
    /// let sem = Semaphore::new(3);
    /// let held = sem.try_acquire().unwrap();
    /// assert_eq!(sem.forget_permits(5), 2);
    /// drop(held);
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn forget_permits(&self, n: usize) -> usize {
        let taken = n.min(self.available_permits());
        self.permits.set(self.permits.get() - taken);
        taken
    }

    /// Closes the semaphore: waiting and later acquires fail with [`AcquireError`]. Permits
    /// held stay valid.
    pub fn close(&self) {
        self.closed.set(true);
        wake_all(self.waiters.take_all());
    }

    /// Whether [`close`](Semaphore::close) was called.
    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// `n` permits come back: to the waiters at the front of the line that they satisfy,
    /// the rest to the pool.
    fn release(&self, n: usize) {
        self.permits.set(self.permits.get().saturating_add(n));
        self.grant();
    }

    /// Hands free permits to the front of the line for as long as they satisfy it (a waker
    /// that panics stops none of the grants after it).
    fn grant(&self) {
        let mut wakes = Wakes::default();
        while let Some(wanted) = self.waiters.first_wants() {
            let free = self.permits.get();
            if wanted > free {
                break;
            }
            self.permits.set(free - wanted);
            wakes.wake(self.waiters.choose_first().flatten());
        }
        wakes.finish();
    }

    fn poll_acquire(
        &self,
        waiter: &mut Option<Rc<Waiter>>,
        wanted: usize,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), AcquireError>> {
        crate::coop::budgeted(cx, |cx| self.poll_acquire_now(waiter, wanted, cx))
    }

    fn poll_acquire_now(
        &self,
        waiter: &mut Option<Rc<Waiter>>,
        wanted: usize,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), AcquireError>> {
        if waiter.as_ref().is_some_and(|w| w.is_chosen()) {
            if let Some(w) = waiter.take() {
                self.waiters.recycle(w);
            }
            return Poll::Ready(Ok(()));
        }
        if self.closed.get() {
            // Not granted: closing took it out of the line already.
            *waiter = None;
            return Poll::Ready(Err(AcquireError));
        }
        match waiter {
            Some(w) => drop(w.set_waker(cx.waker())),
            // Zero permits wait behind nobody (see `try_take`).
            None if (wanted == 0 || self.waiters.is_empty()) && self.permits.get() >= wanted => {
                self.permits.set(self.permits.get() - wanted);
                return Poll::Ready(Ok(()));
            }
            None => *waiter = Some(self.waiters.push_wanting(cx.waker(), wanted)),
        }
        Poll::Pending
    }

    /// An acquire is dropped while waiting: it leaves the line, or passes on the permits it
    /// was handed. Either way the waiters behind it may now be satisfied.
    fn cancel(&self, waiter: Option<Rc<Waiter>>) {
        let Some(w) = waiter else { return };
        if w.is_chosen() {
            self.release(w.wanted());
        } else {
            let waker = self.waiters.remove(w);
            self.grant();
            drop(waker);
        }
    }
}

/// The future of [`Semaphore::acquire`].
#[must_use = "futures do nothing unless polled"]
pub struct Acquire<'a> {
    sem: &'a Semaphore,
    wanted: usize,
    waiter: Option<Rc<Waiter>>,
}

impl<'a> Future for Acquire<'a> {
    type Output = Result<Permit<'a>, AcquireError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let (sem, permits) = (this.sem, this.wanted);
        sem.poll_acquire(&mut this.waiter, permits, cx)
            .map(|r| r.map(|()| Permit { sem, permits }))
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        self.sem.cancel(self.waiter.take());
    }
}

/// The future of [`Semaphore::acquire_owned`].
#[must_use = "futures do nothing unless polled"]
pub struct AcquireOwned {
    sem: Rc<Semaphore>,
    wanted: usize,
    waiter: Option<Rc<Waiter>>,
}

impl Future for AcquireOwned {
    type Output = Result<OwnedPermit, AcquireError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let (sem, permits) = (&this.sem, this.wanted);
        sem.poll_acquire(&mut this.waiter, permits, cx).map(|r| {
            r.map(|()| OwnedPermit {
                sem: sem.clone(),
                permits,
            })
        })
    }
}

impl Drop for AcquireOwned {
    fn drop(&mut self) {
        self.sem.cancel(self.waiter.take());
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("permits", &self.permits.get())
            .field("waiting", &self.waiters.len())
            .field("closed", &self.closed.get())
            .finish()
    }
}

impl fmt::Debug for Acquire<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire")
            .field("wanted", &self.wanted)
            .field("waiting", &self.waiter.is_some())
            .finish()
    }
}

impl fmt::Debug for AcquireOwned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcquireOwned")
            .field("wanted", &self.wanted)
            .field("waiting", &self.waiter.is_some())
            .finish()
    }
}

impl fmt::Display for AcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the semaphore was closed")
    }
}

impl std::error::Error for AcquireError {}

impl fmt::Display for TryAcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TryAcquireError::NoPermits => "no permit free",
            TryAcquireError::Closed => "the semaphore was closed",
        })
    }
}

impl std::error::Error for TryAcquireError {}
