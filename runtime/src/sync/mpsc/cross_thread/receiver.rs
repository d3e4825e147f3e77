//! The receiving end, [`Receiver`], and its wait.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use futures_core::Stream;

use super::super::error::TryRecvError;
use super::{block, Chan};
use crate::sync::waiters::{wake_all, wake_keeping};

/// Receives the values of every [`Sender`](super::Sender) of a channel, in the order they
/// were queued, on any thread. See [`channel`](super::channel).
///
/// Dropping it closes the channel, as [`close`](Receiver::close) does, and drops the values
/// still queued: sends then fail, giving their value back. Once every sender is dropped,
/// [`recv`](Receiver::recv) returns what is queued, then `None`.
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
    /// `None` was returned: the stream is terminated (`FusedStream`).
    ended: bool,
}

impl<T> Receiver<T> {
    pub(super) fn new(chan: Arc<Chan<T>>) -> Receiver<T> {
        Receiver { chan, ended: false }
    }

    /// Waits for the next value; `None` once the queue is empty and no value can come any
    /// more: every sender is gone, or the receiver was [closed](Receiver::close).
    ///
    /// Cancel-safe: a value is taken from the queue only when it is returned, and a dropped
    /// `recv` leaves no waker in the channel.
    ///
    /// ```
    /// use overlap::sync::mpsc::cross_thread;
    ///
    /// overlap::block_on(async {
    ///     let (tx, mut rx) = cross_thread::channel(4);
    ///     std::thread::spawn(move || tx.blocking_send("hello").unwrap());
    ///     assert_eq!(rx.recv().await, Some("hello"));
    ///     assert_eq!(rx.recv().await, None, "the thread's sender is gone");
    /// });
    /// ```
    pub fn recv(&mut self) -> Recv<'_, T> {
        Recv {
            rx: self,
            waiting: false,
        }
    }

    /// Waits for the next value from synchronous code, parking the thread: tokio's
    /// `blocking_recv`, for a [`spawn_blocking`](crate::spawn_blocking) job or any thread
    /// that is not running a runtime. `None` as for [`recv`](Receiver::recv).
    ///
    /// # Panics
    /// On a thread running a runtime's `block_on` (in a task or the `block_on` future): it
    /// would stop that runtime's loop. Use `recv().await` there.
    ///
    /// ```
    /// use overlap::sync::mpsc::cross_thread;
    ///
    /// let (tx, mut rx) = cross_thread::channel(1);
    /// let worker = std::thread::spawn(move || {
    ///     let mut sum = 0;
    ///     while let Some(n) = rx.blocking_recv() {
    ///         sum += n;
    ///     }
    ///     sum
    /// });
    /// overlap::block_on(async move {
    ///     for n in 1..=4 {
    ///         tx.send(n).await.unwrap();
    ///     }
    /// });
    /// assert_eq!(worker.join().unwrap(), 10);
    /// ```
    #[track_caller]
    pub fn blocking_recv(&mut self) -> Option<T> {
        block("Receiver::blocking_recv", "recv().await", self.recv())
    }

    /// Waits for at least one value, then moves up to `limit` queued values to the end of
    /// `buf` in one go; returns how many. `0` means the channel has ended (as `recv`'s
    /// `None`), or `limit` was 0. Cancel-safe: values are moved only when it returns.
    ///
    /// ```
    /// use overlap::sync::mpsc::cross_thread;
    ///
    /// overlap::block_on(async {
    ///     let (tx, mut rx) = cross_thread::unbounded_channel();
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

    /// [`recv_many`](Receiver::recv_many) as a poll function: `Pending` until a value is
    /// queued or the channel ends, then up to `limit` values moved to the end of `buf` and
    /// their count, `0` meaning the end (or a `limit` of 0).
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
        let next = || self.try_recv().ok();
        Poll::Ready(crate::sync::mpsc::batch_after(first, buf, limit, next))
    }

    /// Waits, parking the thread, for at least one value, then moves up to `limit` queued
    /// values to the end of `buf`: tokio's `blocking_recv_many`, the batch form of
    /// [`blocking_recv`](Receiver::blocking_recv), for a [`spawn_blocking`](crate::spawn_blocking)
    /// job or a plain thread. `0` means the channel has ended, or `limit` was 0.
    ///
    /// # Panics
    /// On a thread running a runtime's `block_on`, as `blocking_recv` does.
    ///
    /// ```
    /// use overlap::sync::mpsc::cross_thread;
    ///
    /// let (tx, mut rx) = cross_thread::unbounded_channel();
    /// for i in 0..10 {
    ///     tx.send(i).unwrap();
    /// }
    /// drop(tx);
    /// let writer = std::thread::spawn(move || {
    ///     let (mut batches, mut all) = (0, Vec::new());
    ///     while rx.blocking_recv_many(&mut all, 4) > 0 {
    ///         batches += 1; // one write per batch, say
    ///     }
    ///     (batches, all)
    /// });
    /// let (batches, all) = writer.join().unwrap();
    /// assert_eq!(batches, 3);
    /// assert_eq!(all, (0..10).collect::<Vec<_>>());
    /// ```
    #[track_caller]
    pub fn blocking_recv_many(&mut self, buf: &mut Vec<T>, limit: usize) -> usize {
        let batch = self.recv_many(buf, limit);
        block("Receiver::blocking_recv_many", "recv_many(..).await", batch)
    }

    /// [`recv`](Receiver::recv) as a poll function, for a hand-written future or stream.
    /// The waker it registers stays in the channel until a value or the end wakes it (or
    /// the next poll replaces it).
    ///
    /// ```
    /// use overlap::sync::mpsc::cross_thread;
    /// use std::task::Poll;
    ///
    /// overlap::block_on(async {
    ///     let (tx, mut rx) = cross_thread::channel(1);
    ///     std::future::poll_fn(|cx| {
    ///         assert!(rx.poll_recv(cx).is_pending());
    ///         Poll::Ready(())
    ///     })
    ///     .await;
    ///     tx.send(5).await.unwrap(); // wakes the task that polled
    ///     assert_eq!(std::future::poll_fn(|cx| rx.poll_recv(cx)).await, Some(5));
    /// });
    /// ```
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        crate::coop::budgeted(cx, |cx| self.poll_recv_now(cx))
    }

    fn poll_recv_now(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut state = self.chan.lock();
        if let Some((v, waker)) = state.pop() {
            drop(state);
            return Poll::Ready(Some(self.hand_out(v, waker)));
        }
        if state.is_over() {
            self.ended = true;
            return Poll::Ready(None);
        }
        // Registered under the lock that a sender's push takes too: a value queued after
        // the check above finds this waker.
        let old = match &state.receiver_waker {
            Some(w) if w.will_wake(cx.waker()) => None,
            _ => state.receiver_waker.replace(cx.waker().clone()),
        };
        drop(state);
        drop(old); // user code, after the unlock
        Poll::Pending
    }

    /// Takes the next value if one is queued, without waiting. `Disconnected` once the
    /// queue is empty and no value can come any more (as for [`recv`](Receiver::recv)).
    ///
    /// ```
    /// use overlap::sync::mpsc::{cross_thread, error::TryRecvError};
    ///
    /// let (tx, mut rx) = cross_thread::channel(1);
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// tx.try_send(1).unwrap();
    /// drop(tx);
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    /// ```
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let mut state = self.chan.lock();
        if let Some((v, waker)) = state.pop() {
            drop(state);
            return Ok(self.hand_out(v, waker));
        }
        if state.is_over() {
            Err(TryRecvError::Disconnected)
        } else {
            Err(TryRecvError::Empty)
        }
    }

    /// Stops the channel: later sends and reservations fail (waiting senders are woken to
    /// fail, and [`Sender::closed`](super::Sender::closed) completes), while the values
    /// already queued can still be received, and so can those sent through slots reserved
    /// before the close (a [`Permit`](super::Permit)); after them, `recv` gives `None`
    /// even if senders remain. The usual graceful shutdown: `close()`, then receive until
    /// `None`.
    ///
    /// ```
    /// use overlap::sync::mpsc::cross_thread;
    ///
    /// let (tx, mut rx) = cross_thread::channel(4);
    /// tx.try_send(1).unwrap();
    /// let permit = tx.try_reserve().unwrap();
    /// rx.close();
    /// assert!(tx.try_send(3).is_err(), "closed for new sends");
    /// permit.send(2);
    /// assert_eq!(rx.blocking_recv(), Some(1));
    /// assert_eq!(rx.blocking_recv(), Some(2));
    /// assert_eq!(rx.blocking_recv(), None);
    /// ```
    pub fn close(&mut self) {
        let wakers = self.chan.lock().close();
        wake_all(wakers);
    }

    /// Whether no new value can be sent: every sender is gone, or the receiver was
    /// [closed](Receiver::close). Values still queued can be received.
    ///
    /// ```
    /// use overlap::sync::mpsc::cross_thread;
    ///
    /// let (tx, mut rx) = cross_thread::channel(1);
    /// tx.try_send(1).unwrap();
    /// assert!(!rx.is_closed());
    /// drop(tx);
    /// assert!(rx.is_closed());
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// ```
    pub fn is_closed(&self) -> bool {
        let state = self.chan.lock();
        state.closed || state.senders == 0
    }

    /// The number of values queued now.
    ///
    /// ```
    /// use overlap::sync::mpsc::cross_thread;
    ///
    /// let (tx, rx) = cross_thread::unbounded_channel();
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// assert_eq!(rx.len(), 2);
    /// assert!(!rx.is_empty());
    /// ```
    pub fn len(&self) -> usize {
        self.chan.lock().queue.len()
    }

    /// Whether no value is queued now.
    ///
    /// ```
    /// use overlap::sync::mpsc::cross_thread;
    ///
    /// let (tx, mut rx) = cross_thread::channel(1);
    /// assert!(rx.is_empty());
    /// tx.try_send(()).unwrap();
    /// assert!(!rx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many values could be sent now without waiting, as
    /// [`Sender::capacity`](super::Sender::capacity).
    ///
    /// ```
    /// use overlap::sync::mpsc::cross_thread;
    ///
    /// let (tx, mut rx) = cross_thread::channel(2);
    /// tx.try_send(1).unwrap();
    /// assert_eq!(rx.capacity(), 1);
    /// rx.try_recv().unwrap();
    /// assert_eq!(rx.capacity(), 2);
    /// ```
    pub fn capacity(&self) -> usize {
        self.chan.lock().free_slots()
    }

    /// The capacity the channel was made with (`usize::MAX` for an unbounded one).
    ///
    /// ```
    /// use overlap::sync::mpsc::cross_thread;
    ///
    /// assert_eq!(cross_thread::channel::<u8>(3).1.max_capacity(), 3);
    /// assert_eq!(cross_thread::unbounded_channel::<u8>().1.max_capacity(), usize::MAX);
    /// ```
    pub fn max_capacity(&self) -> usize {
        self.chan.lock().capacity
    }

    /// How many (strong) senders keep the channel open.
    ///
    /// ```
    /// use overlap::sync::mpsc::cross_thread;
    ///
    /// let (tx, rx) = cross_thread::channel::<u8>(1);
    /// let tx2 = tx.clone();
    /// assert_eq!(rx.sender_strong_count(), 2);
    /// drop((tx, tx2));
    /// assert_eq!(rx.sender_strong_count(), 0);
    /// ```
    pub fn sender_strong_count(&self) -> usize {
        self.chan.lock().senders
    }

    /// How many [`WeakSender`](super::WeakSender)s (or
    /// [`WeakUnboundedSender`](super::WeakUnboundedSender)s) there are. They do not keep
    /// the channel open.
    ///
    /// ```
    /// use overlap::sync::mpsc::cross_thread;
    ///
    /// let (tx, mut rx) = cross_thread::channel::<u8>(1);
    /// let weak = tx.downgrade();
    /// drop(tx);
    /// assert_eq!((rx.sender_strong_count(), rx.sender_weak_count()), (0, 1));
    /// assert_eq!(rx.blocking_recv(), None);
    /// drop(weak);
    /// assert_eq!(rx.sender_weak_count(), 0);
    /// ```
    pub fn sender_weak_count(&self) -> usize {
        self.chan.lock().weak_senders
    }
}

