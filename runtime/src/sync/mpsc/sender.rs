//! The sending side: `Sender` and its `send` and `reserve` futures, and `UnboundedSender`.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use super::permit::fill_reserved;
#[cfg(doc)]
use super::{channel, unbounded_channel, Receiver};
use super::{push, Chan, OwnedPermit, Permit, SendError, SendTimeoutError, TrySendError};
use crate::sync::waiters::{wake, wake_all, Waiter};

/// Sends values to the [`Receiver`]; cloning makes another sender. See [`channel`].
pub struct Sender<T> {
    pub(super) chan: Rc<RefCell<Chan<T>>>,
}

/// The sending side of an [`unbounded_channel`]. Clone it for more senders; the channel
/// ends for the receiver once every sender is dropped.
pub struct UnboundedSender<T>(pub(super) Sender<T>);

impl<T> UnboundedSender<T> {
    /// Queues `value` at once, waking the receiver. Fails, giving the value back, if the
    /// receiver is gone (dropped or closed).
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        // `Full` cannot happen (the capacity is `usize::MAX` and no sender ever waits), but
        // it gives the value back too.
        self.0.try_send(value).map_err(|e| match e {
            TrySendError::Closed(v) | TrySendError::Full(v) => SendError(v),
        })
    }

    /// Whether the receiver is gone (dropped or closed), so sends fail.
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }

    /// Waits until the receiver is gone, as [`Sender::closed`] does.
    pub async fn closed(&self) {
        self.0.closed().await
    }

    /// Whether both senders send into the same channel.
    pub fn same_channel(&self, other: &UnboundedSender<T>) -> bool {
        self.0.same_channel(&other.0)
    }
}

impl<T> Clone for UnboundedSender<T> {
    fn clone(&self) -> Self {
        UnboundedSender(self.0.clone())
    }
}

