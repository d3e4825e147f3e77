//! `Semaphore`: a count of permits, handed out in the order tasks asked.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::waiters::{wake, wake_all, WaitQueue, Waiter};

/// Limits how many tasks do something at once: each holds a permit while it does, and the
/// others wait, in the order they asked. For the tasks of one runtime (not `Send`).
///
/// A permit goes back when dropped, straight to the first waiter if any. A waiting
/// [`acquire`](Semaphore::acquire) that is dropped leaves the line, passing on a permit it
/// had already been handed.
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
pub struct Semaphore {
    permits: Cell<usize>,
    /// Tasks waiting; a chosen one was handed a released permit directly.
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

impl Semaphore {
    /// A semaphore with `permits` permits.
    pub fn new(permits: usize) -> Semaphore {
        Semaphore {
            permits: Cell::new(permits),
            waiters: WaitQueue::default(),
            closed: Cell::new(false),
        }
    }

    /// Waits for a permit, which is returned when the [`Permit`] is dropped.
    pub fn acquire(&self) -> Acquire<'_> {
        Acquire {
            sem: self,
            waiter: None,
        }
    }

    /// Like [`acquire`](Semaphore::acquire), with a permit that owns a reference to the
    /// semaphore, so it can move into a task.
    pub fn acquire_owned(self: Rc<Self>) -> AcquireOwned {
        AcquireOwned {
            sem: self,
            waiter: None,
        }
    }

    /// A permit if one is free now and nobody waits for one.
    pub fn try_acquire(&self) -> Result<Permit<'_>, TryAcquireError> {
        if self.closed.get() {
            return Err(TryAcquireError::Closed);
        }
        if !self.waiters.is_empty() || self.permits.get() == 0 {
            return Err(TryAcquireError::NoPermits);
        }
        self.permits.set(self.permits.get() - 1);
        Ok(Permit { sem: self })
    }

    /// Permits free now.
    pub fn available_permits(&self) -> usize {
        self.permits.get()
    }

    /// Adds `n` permits, waking as many waiting tasks (the count saturates at `usize::MAX`).
    pub fn add_permits(&self, n: usize) {
        let mut left = n;
        while left > 0 && !self.waiters.is_empty() {
            self.release();
            left -= 1;
        }
        self.permits.set(self.permits.get().saturating_add(left));
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

    /// One permit comes back: to the first waiter, or to the pool.
    fn release(&self) {
        match self.waiters.choose_first() {
            Some(waker) => wake(waker),
            None => self.permits.set(self.permits.get().saturating_add(1)),
        }
    }

    fn poll_acquire(
        &self,
        waiter: &mut Option<Rc<Waiter>>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), AcquireError>> {
        if let Some(w) = waiter {
            if w.is_chosen() {
                *waiter = None;
                return Poll::Ready(Ok(()));
            }
        }
        if self.closed.get() {
            // Not granted: closing took it out of the line already.
            *waiter = None;
            return Poll::Ready(Err(AcquireError));
        }
        match waiter {
            Some(w) => w.set_waker(cx.waker()),
            None if self.waiters.is_empty() && self.permits.get() > 0 => {
                self.permits.set(self.permits.get() - 1);
                return Poll::Ready(Ok(()));
            }
            None => *waiter = Some(self.waiters.push(cx.waker())),
        }
        Poll::Pending
    }

    /// An acquire is dropped while waiting: it leaves the line, or passes on the permit it
    /// was handed.
    fn cancel(&self, waiter: Option<Rc<Waiter>>) {
        let Some(w) = waiter else { return };
        if w.is_chosen() {
            self.release();
        } else {
            self.waiters.remove(&w);
        }
    }
}

/// The future of [`Semaphore::acquire`].
#[must_use = "futures do nothing unless polled"]
pub struct Acquire<'a> {
    sem: &'a Semaphore,
    waiter: Option<Rc<Waiter>>,
}

impl<'a> Future for Acquire<'a> {
    type Output = Result<Permit<'a>, AcquireError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let sem = this.sem;
        sem.poll_acquire(&mut this.waiter, cx)
            .map(|r| r.map(|()| Permit { sem }))
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
    waiter: Option<Rc<Waiter>>,
}

impl Future for AcquireOwned {
    type Output = Result<OwnedPermit, AcquireError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let sem = &this.sem;
        sem.poll_acquire(&mut this.waiter, cx)
            .map(|r| r.map(|()| OwnedPermit { sem: sem.clone() }))
    }
}

impl Drop for AcquireOwned {
    fn drop(&mut self) {
        self.sem.cancel(self.waiter.take());
    }
}

/// A permit of a [`Semaphore`], given back when dropped.
#[must_use = "the permit is given back as soon as it is dropped"]
pub struct Permit<'a> {
    sem: &'a Semaphore,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.sem.release();
    }
}

/// A permit of a [`Semaphore`] held through an `Rc`, so it can move into a task; given back
/// when dropped.
#[must_use = "the permit is given back as soon as it is dropped"]
pub struct OwnedPermit {
    sem: Rc<Semaphore>,
}

impl Drop for OwnedPermit {
    fn drop(&mut self) {
        self.sem.release();
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
            .field("waiting", &self.waiter.is_some())
            .finish()
    }
}

impl fmt::Debug for AcquireOwned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcquireOwned")
            .field("waiting", &self.waiter.is_some())
            .finish()
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").finish_non_exhaustive()
    }
}

impl fmt::Debug for OwnedPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedPermit").finish_non_exhaustive()
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
