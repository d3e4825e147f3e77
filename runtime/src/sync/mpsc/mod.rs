//! A multi-producer, single-consumer queue between tasks, bounded or unbounded.
//!
//! Its ends are not `Send`: between threads (a [`spawn_blocking`](crate::spawn_blocking)
//! job feeding a task with `blocking_send`, a worker thread on `blocking_recv`), use
//! [`cross_thread`], the same channel behind a lock.
//!
//! A bounded channel is fair: when it is full, senders get room in the order they started
//! waiting, and a waiting sender that is dropped (cancelled) passes its turn on.

use std::cell::{RefCell, RefMut};
use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use futures_core::Stream;

use super::waiters::{wake, wake_keeping, WaitQueue, Wakes, Watchers};

pub mod cross_thread;
pub mod error;
mod many;
mod permit;
mod sender;
mod weak;

pub use error::{SendError, SendTimeoutError, TryRecvError, TrySendError};
pub use many::PermitIterator;
pub use permit::{OwnedPermit, Permit};
pub use sender::{Reserve, Send, Sender, UnboundedSender};
pub use weak::{WeakSender, WeakUnboundedSender};

/// The receiving side of an [`unbounded_channel`]: the same type as a bounded channel's.
pub type UnboundedReceiver<T> = Receiver<T>;

struct Chan<T> {
    queue: VecDeque<T>,
    /// `usize::MAX` when unbounded.
    capacity: usize,
    /// Slots promised to woken waiters that have not filled them yet.
    reserved: usize,
    /// Senders waiting for room; a chosen one has a slot reserved (counted in `reserved`).
    waiters: WaitQueue,
    receiver_waker: Option<Waker>,
    senders: usize,
    /// `WeakSender`s, which do not keep the channel open.
    weak_senders: usize,
    /// The receiver was dropped or closed: sends fail from now on (slots reserved before
    /// still take their values, unless the receiver was dropped).
    closed: bool,
    /// The receiver was dropped: reserved slots will never be read either.
    receiver_gone: bool,
    /// Senders waiting in `Sender::closed`.
    closed_watchers: Rc<Watchers>,
}

impl<T> Chan<T> {
    fn has_room(&self) -> bool {
        self.queue.len() + self.reserved < self.capacity
    }

    /// Values that could be sent now without waiting: the capacity less what is queued or
    /// reserved.
    fn free_slots(&self) -> usize {
        self.capacity
            .saturating_sub(self.queue.len() + self.reserved)
    }

    /// No value can come any more: every sender is gone, or the receiver closed and no
    /// slot reserved before that is still unfilled.
    fn is_over(&self) -> bool {
        self.senders == 0 || (self.closed && self.reserved == 0)
    }

    /// `n` reserved slots were given back or filled after the close: the last ones let a
    /// waiting receiver see the end. Returns its waker, to be called once the channel is no
    /// longer borrowed.
    fn release_after_close(&mut self, n: usize) -> Option<Waker> {
        self.reserved -= n;
        if self.reserved == 0 {
            self.receiver_waker.take()
        } else {
            None
        }
    }

    /// A slot freed up (or a reservation was given back): if the first waiter fits now, its
    /// slots (one, or a `reserve_many` count) are reserved for it and its waker is returned,
    /// to be called once the channel is no longer borrowed.
    fn grant_next(&mut self) -> Option<Waker> {
        let wanted = self.waiters.first_wants()?;
        if self.free_slots() < wanted {
            return None;
        }
        let waker = self.waiters.choose_first()?;
        self.reserved += wanted;
        waker
    }

    /// Several slots freed up at once, or the first waiter left the line: grants every
    /// waiter that fits now, in order. Returns the wakers, to be called once the channel is
    /// no longer borrowed.
    fn grant_all(&mut self) -> Vec<Waker> {
        let mut wakers = Vec::new();
        while !self.waiters.is_empty() {
            let before = self.reserved;
            let waker = self.grant_next();
            if self.reserved == before {
                break; // the first in line does not fit
            }
            wakers.extend(waker);
        }
        wakers
    }
}
/// What a drained queue keeps of its buffer, in bytes: a burst's memory goes back once the
/// burst is read, yet a steady flow does not reallocate all the time.
const KEEP_WHEN_EMPTY: usize = 64 * 1024;