impl<T> fmt::Debug for UnboundedSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("mpsc::UnboundedSender")
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl<T> Sender<T> {
    /// Sends `value`, waiting for room if the channel is full. Fails, giving the value back,
    /// if the receiver is gone.
    ///
    /// Cancel-safe in the useful sense: if the future is dropped before it completes, the
    /// value was not sent (it is dropped with the future) and the sender's place in line
    /// goes to the next waiting sender.
    pub fn send(&self, value: T) -> Send<'_, T> {
        Send {
            wait: SlotWait::new(self, 1),
            value: Some(value),
        }
    }

    /// [`send`](Sender::send), giving up after `timeout`: a full channel that has no room
    /// for `value` in time gives it back in [`SendTimeoutError::Timeout`]; a receiver that
    /// is gone gives it back in [`SendTimeoutError::Closed`]. With room at once it sends
    /// even with a zero `timeout`. Built on [`reserve`](Sender::reserve) and
    /// [`time::timeout`](crate::time::timeout), so it waits in the same line as `send`.
    ///
    /// Cancel-safe as `send` is: dropped before it completes, the value was not sent (and
    /// is dropped with the future).
    ///
    /// # Panics
    /// When it has to wait outside a runtime (the timer needs one).
    ///
    /// ```
    /// use std::time::Duration;
    /// use overlap::sync::mpsc::{self, error::SendTimeoutError};
    ///
    /// overlap::block_on(async {
    ///     let (tx, mut rx) = mpsc::channel(1);
    ///     tx.send_timeout(1, Duration::from_millis(10)).await.unwrap();
    ///     let full = tx.send_timeout(2, Duration::from_millis(10)).await;
    ///     assert_eq!(full, Err(SendTimeoutError::Timeout(2)));
    ///     assert_eq!(rx.recv().await, Some(1));
    ///     drop(rx);
    ///     let gone = tx.send_timeout(3, Duration::from_millis(10)).await;
    ///     assert_eq!(gone.unwrap_err().into_inner(), 3);
    /// });
    /// ```
    pub async fn send_timeout(
        &self,
        value: T,
        timeout: Duration,
    ) -> Result<(), SendTimeoutError<T>> {
        match crate::time::timeout(timeout, self.reserve()).await {
            Ok(Ok(permit)) => {
                permit.send(value);
                Ok(())
            }
            Ok(Err(SendError(()))) => Err(SendTimeoutError::Closed(value)),
            Err(_elapsed) => Err(SendTimeoutError::Timeout(value)),
        }
    }

    /// Sends `value` if there is room now, without waiting.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        match self.try_take_slots(1) {
            Ok(()) => {
                fill_reserved(self, value);
                Ok(())
            }
            Err(e) => Err(e.with(value)),
        }
    }

    /// Reserves `n` free slots now, if there are that many and no sender is waiting for
    /// room (they come first). `n == 0` takes nothing and succeeds while the channel is
    /// open; `n` above the capacity can never be had, so it is `Full`.
    pub(super) fn try_take_slots(&self, n: usize) -> Result<(), TrySendError<()>> {
        let mut chan = self.chan.borrow_mut();
        if chan.closed {
            return Err(TrySendError::Closed(()));
        }
        if n == 0 {
            return Ok(());
        }
        if !chan.waiters.is_empty() || chan.free_slots() < n {
            return Err(TrySendError::Full(()));
        }
        chan.reserved += n;
        Ok(())
    }

    /// Waits for a slot and reserves it, without a value yet: the returned [`Permit`] sends
    /// without waiting. For when making the value is costly, or must not happen unless it
    /// can be sent at once. Fails if the receiver is gone.
    ///
    /// Cancel-safe: dropped before it completes, it reserved nothing and its place in line
    /// goes to the next waiting sender.
    ///
    /// ```
    /// use overlap::sync::mpsc;
    ///
    /// overlap::block_on(async {
    ///     let (tx, mut rx) = mpsc::channel(1);
    ///     let permit = tx.reserve().await.unwrap();
    ///     assert!(tx.try_send(1).is_err(), "the only slot is reserved");
    ///     permit.send(2);
    ///     assert_eq!(rx.recv().await, Some(2));
    /// });
    /// ```
    pub fn reserve(&self) -> Reserve<'_, T> {
        Reserve {
            wait: SlotWait::new(self, 1),
        }
    }

    /// Reserves a slot if there is room now, without waiting.
    pub fn try_reserve(&self) -> Result<Permit<'_, T>, TrySendError<()>> {
        self.try_take_slots(1)?;
        Ok(Permit { sender: Some(self) })
    }

    /// [`reserve`](Sender::reserve), by a permit that owns this sender instead of borrowing
    /// it: the permit can move into another task, and hands the sender back when used (see
    /// [`OwnedPermit`]). Fails if the receiver is gone (this sender is then dropped).
    ///
    /// Cancel-safe as `reserve` is: dropped before it completes, it reserved nothing (and
    /// drops this sender).
    ///
    /// ```
    /// use overlap::sync::mpsc;
    ///
    /// overlap::block_on(async {
    ///     let (tx, mut rx) = mpsc::channel(1);
    ///     let permit = tx.reserve_owned().await.unwrap();
    ///     let tx = permit.send(1);
    ///     assert_eq!(rx.recv().await, Some(1));
    ///     tx.send(2).await.unwrap();
    ///     assert_eq!(rx.recv().await, Some(2));
    /// });
    /// ```
    pub async fn reserve_owned(self) -> Result<OwnedPermit<T>, SendError<()>> {
        self.reserve().await?.keep_slot();
        Ok(OwnedPermit { sender: Some(self) })
    }

    /// [`try_reserve`](Sender::try_reserve), by a permit that owns this sender. On failure
    /// the sender comes back in the error.
    ///
    /// ```
    /// use overlap::sync::mpsc::{self, TrySendError};
    ///
    /// let (tx, _rx) = mpsc::channel::<u8>(1);
    /// let permit = tx.clone().try_reserve_owned().unwrap();
    /// let Err(TrySendError::Full(tx)) = tx.try_reserve_owned() else {
    ///     panic!("the permit holds the only slot");
    /// };
    /// drop(permit);
    /// assert!(tx.try_reserve_owned().is_ok());
    /// ```
    pub fn try_reserve_owned(self) -> Result<OwnedPermit<T>, TrySendError<Sender<T>>> {
        match self.try_take_slots(1) {
            Ok(()) => Ok(OwnedPermit { sender: Some(self) }),
            Err(e) => Err(e.with(self)),
        }
    }

    /// Whether both senders send into the same channel.
    ///
    /// ```
    /// use overlap::sync::mpsc;
    ///
    /// let (tx, _rx) = mpsc::channel::<u8>(1);
    /// let (other, _other_rx) = mpsc::channel::<u8>(1);
    /// assert!(tx.same_channel(&tx.clone()));
    /// assert!(!tx.same_channel(&other));
    /// ```
    pub fn same_channel(&self, other: &Sender<T>) -> bool {
        Rc::ptr_eq(&self.chan, &other.chan)
    }

    /// Whether the receiver is gone (dropped or closed), so sends fail.
    pub fn is_closed(&self) -> bool {
        self.chan.borrow().closed
    }

    /// How many values could be sent now without waiting: the capacity less what is queued
    /// or reserved. A closed channel keeps its count, though every send then fails at once
    /// (see [`is_closed`](Self::is_closed)).
    ///
    /// ```
    /// use overlap::sync::mpsc;
    ///
    /// overlap::block_on(async {
    ///     let (tx, _rx) = mpsc::channel::<u8>(4);
    ///     tx.send(1).await.unwrap();
    ///     let _permit = tx.reserve().await.unwrap();
    ///     assert_eq!((tx.capacity(), tx.max_capacity()), (2, 4));
    /// });
    /// ```
    pub fn capacity(&self) -> usize {
        self.chan.borrow().free_slots()
    }

    /// The capacity the channel was made with.
    pub fn max_capacity(&self) -> usize {
        self.chan.borrow().capacity
    }

    /// Waits until the receiver is gone (dropped or closed): for a producer to stop work
    /// nobody will receive. Cancel-safe. Spends a unit of the task's cooperative budget when
    /// it returns, as a receive does, so a loop that awaits it once the receiver is gone
    /// still lets the other tasks run.
    ///
    /// ```
    /// use overlap::sync::mpsc;
    ///
    /// overlap::block_on(async {
    ///     let (tx, rx) = mpsc::channel::<u32>(1);
    ///     let producer = overlap::spawn(async move {
    ///         tx.closed().await;
    ///         "the consumer left"
    ///     });
    ///     overlap::yield_now().await;
    ///     drop(rx);
    ///     assert_eq!(producer.await.unwrap(), "the consumer left");
    /// });
    /// ```
    pub async fn closed(&self) {
        let slot = self.chan.borrow().closed_watchers.add();
        std::future::poll_fn(|cx| {
            crate::coop::budgeted(cx, |cx| {
                if self.chan.borrow().closed {
                    return Poll::Ready(());
                }
                drop(slot.register(cx.waker()));
                Poll::Pending
            })
        })
        .await
    }
}

