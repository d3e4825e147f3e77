//! A channel for one value, sent once: the usual way to hand a task its reply. Its ends
//! stay on one runtime's thread; for a reply from another thread (a request to another
//! runtime, a blocking worker), [`cross_thread`] is the same channel with `Send` ends.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// The channel's state, behind a `RefCell` here and a mutex in [`cross_thread`]: each step
/// returns the waker to wake (or the old one to drop) once the borrow or lock is let go.
struct Inner<T> {
    value: Option<T>,
    receiver_waker: Option<Waker>,
    /// Waiting in `Sender::closed` for the receiver to go.
    sender_waker: Option<Waker>,
    sender_gone: bool,
    /// The receiver was dropped, or [`Receiver::close`]d: no value is accepted any more.
    receiver_gone: bool,
}

impl<T> Inner<T> {
    fn new() -> Inner<T> {
        Inner {
            value: None,
            receiver_waker: None,
            sender_waker: None,
            sender_gone: false,
            receiver_gone: false,
        }
    }

    /// Stores `value` unless the receiver is gone (then it comes back); the receiver's
    /// waker to wake.
    fn send(&mut self, value: T) -> Result<Option<Waker>, T> {
        if self.receiver_gone {
            return Err(value);
        }
        self.value = Some(value);
        Ok(self.receiver_waker.take())
    }

    /// The sender is gone: the receiver's waker to wake, then the sender's own (left by
    /// `closed`) to drop, both once the state is let go. Nobody would call the sender's
    /// waker any more, and left here the receiver's drop would wake a task that has let go
    /// of this channel (a sender that waited in `closed`, then sent).
    fn sender_dropped(&mut self) -> (Option<Waker>, Option<Waker>) {
        self.sender_gone = true;
        (self.receiver_waker.take(), self.sender_waker.take())
    }

    /// The receiver closes the channel (or is dropped): the sender's waker (in `closed`) to
    /// wake, then the receiver's own to drop, both once the state is let go. A closed
    /// receiver never waits again, and left here its waker would be woken by the sender's
    /// drop: a receive abandoned under a timeout would wake its task for a reply it no
    /// longer waits for.
    fn close(&mut self) -> (Option<Waker>, Option<Waker>) {
        self.receiver_gone = true;
        (self.sender_waker.take(), self.receiver_waker.take())
    }

    /// `Receiver::try_recv`; `done` notes that the receiver has given its outcome.
    fn try_recv(&mut self, done: &mut bool) -> Result<T, TryRecvError> {
        let got = match self.value.take() {
            Some(v) => Ok(v),
            None if self.sender_gone || self.receiver_gone => Err(TryRecvError::Closed),
            None => Err(TryRecvError::Empty),
        };
        *done |= !matches!(got, Err(TryRecvError::Empty));
        got
    }

    /// The receive, without the budget; with the waker its parking replaced, to drop once
    /// the state is let go.
    fn poll_recv(
        &mut self,
        done: &mut bool,
        cx: &Context<'_>,
    ) -> (Poll<Result<T, RecvError>>, Option<Waker>) {
        let ready = self.recv_ready(done);
        if ready.is_ready() {
            return (ready, None);
        }
        (Poll::Pending, park(&mut self.receiver_waker, cx))
    }

    /// The receive's outcome if it has one (`done` then notes it): the value, or the error
    /// once nothing can come; `Pending` if it must wait.
    fn recv_ready(&mut self, done: &mut bool) -> Poll<Result<T, RecvError>> {
        if let Some(v) = self.value.take() {
            *done = true;
            return Poll::Ready(Ok(v));
        }
        // Dropped without sending, or closed by `close`: nothing can come any more.
        if self.sender_gone || self.receiver_gone {
            *done = true;
            return Poll::Ready(Err(RecvError));
        }
        Poll::Pending
    }

    /// `Sender::closed`, without the budget, as [`poll_recv`](Self::poll_recv).
    fn poll_closed(&mut self, cx: &Context<'_>) -> (Poll<()>, Option<Waker>) {
        if self.closed_ready().is_ready() {
            return (Poll::Ready(()), None);
        }
        (Poll::Pending, park(&mut self.sender_waker, cx))
    }

