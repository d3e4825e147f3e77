//! `Notify`: wake one waiting task, or all of them, without sending a value.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use futures_core::FusedFuture;

use super::waiters::{wake, wake_all, WaitQueue, Waiter};

/// Wakes tasks waiting in [`notified`](Notify::notified): the first in line with
/// [`notify_one`](Notify::notify_one), the last with [`notify_last`](Notify::notify_last),
/// or all with [`notify_waiters`](Notify::notify_waiters). For the tasks of one runtime
/// (not `Send`).
///
/// `notify_one` (or `notify_last`) with nobody waiting stores one permit, which the next
/// `notified()` takes at once: a notification that races ahead of the wait is not lost. A
/// `notified()` future chosen by `notify_one` but dropped before it completes passes the
/// notification on to the next in line (one chosen by `notify_last`, to the new last).
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
pub struct Notify {
    /// Tasks waiting; a chosen one was picked by `notify_one`.
    waiters: WaitQueue,
    permit: Cell<bool>,
    /// How many times `notify_waiters` ran: a `Notified` made before a call completes.
    broadcasts: Cell<u64>,
}

impl Notify {
    /// A `Notify` with no permit and nobody waiting.
    pub const fn new() -> Notify {
        Notify {
            waiters: WaitQueue::new(),
            permit: Cell::new(false),
            broadcasts: Cell::new(0),
        }
    }

    /// [`new`](Notify::new) under tokio's name for its `const` constructor: overlap's `new`
    /// is a `const fn` as well, so either makes a `Notify` in a `const` context.
    ///
    /// ```
    /// use overlap::sync::Notify;
    ///
    /// thread_local! {
    ///     static READY: Notify = const { Notify::const_new() };
    /// }
    /// READY.with(|n| n.notify_one()); // stores the permit
    /// let notified = READY.with(|n| std::pin::pin!(n.notified()).as_mut().enable());
    /// assert!(notified, "the stored permit was taken");
    /// ```
    pub const fn const_new() -> Notify {
        Notify::new()
    }