/// A `recv_many` batch once its first value came: `first`, then what `next` gives while
/// it has a value, `limit` values at most in all, appended to `buf`; how many.
fn batch_after<T>(
    first: T,
    buf: &mut Vec<T>,
    limit: usize,
    next: impl FnMut() -> Option<T>,
) -> usize {
    let before = buf.len();
    buf.push(first);
    buf.extend(std::iter::from_fn(next).take(limit - 1));
    buf.len() - before
}

/// Takes the first queued value; the slot it frees goes to the next waiting sender (whose
/// waker, if it panics, leaves the value queued: see `wake_keeping`).
fn pop<T>(cell: &RefCell<Chan<T>>) -> Option<T> {
    let mut chan = cell.borrow_mut();
    let v = chan.queue.pop_front()?;
    if chan.queue.is_empty() {
        let keep = KEEP_WHEN_EMPTY / std::mem::size_of::<T>().max(1);
        if chan.queue.capacity() > keep {
            chan.queue.shrink_to(keep);
        }
    }
    let next = chan.grant_next();
    drop(chan);
    Some(wake_keeping(next, v, |v| {
        cell.borrow_mut().queue.push_front(v)
    }))
}

/// Queues `value` and wakes the receiver, after releasing the borrow.
fn push<T>(mut chan: RefMut<'_, Chan<T>>, value: T) {
    chan.queue.push_back(value);
    let waker = chan.receiver_waker.take();
    drop(chan);
    wake(waker);
}

/// Receives the values of every [`Sender`], in the order they were sent. See [`channel`].
///
/// Dropping it closes the channel, as [`close`](Receiver::close) does, and drops the values
/// still queued: sends then fail, giving their value back. Once every sender is dropped,
/// [`recv`](Receiver::recv) returns what is queued, then `None`.
pub struct Receiver<T> {
    chan: Rc<RefCell<Chan<T>>>,
    /// `None` was returned: the stream is terminated (`FusedStream`).
    ended: bool,
}

/// A bounded channel: at most `capacity` values wait in it; a sender finding it full waits
/// for room.
///
/// # Panics
/// If `capacity` is 0.
///
/// ```
/// use overlap::sync::mpsc;
///
/// overlap::block_on(async {
///     let (tx, mut rx) = mpsc::channel(2);
///     for i in 0..3 {
///         let tx = tx.clone();
///         overlap::spawn(async move { tx.send(i).await.unwrap() });
///     }
///     drop(tx);
///     let mut got = Vec::new();
///     while let Some(v) = rx.recv().await {
///         got.push(v);
///     }
///     got.sort();
///     assert_eq!(got, [0, 1, 2]);
/// });
/// ```
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    assert!(capacity > 0, "mpsc::channel capacity must be at least 1");
    with_capacity(capacity)
}

/// An unbounded channel: sends never wait (the queue grows as needed), so
/// [`UnboundedSender::send`] is a plain function, callable from synchronous code (a
/// callback, a `Drop`). Once the receiver has read a burst to the end, the queue gives its
/// memory back, keeping about 64 KiB for the next values.
///
/// ```
/// use overlap::sync::mpsc;
///
/// overlap::block_on(async {
///     let (tx, mut rx) = mpsc::unbounded_channel();
///     tx.send("no await needed").unwrap();
///     drop(tx);
///     assert_eq!(rx.recv().await, Some("no await needed"));
///     assert_eq!(rx.recv().await, None);
/// });
/// ```
pub fn unbounded_channel<T>() -> (UnboundedSender<T>, UnboundedReceiver<T>) {
    let (tx, rx) = with_capacity(usize::MAX);
    (UnboundedSender(tx), rx)
}

fn with_capacity<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let chan = Rc::new(RefCell::new(Chan {
        queue: VecDeque::new(),
        capacity,
        reserved: 0,
        receiver_gone: false,
        waiters: WaitQueue::default(),
        receiver_waker: None,
        senders: 1,
        weak_senders: 0,
        closed: false,
        closed_watchers: Rc::default(),
    }));
    (
        Sender { chan: chan.clone() },
        Receiver { chan, ended: false },
    )
}

