//! `Notify`: wake one waiting task, or all of them, without sending a value.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::waiters::{wake, wake_all, WaitQueue, Waiter};

/// Wakes tasks waiting in [`notified`](Notify::notified): the first in line with
/// [`notify_one`](Notify::notify_one), or all with
/// [`notify_waiters`](Notify::notify_waiters). For the tasks of one runtime (not `Send`).
///
/// `notify_one` with nobody waiting stores one permit, which the next `notified()` takes at
/// once: a notification that races ahead of the wait is not lost. A `notified()` future
/// chosen by `notify_one` but dropped before it completes passes the notification on.
///
/// ```
/// use std::rc::Rc;
/// use overlap::sync::Notify;
///
/// overlap::block_on(async {
///     let shutdown = Rc::new(Notify::new());
///     let workers: Vec<_> = (0..3)
///         .map(|i| {
///             let shutdown = shutdown.clone();
///             overlap::spawn(async move {
///                 shutdown.notified().await;
///                 i
///             })
///         })
///         .collect();
///     overlap::yield_now().await; // they start waiting
///     shutdown.notify_waiters();
///     for (i, w) in workers.into_iter().enumerate() {
///         assert_eq!(w.await.unwrap(), i);
///     }
/// });
/// ```
#[derive(Default)]
pub struct Notify {
    /// Tasks waiting; a chosen one was picked by `notify_one`.
    waiters: WaitQueue,
    permit: Cell<bool>,
    /// How many times `notify_waiters` ran: a `Notified` made before a call completes.
    broadcasts: Cell<u64>,
}

impl Notify {
    /// A `Notify` with no permit and nobody waiting.
    pub fn new() -> Notify {
        Notify::default()
    }

    /// Waits for a notification: one from [`notify_one`](Notify::notify_one) (or its stored
    /// permit), or any [`notify_waiters`](Notify::notify_waiters) called after this future
    /// was made (even before it is first polled).
    pub fn notified(&self) -> Notified<'_> {
        Notified {
            notify: self,
            broadcasts: self.broadcasts.get(),
            waiter: None,
            done: false,
        }
    }

    /// Wakes the first waiting task, or, if none waits, stores a permit for the next
    /// `notified()` (at most one: permits do not add up).
    pub fn notify_one(&self) {
        match self.waiters.choose_first() {
            Some(waker) => wake(waker),
            None => self.permit.set(true),
        }
    }

    /// Wakes every task waiting now (and every `notified()` future made before this call).
    /// Stores no permit.
    pub fn notify_waiters(&self) {
        self.broadcasts.set(self.broadcasts.get() + 1);
        wake_all(self.waiters.take_all());
    }
}

/// The future of [`Notify::notified`].
#[must_use = "futures do nothing unless polled"]
pub struct Notified<'a> {
    notify: &'a Notify,
    broadcasts: u64,
    waiter: Option<Rc<Waiter>>,
    done: bool,
}

impl Future for Notified<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        crate::coop::budgeted(cx, |cx| self.poll_now(cx))
    }
}

impl Notified<'_> {
    fn poll_now(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let this = self;
        if this.done {
            return Poll::Ready(());
        }
        let notify = this.notify;
        let chosen = this.waiter.as_ref().is_some_and(|w| w.is_chosen());
        if chosen || notify.broadcasts.get() != this.broadcasts {
            this.finish();
            return Poll::Ready(());
        }
        match &this.waiter {
            Some(w) => drop(w.set_waker(cx.waker())),
            None if notify.permit.replace(false) => {
                this.done = true;
                return Poll::Ready(());
            }
            None => this.waiter = Some(notify.waiters.push(cx.waker())),
        }
        Poll::Pending
    }
}

impl Notified<'_> {
    /// Completes: leaves the line if still in it (woken by a broadcast, or chosen).
    fn finish(&mut self) {
        self.done = true;
        if let Some(w) = self.waiter.take() {
            if !w.is_chosen() {
                drop(self.notify.waiters.remove(&w));
            }
        }
    }
}

impl Drop for Notified<'_> {
    fn drop(&mut self) {
        let Some(w) = self.waiter.take() else {
            return;
        };
        if w.is_chosen() {
            // Chosen by `notify_one` but never completed: the next in line gets it.
            self.notify.notify_one();
        } else {
            drop(self.notify.waiters.remove(&w));
        }
    }
}

impl fmt::Debug for Notify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notify")
            .field("waiting", &self.waiters.len())
            .field("permit", &self.permit.get())
            .finish()
    }
}

impl fmt::Debug for Notified<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notified")
            .field("waiting", &self.waiter.is_some())
            .field("done", &self.done)
            .finish()
    }
}