    /// `Ready` once the receiver is gone (or closed the channel), for `Sender::closed`.
    fn closed_ready(&self) -> Poll<()> {
        if self.receiver_gone {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// Wakes the waker a step of [`Inner`] handed out, if any.
fn wake(waker: Option<Waker>) {
    if let Some(w) = waker {
        w.wake();
    }
}

/// Sends the one value; see [`channel`].
pub struct Sender<T> {
    inner: Rc<RefCell<Inner<T>>>,
}

/// Awaits the one value: a future of `Ok(value)`, or [`RecvError`] if the sender was
/// dropped without sending (or [`close`](Receiver::close) came first). See [`channel`].
///
/// Awaiting `&mut receiver` (in a `select!` loop) is cancel-safe: a value not yet returned
/// waits for the next poll. Dropping the `Receiver` closes the channel: a later
/// [`Sender::send`] gives its value back.
pub struct Receiver<T> {
    inner: Rc<RefCell<Inner<T>>>,
    /// The result was returned: the receiver is terminated (`FusedFuture`).
    done: bool,
}

pub mod cross_thread;

/// The error types at tokio's paths (`oneshot::error::RecvError`); the same as at this
/// module's root.
pub mod error {
    pub use super::{RecvError, TryRecvError};
}

/// No value will come: the sender was dropped without sending, or the receiver
/// [closed](Receiver::close) the channel before a value was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecvError;

/// Why [`Receiver::try_recv`] returned no value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing yet; the sender may still send.
    Empty,
    /// No value will come: the sender was dropped without sending, or the receiver
    /// [closed](Receiver::close) the channel (and any value sent was taken).
    Closed,
}

/// A one-shot channel: [`Sender::send`] once, await the [`Receiver`].
///
/// ```
/// use overlap::sync::oneshot;
///
/// overlap::block_on(async {
///     let (tx, rx) = oneshot::channel();
///     overlap::spawn(async move { tx.send("done").unwrap() });
///     assert_eq!(rx.await, Ok("done"));
///
///     let (tx, rx) = oneshot::channel::<u8>();
///     drop(tx);
///     assert_eq!(rx.await, Err(oneshot::RecvError));
/// });
/// ```
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let inner = Rc::new(RefCell::new(Inner::new()));
    (
        Sender {
            inner: inner.clone(),
        },
        Receiver { inner, done: false },
    )
}

impl<T> Sender<T> {
    /// Sends `value`, waking the receiver. Gives the value back if the receiver is gone.
    pub fn send(self, value: T) -> Result<(), T> {
        let waker = self.inner.borrow_mut().send(value)?;
        // `self` drops next; the receiver finds the value first.
        wake(waker);
        Ok(())
    }

    /// Whether the receiver is gone (or [closed](Receiver::close) the channel), so a value
    /// sent now would come back.
    pub fn is_closed(&self) -> bool {
        self.inner.borrow().receiver_gone
    }

    /// Waits until the receiver is gone, or has [closed](Receiver::close) the channel: for
    /// work whose result nobody wants any more to stop early. Cancel-safe.
    ///
    /// ```
    /// use overlap::sync::oneshot;
    /// use overlap::future::{select, Either};
    ///
    /// overlap::block_on(async {
    ///     let (mut tx, rx) = oneshot::channel::<u32>();
    ///     let worker = overlap::spawn(async move {
    ///         let work = std::pin::pin!(std::future::pending::<u32>());
    ///         match select(std::pin::pin!(tx.closed()), work).await {
    ///             Either::Left(_) => "gave up: nobody waits",
    ///             Either::Right(_) => "done",
    ///         }
    ///     });
    ///     drop(rx);
    ///     assert_eq!(worker.await.unwrap(), "gave up: nobody waits");
    /// });
    /// ```
    pub async fn closed(&mut self) {
        std::future::poll_fn(|cx| self.poll_closed(cx)).await
    }

    /// [`closed`](Sender::closed) as a poll function. Spends a unit of the task's
    /// cooperative budget when it returns `Ready`, as a receive does.
    pub fn poll_closed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        crate::coop::budgeted(cx, |cx| {
            let (res, _old) = self.inner.borrow_mut().poll_closed(cx);
            res
        })
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let (waker, _own) = self.inner.borrow_mut().sender_dropped();
        wake(waker);
    }
}