impl<T> Receiver<T> {
    /// Wakes the sender the slot freed by taking `v` went to, then hands `v` out; a waker
    /// that panics leaves `v` first in the queue (see `wake_keeping`). Only the receiver
    /// takes from the front, so that is where `v` still belongs.
    fn hand_out(&self, v: T, waker: Option<Waker>) -> T {
        wake_keeping(waker, v, |v| self.chan.lock().queue.push_front(v))
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let (queued, wakers, own) = {
            let mut state = self.chan.lock();
            state.receiver_gone = true;
            let queued = std::mem::take(&mut state.queue);
            (queued, state.close(), state.receiver_waker.take())
        };
        drop(own);
        // The queued values (user code) go after the wakes, even if a waker panics.
        let _queued = queued;
        wake_all(wakers);
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
        let state = self.chan.lock();
        f.debug_struct("cross_thread::Receiver")
            .field("queued", &state.queue.len())
            .field("senders", &state.senders)
            .field("closed", &state.closed)
            .finish()
    }
}

/// The future of [`Receiver::recv`]. Dropped while waiting, it takes its waker out of the
/// channel (and no value: a value is taken only when it is returned).
///
/// ```
/// use overlap::sync::mpsc::cross_thread;
/// use std::time::Duration;
///
/// overlap::block_on(async {
///     let (tx, mut rx) = cross_thread::channel::<u8>(1);
///     let waited = overlap::time::timeout(Duration::from_millis(1), rx.recv()).await;
///     assert!(waited.is_err(), "nothing was sent");
///     tx.send(1).await.unwrap();
///     assert_eq!(rx.recv().await, Some(1));
/// });
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Recv<'a, T> {
    rx: &'a mut Receiver<T>,
    /// Its waker is in the channel.
    waiting: bool,
}

impl<T> Future for Recv<'_, T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        let poll = this.rx.poll_recv(cx);
        this.waiting = poll.is_pending();
        poll
    }
}

impl<T> Drop for Recv<'_, T> {
    fn drop(&mut self) {
        if self.waiting {
            let old = self.rx.chan.lock().receiver_waker.take();
            drop(old);
        }
    }
}

impl<T> fmt::Debug for Recv<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("cross_thread::Recv")
            .field("waiting", &self.waiting)
            .finish()
    }
}