impl<T> Sender<T> {
    /// One more sender of `chan`, which keeps it open.
    pub(super) fn counted(chan: &Rc<RefCell<Chan<T>>>) -> Sender<T> {
        chan.borrow_mut().senders += 1;
        Sender { chan: chan.clone() }
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Sender<T> {
        Sender::counted(&self.chan)
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut chan = self.chan.borrow_mut();
            chan.senders -= 1;
            if chan.senders > 0 {
                return;
            }
            chan.receiver_waker.take()
        };
        wake(waker);
    }
}

/// A sender's wait for room: once it completes, `wanted` slots are reserved for this sender
/// (counted in the channel's `reserved`). Dropped before that, it gives its turn to the
/// next waiting sender.
pub(super) struct SlotWait<'a, T> {
    sender: &'a Sender<T>,
    waiter: Option<Rc<Waiter>>,
    /// How many slots it waits for (at least 1).
    wanted: usize,
}

impl<'a, T> SlotWait<'a, T> {
    /// A wait for `wanted` slots of `sender`'s channel, not in line yet.
    pub(super) fn new(sender: &'a Sender<T>, wanted: usize) -> SlotWait<'a, T> {
        debug_assert!(wanted > 0);
        SlotWait {
            sender,
            waiter: None,
            wanted,
        }
    }

    /// `Ready(true)` with the slots reserved, `Ready(false)` if the receiver is gone.
    pub(super) fn poll_slot(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        let mut chan = self.sender.chan.borrow_mut();
        if chan.closed {
            // Slots granted before the close are still this sender's to fill (the receiver
            // drains them), unless the receiver is gone; slots still waited for are refused.
            let chosen = self.waiter.take().is_some_and(|w| w.is_chosen());
            if chosen && chan.receiver_gone {
                chan.reserved -= self.wanted; // granted, never to be filled
                return Poll::Ready(false);
            }
            return Poll::Ready(chosen);
        }
        match &self.waiter {
            Some(w) if w.is_chosen() => {
                // Chosen: the slots were reserved for it when it was woken.
                if let Some(w) = self.waiter.take() {
                    chan.waiters.recycle(w);
                }
                return Poll::Ready(true);
            }
            Some(w) => {
                let old = w.set_waker(cx.waker());
                drop(chan); // the old waker's drop is user code
                drop(old);
                return Poll::Pending;
            }
            None if chan.waiters.is_empty() && chan.free_slots() >= self.wanted => {
                chan.reserved += self.wanted;
                return Poll::Ready(true);
            }
            None => self.waiter = Some(chan.waiters.push_wanting(cx.waker(), self.wanted)),
        }
        Poll::Pending
    }
}

impl<T> Drop for SlotWait<'_, T> {
    fn drop(&mut self) {
        let Some(w) = self.waiter.take() else {
            return;
        };
        let mut left = None;
        let next = {
            let mut chan = self.sender.chan.borrow_mut();
            if chan.closed {
                // Closing took every waiter out of line; slots granted before it are given
                // back (towards the end of the channel, unless nobody will read any more).
                if w.is_chosen() && chan.receiver_gone {
                    chan.reserved -= w.wanted();
                } else if w.is_chosen() {
                    let last = chan.release_after_close(w.wanted());
                    drop(chan);
                    wake(last);
                }
                return;
            }
            if w.is_chosen() {
                // Woken for slots it will not fill: the next in line gets them.
                chan.reserved -= w.wanted();
            } else {
                left = chan.waiters.remove(w);
            }
            // Either way the line may move: given-back slots, or a first waiter that left
            // while the one behind it (wanting fewer slots) fits.
            chan.grant_all()
        };
        wake_all(next);
        drop(left);
    }
}