    /// Waits for a notification: one from [`notify_one`](Notify::notify_one) (or its stored
    /// permit), or any [`notify_waiters`](Notify::notify_waiters) called after this future
    /// was made (even before it is first polled).
    ///
    /// Cancel-safe: dropped, it leaves the line of waiters (losing its place), and a
    /// `notify_one` it had been chosen for goes to the next waiter, or becomes the permit.
    pub fn notified(&self) -> Notified<'_> {
        Notified {
            notify: self,
            wait: Wait::new(self),
        }
    }

    /// [`notified`](Notify::notified), by a future that owns an `Rc` of this `Notify`
    /// instead of borrowing it (tokio's takes an `Arc`): it can be moved into a spawned
    /// task. It behaves as a [`Notified`] in every other way, [`enable`](OwnedNotified::enable)
    /// included.
    ///
    /// ```
    /// use std::rc::Rc;
    /// use overlap::sync::Notify;
    ///
    /// overlap::block_on(async {
    ///     let notify = Rc::new(Notify::new());
    ///     let wait = notify.clone().notified_owned();
    ///     let task = overlap::spawn(async move {
    ///         wait.await;
    ///         "woken"
    ///     });
    ///     overlap::yield_now().await; // the task waits
    ///     notify.notify_one();
    ///     assert_eq!(task.await.unwrap(), "woken");
    /// });
    /// ```
    pub fn notified_owned(self: Rc<Self>) -> OwnedNotified {
        OwnedNotified {
            wait: Wait::new(&self),
            notify: self,
        }
    }

    /// Wakes the first waiting task, or, if none waits, stores a permit for the next
    /// `notified()` (at most one: permits do not add up).
    ///
    /// ```
    /// use std::pin::pin;
    /// use overlap::sync::Notify;
    ///
    /// overlap::block_on(async {
    ///     let notify = Notify::new();
    ///     notify.notify_one(); // nobody waits: one permit is stored
    ///     notify.notify_one(); // still one
    ///     notify.notified().await; // takes it at once
    ///     let next = pin!(notify.notified());
    ///     assert!(!next.enable(), "no permit left");
    /// });
    /// ```
    pub fn notify_one(&self) {
        match self.waiters.choose_first() {
            Some(waker) => wake(waker),
            None => self.permit.set(true),
        }
    }

    /// Wakes the last task to start waiting (the most recent `notified()` to be polled or
    /// [enabled](Notified::enable)), or, if none waits, stores a permit as
    /// [`notify_one`](Notify::notify_one) does. For a stack of waiters rather than a queue.
    ///
    /// ```
    /// use std::pin::Pin;
    /// use overlap::sync::Notify;
    ///
    /// let notify = Notify::new();
    /// let mut first = notify.notified();
    /// let mut second = notify.notified();
    /// Pin::new(&mut first).enable();
    /// Pin::new(&mut second).enable();
    /// notify.notify_last();
    /// assert!(Pin::new(&mut second).enable(), "the latest in line was chosen");
    /// assert!(!Pin::new(&mut first).enable());
    /// ```
    pub fn notify_last(&self) {
        match self.waiters.choose_last() {
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

/// The future of [`Notify::notified`]. It joins the line of waiters when first polled (or
/// [enabled](Notified::enable)); dropped before it completes (or `enable` reported it
/// notified), it leaves the line, and a notification it was chosen for passes on to
/// another waiter (or becomes the permit).
///
/// It is a `FusedFuture`: once it has completed, [`is_terminated`](FusedFuture::is_terminated)
/// says so and `select!` skips its branch (a poll after that is ready again at once). So a
/// `Notified` made and [enabled](Notified::enable) once before a `select!` loop, which
/// keeps a [`notify_waiters`](Notify::notify_waiters) made while the task is busy elsewhere,
/// goes into the loop by name and fires once:
///
/// ```
/// use std::rc::Rc;
/// use overlap::future::FutureExt;
/// use overlap::sync::{mpsc, Notify};
///
/// overlap::block_on(async {
///     let shutdown = Rc::new(Notify::new());
///     let (tx, mut rx) = mpsc::channel(4);
///     let stopped = shutdown.notified();
///     overlap::pin_mut!(stopped);
///     stopped.as_mut().enable(); // from here on, no notify_waiters is missed
///     shutdown.notify_waiters();
///     tx.send("last job").await.unwrap();
///     drop(tx);
///     let (mut stopping, mut jobs) = (false, Vec::new());
///     loop {
///         overlap::select_biased! {
///             _ = stopped => stopping = true, // once; then skipped
///             job = rx.recv().fuse() => match job {
///                 Some(job) => jobs.push(job), // finish the queued work
///                 None => break,
///             },
///         }
///     }
///     assert!(stopping);
///     assert_eq!(jobs, ["last job"]);
/// });
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct Notified<'a> {
    notify: &'a Notify,
    wait: Wait,
}

/// The future of [`Notify::notified_owned`]: a [`Notified`] that owns an `Rc` of its
/// `Notify`, so that it can move into another task. Dropped before it completes, it passes
/// a notification it was chosen for on, as a `Notified` does, and it is a `FusedFuture`
/// as a `Notified` is.
#[must_use = "futures do nothing unless polled"]
pub struct OwnedNotified {
    notify: Rc<Notify>,
    wait: Wait,
}

/// What a `Notified` or an `OwnedNotified` keeps of its wait.
struct Wait {
    /// `notify_waiters` calls when the future was made.
    broadcasts: u64,
    waiter: Option<Rc<Waiter>>,
    done: bool,
    /// A poll returned `Ready`: the future is terminated (`FusedFuture`).
    reported: bool,
}

impl Future for Notified<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        this.wait.poll(this.notify, cx)
    }
}

impl FusedFuture for Notified<'_> {
    fn is_terminated(&self) -> bool {
        self.wait.reported
    }
}

impl Future for OwnedNotified {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        this.wait.poll(&this.notify, cx)
    }
}

impl FusedFuture for OwnedNotified {
    fn is_terminated(&self) -> bool {
        self.wait.reported
    }
}

impl Notified<'_> {
    /// Joins the line of waiters without waiting: a later
    /// [`notify_one`](Notify::notify_one) or [`notify_last`](Notify::notify_last) can choose
    /// this future before it is first polled. Polling does this too; `enable` is for getting
    /// in line first and polling later (say, after releasing something a notifier waits
    /// for). No waker is kept: the task is woken only once it has polled the future.
    /// A [`notify_waiters`](Notify::notify_waiters) call reaches this future whether or not
    /// it was enabled, if the call came after the future was made.
    ///
    /// Returns whether the future is notified (its next poll completes): by a
    /// `notify_waiters` since it was made, by a stored permit (which this takes, the first
    /// time it joins), or by being chosen since it joined. Calling it again is harmless.
    /// Once it has returned `true` the future holds the notification: dropping it then
    /// passes nothing on. An enabled future dropped after being chosen but before anything
    /// reported it (no `enable` returned `true`, no poll completed) passes the
    /// notification on, as a polled one does.
    ///
    /// ```
    /// use std::pin::pin;
    /// use overlap::sync::Notify;
    ///
    /// overlap::block_on(async {
    ///     let notify = Notify::new();
    ///     let mut wait = pin!(notify.notified());
    ///     assert!(!wait.as_mut().enable()); // in line, not notified yet
    ///     notify.notify_one(); // chooses it: no permit is stored
    ///     assert!(wait.as_mut().enable());
    ///     wait.await;
    /// });
    /// ```
    pub fn enable(self: Pin<&mut Self>) -> bool {
        let this = self.get_mut();
        this.wait.poll_now(this.notify, None).is_ready()
    }
}

