//! [`PollSender`] and [`PollSemaphore`] (tokio-util's): a bounded `mpsc` sender and a
//! semaphore driven from `poll_*` methods, for code that implements a poll-based trait
//! (`AsyncWrite`, `Sink`, a hand-written `Future`) and has no `async fn` to await in.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::mpsc::{OwnedPermit, SendError, Sender, TrySendError};
use super::semaphore::{AcquireOwned, OwnedPermit as OwnedSemaphorePermit, Semaphore};

/// A reserve in progress: the sender is inside the future.
type Reserving<T> = Pin<Box<dyn Future<Output = Result<OwnedPermit<T>, SendError<()>>>>>;

enum State<T> {
    /// No slot reserved.
    Idle,
    /// Waiting for a slot (the channel was full), through a clone of the sender.
    Reserving(Reserving<T>),
    /// Holding a slot, for the next [`PollSender::send_item`].
    Reserved(OwnedPermit<T>),
}

/// A bounded [`mpsc::Sender`](super::mpsc::Sender) driven by polling: reserve a slot with
/// [`poll_reserve`](PollSender::poll_reserve), then fill it with
/// [`send_item`](PollSender::send_item). Also a futures [`Sink`](futures_util::sink::Sink),
/// so `SinkExt::send`, `forward` and `send_all` work on it.
///
/// While the channel is full, `poll_reserve` returns `Pending` and the task is woken when a
/// slot frees (a reserve waits its turn among the channel's senders, as
/// [`Sender::reserve`](super::mpsc::Sender::reserve) does). A slot reserved and not used
/// is held until [`abort_send`](PollSender::abort_send), `close`, or the drop. A wait
/// boxes its reserve; a free slot is taken without allocating.
///
/// ```
/// use std::future::poll_fn;
/// use overlap::sync::{mpsc, PollSender};
///
/// overlap::block_on(async {
///     let (tx, mut rx) = mpsc::channel(1);
///     let mut tx = PollSender::new(tx);
///     poll_fn(|cx| tx.poll_reserve(cx)).await.unwrap();
///     tx.send_item("hello").unwrap();
///     assert_eq!(rx.recv().await, Some("hello"));
/// });
/// ```
pub struct PollSender<T> {
    /// This handle's sender; `None` once closed.
    sender: Option<Sender<T>>,
    state: State<T>,
}

/// Why a [`PollSender`] took no value: the receiver is gone or the sender closed (no value
/// then, from `poll_reserve`), or [`send_item`](PollSender::send_item) came with no slot
/// reserved (its value comes back).
pub struct PollSendError<T>(Option<T>);

impl<T> PollSendError<T> {
    /// The value that was not sent, if the call that failed had one.
    pub fn into_inner(self) -> Option<T> {
        self.0
    }
}

impl<T: 'static> PollSender<T> {
    /// Wraps `sender`.
    pub fn new(sender: Sender<T>) -> PollSender<T> {
        PollSender {
            sender: Some(sender),
            state: State::Idle,
        }
    }

    /// Reserves a slot for the next [`send_item`](Self::send_item): `Ready(Ok(()))` once
    /// one is held (at once if one is already), `Pending` while the channel is full (the
    /// task woken when a slot frees), `Ready(Err(_))` once the receiver is gone or the
    /// sender closed.
    pub fn poll_reserve(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), PollSendError<T>>> {
        let Some(sender) = &self.sender else {
            return Poll::Ready(Err(PollSendError(None)));
        };
        loop {
            match &mut self.state {
                State::Idle => match sender.clone().try_reserve_owned() {
                    Ok(permit) => self.state = State::Reserved(permit),
                    Err(TrySendError::Full(clone)) => {
                        self.state = State::Reserving(Box::pin(clone.reserve_owned()));
                    }
                    Err(TrySendError::Closed(_)) => return Poll::Ready(Err(PollSendError(None))),
                },
                State::Reserving(reserving) => match reserving.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(permit)) => self.state = State::Reserved(permit),
                    Poll::Ready(Err(_)) => {
                        self.state = State::Idle;
                        return Poll::Ready(Err(PollSendError(None)));
                    }
                },
                State::Reserved(_) => return Poll::Ready(Ok(())),
            }
        }
    }

    /// Sends `value` into the slot [`poll_reserve`](Self::poll_reserve) reserved. With no
    /// slot reserved (or the sender closed), the value comes back in the error and nothing
    /// changes.
    pub fn send_item(&mut self, value: T) -> Result<(), PollSendError<T>> {
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Reserved(permit) => {
                drop(permit.send(value));
                Ok(())
            }
            other => {
                self.state = other;
                Err(PollSendError(Some(value)))
            }
        }
    }

    /// Gives back the slot reserved, or stops a reserve in progress; true if there was
    /// either. The sender stays usable.
    pub fn abort_send(&mut self) -> bool {
        !matches!(std::mem::replace(&mut self.state, State::Idle), State::Idle)
    }

    /// Drops this sender (and any slot it reserved): the receiver sees the channel end once
    /// every other sender is gone too. Later calls fail.
    pub fn close(&mut self) {
        self.state = State::Idle;
        self.sender = None;
    }

    /// Whether this sender can send no more: closed, or its receiver gone.
    pub fn is_closed(&self) -> bool {
        self.sender.as_ref().is_none_or(Sender::is_closed)
    }

    /// The sender inside, unless closed.
    pub fn get_ref(&self) -> Option<&Sender<T>> {
        self.sender.as_ref()
    }
}