/// The future of [`Sender::send`].
#[must_use = "futures do nothing unless polled"]
pub struct Send<'a, T> {
    wait: SlotWait<'a, T>,
    value: Option<T>,
}

// The value is only moved out, never pinned.
impl<T> Unpin for Send<'_, T> {}

impl<T> Future for Send<'_, T> {
    type Output = Result<(), SendError<T>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        crate::coop::budgeted(cx, |cx| self.poll_send(cx))
    }
}

impl<T> Send<'_, T> {
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), SendError<T>>> {
        if self.value.is_none() {
            return Poll::Ready(Ok(())); // polled after completion
        }
        if self.wait.waiter.is_none() {
            // The common case, room and nobody waiting, in one borrow and no reservation.
            let chan = self.wait.sender.chan.borrow_mut();
            if !chan.closed && chan.waiters.is_empty() && chan.has_room() {
                if let Some(value) = self.value.take() {
                    push(chan, value);
                }
                return Poll::Ready(Ok(()));
            }
        }
        let got_slot = std::task::ready!(self.wait.poll_slot(cx));
        let Some(value) = self.value.take() else {
            return Poll::Ready(Ok(()));
        };
        if !got_slot {
            return Poll::Ready(Err(SendError(value)));
        }
        fill_reserved(self.wait.sender, value);
        Poll::Ready(Ok(()))
    }
}

/// The future of [`Sender::reserve`].
#[must_use = "futures do nothing unless polled"]
pub struct Reserve<'a, T> {
    wait: SlotWait<'a, T>,
}

impl<'a, T> Future for Reserve<'a, T> {
    type Output = Result<Permit<'a, T>, SendError<()>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        crate::coop::budgeted(cx, |cx| {
            let sender = self.wait.sender;
            let got_slot = std::task::ready!(self.wait.poll_slot(cx));
            Poll::Ready(if got_slot {
                Ok(Permit {
                    sender: Some(sender),
                })
            } else {
                Err(SendError(()))
            })
        })
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("mpsc::Sender")
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl<T> fmt::Debug for Send<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Send")
            .field("waiting", &self.wait.waiter.is_some())
            .finish()
    }
}

impl<T> fmt::Debug for Reserve<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reserve")
            .field("waiting", &self.wait.waiter.is_some())
            .finish()
    }
}