impl OwnedNotified {
    /// Joins the line of waiters without waiting, and tells whether the future is notified,
    /// as [`Notified::enable`] does.
    ///
    /// ```
    /// use std::rc::Rc;
    /// use overlap::sync::Notify;
    ///
    /// let notify = Rc::new(Notify::new());
    /// let mut wait = Box::pin(notify.clone().notified_owned());
    /// assert!(!wait.as_mut().enable()); // in line, not notified yet
    /// notify.notify_one(); // chooses it: no permit is stored
    /// assert!(wait.as_mut().enable());
    /// ```
    pub fn enable(self: Pin<&mut Self>) -> bool {
        let this = self.get_mut();
        this.wait.poll_now(&this.notify, None).is_ready()
    }
}

impl Wait {
    fn new(notify: &Notify) -> Wait {
        Wait {
            broadcasts: notify.broadcasts.get(),
            waiter: None,
            done: false,
            reported: false,
        }
    }

    /// A poll of the future (within the task's budget), which terminates it once `Ready`.
    fn poll(&mut self, notify: &Notify, cx: &mut Context<'_>) -> Poll<()> {
        let res = crate::coop::budgeted(cx, |cx| self.poll_now(notify, Some(cx.waker())));
        self.reported |= res.is_ready();
        res
    }

    /// Completes if notified; otherwise joins the line (keeping `waker`, if given).
    fn poll_now(&mut self, notify: &Notify, waker: Option<&Waker>) -> Poll<()> {
        if self.done {
            return Poll::Ready(());
        }
        let chosen = self.waiter.as_ref().is_some_and(|w| w.is_chosen());
        if chosen || notify.broadcasts.get() != self.broadcasts {
            self.finish(notify);
            return Poll::Ready(());
        }
        match (&self.waiter, waker) {
            (Some(w), Some(waker)) => drop(w.set_waker(waker)),
            (Some(_), None) => {}
            (None, _) if notify.permit.replace(false) => {
                self.done = true;
                return Poll::Ready(());
            }
            (None, Some(waker)) => self.waiter = Some(notify.waiters.push(waker)),
            (None, None) => self.waiter = Some(notify.waiters.push_unwoken()),
        }
        Poll::Pending
    }

    /// Completes: leaves the line if still in it (woken by a broadcast, or chosen).
    fn finish(&mut self, notify: &Notify) {
        self.done = true;
        if let Some(w) = self.waiter.take() {
            if w.is_chosen() {
                notify.waiters.recycle(w);
            } else {
                drop(notify.waiters.remove(w));
            }
        }
    }

    /// The future goes: leaves the line, passing on a notification it was chosen for but
    /// never reported.
    fn leave(&mut self, notify: &Notify) {
        let Some(w) = self.waiter.take() else {
            return;
        };
        if w.chosen_from_back() {
            // Chosen by `notify_last` but never completed: the new last in line gets it.
            notify.notify_last();
        } else if w.is_chosen() {
            // Chosen by `notify_one` but never completed: the next in line gets it.
            notify.notify_one();
        } else {
            drop(notify.waiters.remove(w));
        }
    }
}

impl Drop for Notified<'_> {
    fn drop(&mut self) {
        self.wait.leave(self.notify);
    }
}

impl Drop for OwnedNotified {
    fn drop(&mut self) {
        self.wait.leave(&self.notify);
    }
}

impl Default for Notify {
    fn default() -> Notify {
        Notify::new()
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
            .field("waiting", &self.wait.waiter.is_some())
            .field("done", &self.wait.done)
            .finish()
    }
}

impl fmt::Debug for OwnedNotified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedNotified")
            .field("waiting", &self.wait.waiter.is_some())
            .field("done", &self.wait.done)
            .finish()
    }
}