impl<T> Clone for PollSender<T> {
    /// Another sender of the same channel, with no slot reserved (closed if this one is).
    fn clone(&self) -> PollSender<T> {
        PollSender {
            sender: self.sender.clone(),
            state: State::Idle,
        }
    }
}

/// `poll_ready` is [`poll_reserve`](PollSender::poll_reserve), `start_send`
/// [`send_item`](PollSender::send_item); flushing has nothing to do; closing drops the
/// sender.
impl<T: 'static> futures_util::sink::Sink<T> for PollSender<T> {
    type Error = PollSendError<T>;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.get_mut().poll_reserve(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: T) -> Result<(), Self::Error> {
        self.get_mut().send_item(item)
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.get_mut().close();
        Poll::Ready(Ok(()))
    }
}

impl<T> Unpin for PollSender<T> {}

impl<T> fmt::Debug for PollSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match (&self.sender, &self.state) {
            (None, _) => "closed",
            (_, State::Idle) => "idle",
            (_, State::Reserving(_)) => "reserving",
            (_, State::Reserved(_)) => "reserved",
        };
        f.debug_struct("PollSender").field("state", &state).finish()
    }
}

impl<T> fmt::Debug for PollSendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PollSendError").finish_non_exhaustive()
    }
}

impl<T> fmt::Display for PollSendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("the channel is closed"),
            Some(_) => f.write_str("send_item called with no slot reserved by poll_reserve"),
        }
    }
}

impl<T> std::error::Error for PollSendError<T> {}

/// A [`Semaphore`] driven by polling: [`poll_acquire`](PollSemaphore::poll_acquire) returns
/// an owned permit, or `Pending` with the task woken when one frees. Also a `Stream` of
/// permits, ending when the semaphore is closed. A wait holds its place in the queue
/// between polls; dropping the `PollSemaphore` gives it up.
///
/// ```
/// use std::future::poll_fn;
/// use std::rc::Rc;
/// use overlap::sync::{PollSemaphore, Semaphore};
///
/// overlap::block_on(async {
///     let mut sem = PollSemaphore::new(Rc::new(Semaphore::new(1)));
///     let permit = poll_fn(|cx| sem.poll_acquire(cx)).await.unwrap();
///     assert_eq!(sem.available_permits(), 0);
///     drop(permit);
///     assert_eq!(sem.available_permits(), 1);
/// });
/// ```
pub struct PollSemaphore {
    semaphore: Rc<Semaphore>,
    /// The acquire in progress, and how many permits it asks.
    acquiring: Option<(AcquireOwned, u32)>,
}

impl PollSemaphore {
    /// Wraps `semaphore`.
    pub fn new(semaphore: Rc<Semaphore>) -> PollSemaphore {
        PollSemaphore {
            semaphore,
            acquiring: None,
        }
    }

    /// One permit: `Ready(Some(_))` once it is had, `Pending` while none is free (the task
    /// woken when one is), `Ready(None)` if the semaphore is closed.
    pub fn poll_acquire(&mut self, cx: &mut Context<'_>) -> Poll<Option<OwnedSemaphorePermit>> {
        self.poll_acquire_many(cx, 1)
    }

    /// `n` permits at once, as [`poll_acquire`](Self::poll_acquire). A wait for another
    /// number in progress is given up for this one.
    pub fn poll_acquire_many(
        &mut self,
        cx: &mut Context<'_>,
        n: u32,
    ) -> Poll<Option<OwnedSemaphorePermit>> {
        let acquiring = match &mut self.acquiring {
            Some((acquire, wanted)) if *wanted == n => acquire,
            slot => {
                let acquire = self.semaphore.clone().acquire_many_owned(n);
                &mut slot.insert((acquire, n)).0
            }
        };
        let got = std::task::ready!(Pin::new(acquiring).poll(cx));
        self.acquiring = None;
        Poll::Ready(got.ok())
    }

    /// Permits free now.
    pub fn available_permits(&self) -> usize {
        self.semaphore.available_permits()
    }

    /// Adds `n` permits to the semaphore.
    pub fn add_permits(&self, n: usize) {
        self.semaphore.add_permits(n)
    }

    /// The semaphore, shared.
    pub fn clone_inner(&self) -> Rc<Semaphore> {
        self.semaphore.clone()
    }

    /// The semaphore (a wait in progress is given up).
    pub fn into_inner(self) -> Rc<Semaphore> {
        self.semaphore.clone()
    }
}

impl Clone for PollSemaphore {
    /// Another handle to the same semaphore, with no wait in progress.
    fn clone(&self) -> PollSemaphore {
        PollSemaphore::new(self.semaphore.clone())
    }
}

/// Permits one at a time; ends when the semaphore is closed.
impl futures_core::Stream for PollSemaphore {
    type Item = OwnedSemaphorePermit;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_acquire(cx)
    }
}

impl fmt::Debug for PollSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PollSemaphore")
            .field("semaphore", &self.semaphore)
            .field("waiting", &self.acquiring.is_some())
            .finish()
    }
}