impl<T> Receiver<T> {
    /// Waits for the next value; `None` once the queue is empty and no value can come any
    /// more: every sender is gone, or the receiver was [closed](Receiver::close).
    /// Cancel-safe: a value is taken from the queue only when it is returned.
    pub async fn recv(&mut self) -> Option<T> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Waits for at least one value, then moves up to `limit` queued values to the end of
    /// `buf` in one go; returns how many. `0` means the channel has ended (as `recv`'s
    /// `None`), or `limit` was 0. Cancel-safe: values are moved only when it returns.
    ///
    /// ```
    /// use overlap::sync::mpsc;
    ///
    /// overlap::block_on(async {
    ///     let (tx, mut rx) = mpsc::unbounded_channel();
    ///     for i in 0..5 {
    ///         tx.send(i).unwrap();
    ///     }
    ///     let mut batch = Vec::new();
    ///     assert_eq!(rx.recv_many(&mut batch, 3).await, 3);
    ///     assert_eq!(rx.recv_many(&mut batch, 10).await, 2);
    ///     assert_eq!(batch, [0, 1, 2, 3, 4]);
    /// });
    /// ```
    pub async fn recv_many(&mut self, buf: &mut Vec<T>, limit: usize) -> usize {
        std::future::poll_fn(|cx| self.poll_recv_many(cx, buf, limit)).await
    }

    /// [`recv_many`](Receiver::recv_many) as a poll function, for a hand-written future or
    /// stream that drains the channel in batches: `Pending` until a value is queued or the
    /// channel ends, then up to `limit` values moved to the end of `buf` and their count,
    /// `0` meaning the end (or a `limit` of 0).
    ///
    /// ```
    /// use std::future::poll_fn;
    /// use std::task::Poll;
    /// use overlap::sync::mpsc;
    ///
    /// overlap::block_on(async {
    ///     let (tx, mut rx) = mpsc::channel(8);
    ///     let mut batch = Vec::new();
    ///     poll_fn(|cx| {
    ///         assert!(rx.poll_recv_many(cx, &mut batch, 4).is_pending(), "nothing queued");
    ///         Poll::Ready(())
    ///     })
    ///     .await;
    ///     for i in 0..6 {
    ///         tx.send(i).await.unwrap();
    ///     }
    ///     assert_eq!(poll_fn(|cx| rx.poll_recv_many(cx, &mut batch, 4)).await, 4);
    ///     drop(tx);
    ///     assert_eq!(poll_fn(|cx| rx.poll_recv_many(cx, &mut batch, 4)).await, 2);
    ///     assert_eq!(poll_fn(|cx| rx.poll_recv_many(cx, &mut batch, 4)).await, 0, "ended");
    ///     assert_eq!(batch, [0, 1, 2, 3, 4, 5]);
    /// });
    /// ```
    pub fn poll_recv_many(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut Vec<T>,
        limit: usize,
    ) -> Poll<usize> {
        if limit == 0 {
            return Poll::Ready(0);
        }
        let Some(first) = std::task::ready!(self.poll_recv(cx)) else {
            return Poll::Ready(0);
        };
        Poll::Ready(batch_after(first, buf, limit, || pop(&self.chan)))
    }