impl<T> Receiver<T> {
    /// Takes the value if it was sent, without waiting. After [`close`](Receiver::close),
    /// nothing can come any more: no value is [`TryRecvError::Closed`].
    ///
    /// Taking the value, or learning that none will come, terminates the receiver
    /// ([`is_terminated`](Receiver::is_terminated), `FusedFuture`), as awaiting it does: a
    /// `select!` does not poll it again.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        self.inner.borrow_mut().try_recv(&mut self.done)
    }

    /// Whether no value waits to be taken: none was sent yet, the sender went without
    /// sending, or the value was already taken.
    ///
    /// ```
    /// use overlap::sync::oneshot;
    ///
    /// let (tx, mut rx) = oneshot::channel();
    /// assert!(rx.is_empty());
    /// tx.send(1).unwrap();
    /// assert!(!rx.is_empty());
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// assert!(rx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.inner.borrow().value.is_none()
    }

    /// Whether the receiver has given its outcome (the value, or the error that none will
    /// come), by being awaited or by [`try_recv`](Receiver::try_recv): it must not be
    /// polled again.
    ///
    /// ```
    /// use overlap::sync::oneshot;
    ///
    /// overlap::block_on(async {
    ///     let (tx, mut rx) = oneshot::channel();
    ///     tx.send("v").unwrap();
    ///     assert!(!rx.is_terminated());
    ///     assert_eq!((&mut rx).await, Ok("v"));
    ///     assert!(rx.is_terminated());
    /// });
    /// ```
    pub fn is_terminated(&self) -> bool {
        self.done
    }

    /// Closes the channel without dropping the receiver: from now on
    /// [`Sender::send`] fails (giving its value back), [`Sender::is_closed`] is true and
    /// [`Sender::closed`] completes, as if the receiver were gone. A value sent before the
    /// call is kept: take it with [`try_recv`](Receiver::try_recv) (or by awaiting the
    /// receiver, which, with no value, fails at once instead of waiting). Closing twice,
    /// or after the value was taken, changes nothing.
    ///
    /// For a graceful shutdown: close, then drain what was sent, so that no value is
    /// accepted that nobody will take.
    ///
    /// ```
    /// use overlap::sync::oneshot::{self, TryRecvError};
    ///
    /// let (tx, mut rx) = oneshot::channel::<&str>();
    /// rx.close();
    /// assert!(tx.is_closed());
    /// assert_eq!(tx.send("too late"), Err("too late"));
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    ///
    /// // A value sent before `close` can still be taken.
    /// let (tx, mut rx) = oneshot::channel();
    /// tx.send("in time").unwrap();
    /// rx.close();
    /// assert_eq!(rx.try_recv(), Ok("in time"));
    /// ```
    pub fn close(&mut self) {
        let (waker, _own) = self.inner.borrow_mut().close();
        wake(waker);
    }
}

impl<T> Future for Receiver<T> {
    type Output = Result<T, RecvError>;

    /// Spends a unit of the task's cooperative budget when it returns `Ready` (as tokio's
    /// does), so a loop over many received values still lets other tasks run.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        crate::coop::budgeted(cx, |cx| {
            let (res, _old) = this.inner.borrow_mut().poll_recv(&mut this.done, cx);
            res
        })
    }
}

/// Terminated once it has returned the value or the error.
impl<T> futures_core::FusedFuture for Receiver<T> {
    fn is_terminated(&self) -> bool {
        self.done
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        // What `close` does; a value already sent is dropped with the channel, when the
        // sender lets go too.
        self.close();
    }
}

/// Stores `cx`'s waker in `slot` unless an equivalent one is there.
fn park(slot: &mut Option<Waker>, cx: &Context<'_>) -> Option<Waker> {
    match slot {
        Some(w) if w.will_wake(cx.waker()) => None,
        _ => slot.replace(cx.waker().clone()),
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("oneshot::Sender")
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("oneshot::Receiver").finish_non_exhaustive()
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the oneshot sender was dropped without sending")
    }
}

impl std::error::Error for RecvError {}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TryRecvError::Empty => "no value sent yet",
            TryRecvError::Closed => "the oneshot sender was dropped without sending",
        })
    }
}

impl std::error::Error for TryRecvError {}
