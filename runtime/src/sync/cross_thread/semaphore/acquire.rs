//! The futures of the acquires, [`Acquire`] and [`AcquireOwned`], on [`PermitWait`], one
//! acquire's place in the line.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::state::State;
use super::{OwnedSemaphorePermit, Semaphore, SemaphorePermit};
use crate::sync::waiters::wake_all;
use crate::sync::AcquireError;

/// One acquire's wait for its permits, shared by [`Acquire`] and [`AcquireOwned`].
struct PermitWait {
    wanted: usize,
    /// Its id in the line (or among the granted) once it has waited.
    id: Option<u64>,
}

impl PermitWait {
    fn new(wanted: usize) -> PermitWait {
        PermitWait { wanted, id: None }
    }

    /// `Ready(Ok)` once the permits are the caller's; under the cooperative budget.
    fn poll(&mut self, sem: &Semaphore, cx: &mut Context<'_>) -> Poll<Result<(), AcquireError>> {
        crate::coop::budgeted(cx, |cx| self.poll_now(sem, cx))
    }

    /// The check and the registration of the waker share one critical section, and a
    /// release grants (and takes the waker) under the same lock, so no wake is lost. The
    /// waker is cloned with the lock released (a clone is user code, which may call this
    /// semaphore), and everything is checked again once it is taken back.
    fn poll_now(
        &mut self,
        sem: &Semaphore,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), AcquireError>> {
        let mut waker = None;
        loop {
            let mut state = sem.lock();
            let ready = self.ready(&mut state);
            if ready.is_ready() || state.waits_with(self.id, cx.waker()) {
                drop(state);
                drop(waker);
                return ready;
            }
            if let Some(waker) = waker.take() {
                let old = state.register(&mut self.id, self.wanted, waker);
                drop(state);
                drop(old);
                return Poll::Pending;
            }
            drop(state);
            waker = Some(cx.waker().clone());
        }
    }

    /// `Ready` if the permits are the caller's (granted while it waited, or free now for
    /// one that has not waited) or the semaphore is closed; `Pending` if it must wait.
    fn ready(&mut self, state: &mut State) -> Poll<Result<(), AcquireError>> {
        if let Some(id) = self.id {
            if state.take_grant(id) {
                self.id = None;
                return Poll::Ready(Ok(()));
            }
        }
        if state.is_closed() {
            // Not granted: closing took it out of the line already.
            self.id = None;
            return Poll::Ready(Err(AcquireError));
        }
        if self.id.is_none() && state.try_take(self.wanted) {
            return Poll::Ready(Ok(()));
        }
        Poll::Pending
    }

    /// The acquire is dropped: it leaves the line, or its granted permits go back.
    fn cancel(&mut self, sem: &Semaphore) {
        let Some(id) = self.id.take() else { return };
        let (wakers, old) = sem.lock().leave(id, self.wanted);
        drop(old);
        wake_all(wakers);
    }
}

/// The future of [`Semaphore::acquire`] and [`Semaphore::acquire_many`]: a
/// [`SemaphorePermit`] once the permits are free and its turn has come, [`AcquireError`]
/// if the semaphore is closed first. `Send`, and cancel-safe: dropped, it leaves the line,
/// and permits it was granted go to the next waiters.
#[must_use = "futures do nothing unless polled"]
pub struct Acquire<'a> {
    sem: &'a Semaphore,
    wait: PermitWait,
}

impl<'a> Acquire<'a> {
    pub(super) fn new(sem: &'a Semaphore, wanted: usize) -> Acquire<'a> {
        Acquire {
            sem,
            wait: PermitWait::new(wanted),
        }
    }
}

impl<'a> Future for Acquire<'a> {
    type Output = Result<SemaphorePermit<'a>, AcquireError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let sem = this.sem;
        this.wait
            .poll(sem, cx)
            .map(|r| r.map(|()| SemaphorePermit::new(sem, this.wait.wanted)))
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        self.wait.cancel(self.sem);
    }
}

/// The future of [`Semaphore::acquire_owned`] and [`Semaphore::acquire_many_owned`]: an
/// [`OwnedSemaphorePermit`], which may move to another thread, once the permits are free
/// and its turn has come. `Send`, and cancel-safe, as [`Acquire`] is.
#[must_use = "futures do nothing unless polled"]
pub struct AcquireOwned {
    sem: Arc<Semaphore>,
    wait: PermitWait,
}

impl AcquireOwned {
    pub(super) fn new(sem: Arc<Semaphore>, wanted: usize) -> AcquireOwned {
        AcquireOwned {
            sem,
            wait: PermitWait::new(wanted),
        }
    }
}

impl Future for AcquireOwned {
    type Output = Result<OwnedSemaphorePermit, AcquireError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let wanted = this.wait.wanted;
        this.wait
            .poll(&this.sem, cx)
            .map(|r| r.map(|()| OwnedSemaphorePermit::new(this.sem.clone(), wanted)))
    }
}

impl Drop for AcquireOwned {
    fn drop(&mut self) {
        self.wait.cancel(&self.sem);
    }
}

impl fmt::Debug for Acquire<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("cross_thread::Acquire")
            .field("wanted", &self.wait.wanted)
            .field("waiting", &self.wait.id.is_some())
            .finish()
    }
}

impl fmt::Debug for AcquireOwned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("cross_thread::AcquireOwned")
            .field("wanted", &self.wait.wanted)
            .field("waiting", &self.wait.id.is_some())
            .finish()
    }
}