    /// [`recv`](Receiver::recv) as a poll function.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        crate::coop::budgeted(cx, |cx| self.poll_recv_now(cx))
    }

    fn poll_recv_now(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        if let Some(v) = pop(&self.chan) {
            return Poll::Ready(Some(v));
        }
        let mut chan = self.chan.borrow_mut();
        if chan.is_over() {
            self.ended = true;
            return Poll::Ready(None);
        }
        let old = match &chan.receiver_waker {
            Some(w) if w.will_wake(cx.waker()) => None,
            _ => chan.receiver_waker.replace(cx.waker().clone()),
        };
        drop(chan); // the old waker's drop is user code
        drop(old);
        Poll::Pending
    }

    /// Takes the next value if one is queued, without waiting. `Disconnected` once the
    /// queue is empty and no value can come any more (as for [`recv`](Receiver::recv)).
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        if let Some(v) = pop(&self.chan) {
            return Ok(v);
        }
        let chan = self.chan.borrow();
        if chan.is_over() {
            Err(TryRecvError::Disconnected)
        } else {
            Err(TryRecvError::Empty)
        }
    }

    /// Stops the channel: later sends and reservations fail (waiting senders are woken to
    /// fail), while the values already queued can still be received, and so can those sent
    /// through slots reserved before the close (a [`Permit`], or a `send` that was granted
    /// a slot); after them, `recv` gives `None` even if senders remain. The usual graceful
    /// shutdown: `close()`, then receive until `None`.
    ///
    /// ```
    /// use overlap::sync::mpsc;
    ///
    /// overlap::block_on(async {
    ///     let (tx, mut rx) = mpsc::channel(4);
    ///     tx.send(1).await.unwrap();
    ///     let permit = tx.reserve().await.unwrap();
    ///     rx.close();
    ///     assert!(tx.send(3).await.is_err(), "closed for new sends");
    ///     permit.send(2);
    ///     assert_eq!(rx.recv().await, Some(1));
    ///     assert_eq!(rx.recv().await, Some(2));
    ///     assert_eq!(rx.recv().await, None);
    /// });
    /// ```
    pub fn close(&mut self) {
        let (wakers, watchers) = {
            let mut chan = self.chan.borrow_mut();
            chan.closed = true;
            (chan.waiters.take_all(), chan.closed_watchers.clone())
        };
        // A sender's waker that panics must not cost the `closed()` watchers their wake.
        let mut wakes = Wakes::default();
        wakers.into_iter().for_each(|w| wakes.wake(Some(w)));
        let watched =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| watchers.wake_all()));
        wakes.finish();
        if let Err(payload) = watched {
            std::panic::resume_unwind(payload);
        }
    }

    /// The number of values queued now.
    pub fn len(&self) -> usize {
        self.chan.borrow().queue.len()
    }

    /// Whether no value is queued now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether no new value can be sent: every sender is gone, or the receiver was
    /// [closed](Receiver::close). Values queued (or sent through slots reserved before the
    /// close) can still be received.
    ///
    /// ```
    /// use overlap::sync::mpsc;
    ///
    /// let (tx, mut rx) = mpsc::channel(1);
    /// tx.try_send(1).unwrap();
    /// assert!(!rx.is_closed());
    /// drop(tx);
    /// assert!(rx.is_closed());
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// ```
    pub fn is_closed(&self) -> bool {
        let chan = self.chan.borrow();
        chan.closed || chan.senders == 0
    }

    /// How many values could be sent now without waiting, as [`Sender::capacity`].
    pub fn capacity(&self) -> usize {
        self.chan.borrow().free_slots()
    }

    /// The capacity the channel was made with (`usize::MAX` for an unbounded one).
    pub fn max_capacity(&self) -> usize {
        self.chan.borrow().capacity
    }

    /// How many senders keep the channel open.
    pub fn sender_strong_count(&self) -> usize {
        self.chan.borrow().senders
    }

    /// How many [`WeakSender`]s there are.
    pub fn sender_weak_count(&self) -> usize {
        self.chan.borrow().weak_senders
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        // The queued values go now, not when the last sender does (also if a waker that
        // `close` calls panics). So does the waker of the task that last polled this: left
        // in the channel, the last sender's drop would wake that task for a receiver it no
        // longer has (a `StreamMap` it was removed from), and the senders would keep it.
        let (queued, waker) = {
            let mut chan = self.chan.borrow_mut();
            chan.receiver_gone = true;
            (std::mem::take(&mut chan.queue), chan.receiver_waker.take())
        };
        self.close();
        drop(queued);
        drop(waker);
    }
}

impl<T> Stream for Receiver<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.get_mut().poll_recv(cx)
    }
}

/// Terminated once it has returned `None`.
impl<T> futures_core::stream::FusedStream for Receiver<T> {
    fn is_terminated(&self) -> bool {
        self.ended
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let chan = self.chan.borrow();
        f.debug_struct("mpsc::Receiver")
            .field("queued", &chan.queue.len())
            .field("senders", &chan.senders)
            .finish()
    }
}
