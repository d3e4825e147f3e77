//! A multi-producer, single-consumer queue between tasks, bounded or unbounded.
//!
//! A bounded channel is fair: when it is full, senders get room in the order they started
//! waiting, and a waiting sender that is dropped (cancelled) passes its turn on.

use std::cell::{RefCell, RefMut};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use futures_core::Stream;

use super::waiters::{wake, wake_all, WaitQueue, Waiter, Watchers};

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
    /// The receiver was dropped or closed: sends fail from now on.
    closed: bool,
    /// Senders waiting in `Sender::closed`.
    closed_watchers: Rc<Watchers>,
}

impl<T> Chan<T> {
    fn has_room(&self) -> bool {
        self.queue.len() + self.reserved < self.capacity
    }

    /// A slot freed up (or a reservation was given back): reserves it for the first waiter,
    /// whose waker is returned to be called once the channel is no longer borrowed.
    fn grant_next(&mut self) -> Option<Waker> {
        if !self.has_room() {
            return None;
        }
        let waker = self.waiters.choose_first()?;
        self.reserved += 1;
        waker
    }
}

/// Takes the first queued value; the slot it frees goes to the next waiting sender.
fn pop<T>(mut chan: RefMut<'_, Chan<T>>) -> Option<T> {
    let v = chan.queue.pop_front()?;
    let next = chan.grant_next();
    drop(chan);
    wake(next);
    Some(v)
}

/// Sends values to the [`Receiver`]; cloning makes another sender. See [`channel`].
pub struct Sender<T> {
    chan: Rc<RefCell<Chan<T>>>,
}

/// Receives the values of every [`Sender`], in the order they were sent. See [`channel`].
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
/// callback, a `Drop`).
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

/// The sending side of an [`unbounded_channel`]. Clone it for more senders; the channel
/// ends for the receiver once every sender is dropped.
pub struct UnboundedSender<T>(Sender<T>);

/// The receiving side of an [`unbounded_channel`]: the same type as a bounded channel's.
pub type UnboundedReceiver<T> = Receiver<T>;

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

fn with_capacity<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let chan = Rc::new(RefCell::new(Chan {
        queue: VecDeque::new(),
        capacity,
        reserved: 0,
        waiters: WaitQueue::default(),
        receiver_waker: None,
        senders: 1,
        closed: false,
        closed_watchers: Rc::default(),
    }));
    (
        Sender { chan: chan.clone() },
        Receiver { chan, ended: false },
    )
}

/// The receiving side is gone; the value comes back.
#[derive(PartialEq, Eq)]
pub struct SendError<T>(pub T);

/// Why [`Sender::try_send`] did not send; the value comes back either way.
#[derive(PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The channel is full (or its free slots are promised to waiting senders).
    Full(T),
    /// The receiver is gone.
    Closed(T),
}

/// Why [`Receiver::try_recv`] returned no value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing queued now; senders remain.
    Empty,
    /// Nothing queued, and nothing can come: every sender is gone, or the receiver closed
    /// the channel.
    Disconnected,
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
            sender: self,
            value: Some(value),
            waiter: None,
        }
    }

    /// Sends `value` if there is room now, without waiting.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let chan = self.chan.borrow_mut();
        if chan.closed {
            return Err(TrySendError::Closed(value));
        }
        if !chan.waiters.is_empty() || !chan.has_room() {
            return Err(TrySendError::Full(value));
        }
        push(chan, value);
        Ok(())
    }

    /// Whether the receiver is gone (dropped or closed), so sends fail.
    pub fn is_closed(&self) -> bool {
        self.chan.borrow().closed
    }

    /// Waits until the receiver is gone (dropped or closed): for a producer to stop work
    /// nobody will receive. Cancel-safe.
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
            if self.chan.borrow().closed {
                return Poll::Ready(());
            }
            slot.register(cx.waker());
            Poll::Pending
        })
        .await
    }
}

/// Queues `value` and wakes the receiver, after releasing the borrow.
fn push<T>(mut chan: RefMut<'_, Chan<T>>, value: T) {
    chan.queue.push_back(value);
    let waker = chan.receiver_waker.take();
    drop(chan);
    wake(waker);
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Sender<T> {
        self.chan.borrow_mut().senders += 1;
        Sender {
            chan: self.chan.clone(),
        }
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

/// The future of [`Sender::send`].
#[must_use = "futures do nothing unless polled"]
pub struct Send<'a, T> {
    sender: &'a Sender<T>,
    value: Option<T>,
    waiter: Option<Rc<Waiter>>,
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
        let this = self;
        let mut chan = this.sender.chan.borrow_mut();
        let Some(value) = this.value.take() else {
            return Poll::Ready(Ok(())); // polled after completion
        };
        if chan.closed {
            // A reservation held is moot (closing cleared them): nothing will be received.
            this.waiter = None;
            return Poll::Ready(Err(SendError(value)));
        }
        match &this.waiter {
            Some(w) if w.is_chosen() => {
                this.waiter = None;
                chan.reserved -= 1;
                push(chan, value);
                return Poll::Ready(Ok(()));
            }
            Some(w) => w.set_waker(cx.waker()),
            None if chan.waiters.is_empty() && chan.has_room() => {
                push(chan, value);
                return Poll::Ready(Ok(()));
            }
            None => this.waiter = Some(chan.waiters.push(cx.waker())),
        }
        this.value = Some(value);
        Poll::Pending
    }
}

impl<T> Drop for Send<'_, T> {
    fn drop(&mut self) {
        let Some(w) = self.waiter.take() else {
            return;
        };
        let next = {
            let mut chan = self.sender.chan.borrow_mut();
            if chan.closed {
                // Closing dropped every waiter and reservation already.
                return;
            }
            if w.is_chosen() {
                // Woken for a slot it will not fill: the next in line gets it.
                chan.reserved -= 1;
                chan.grant_next()
            } else {
                chan.waiters.remove(&w);
                None
            }
        };
        wake(next);
    }
}

impl<T> Receiver<T> {
    /// Waits for the next value; `None` once the queue is empty and no value can come any
    /// more: every sender is gone, or the receiver was [closed](Receiver::close).
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
        if limit == 0 {
            return 0;
        }
        let Some(first) = self.recv().await else {
            return 0;
        };
        buf.push(first);
        let mut n = 1;
        while n < limit {
            match pop(self.chan.borrow_mut()) {
                Some(v) => buf.push(v),
                None => break,
            }
            n += 1;
        }
        n
    }

    /// [`recv`](Receiver::recv) as a poll function.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        crate::coop::budgeted(cx, |cx| self.poll_recv_now(cx))
    }

    fn poll_recv_now(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        if let Some(v) = pop(self.chan.borrow_mut()) {
            return Poll::Ready(Some(v));
        }
        let mut chan = self.chan.borrow_mut();
        if chan.senders == 0 || chan.closed {
            self.ended = true;
            return Poll::Ready(None);
        }
        match &chan.receiver_waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => chan.receiver_waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Takes the next value if one is queued, without waiting. `Disconnected` once the
    /// queue is empty and no value can come any more (as for [`recv`](Receiver::recv)).
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        if let Some(v) = pop(self.chan.borrow_mut()) {
            return Ok(v);
        }
        let chan = self.chan.borrow();
        if chan.senders == 0 || chan.closed {
            Err(TryRecvError::Disconnected)
        } else {
            Err(TryRecvError::Empty)
        }
    }

    /// Stops the channel: later sends fail (waiting senders are woken to fail), while the
    /// values already queued can still be received; after them, `recv` gives `None` even
    /// if senders remain. The usual graceful shutdown: `close()`, then receive until `None`.
    pub fn close(&mut self) {
        let (wakers, watchers) = {
            let mut chan = self.chan.borrow_mut();
            chan.closed = true;
            chan.reserved = 0;
            (chan.waiters.take_all(), chan.closed_watchers.clone())
        };
        wake_all(wakers);
        watchers.wake_all();
    }

    /// The number of values queued now.
    pub fn len(&self) -> usize {
        self.chan.borrow().queue.len()
    }

    /// Whether no value is queued now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.close();
        // The queued values go now, not when the last sender does.
        let queued = std::mem::take(&mut self.chan.borrow_mut().queue);
        drop(queued);
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

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("mpsc::Sender")
            .field("closed", &self.is_closed())
            .finish()
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

impl<T> fmt::Debug for Send<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Send")
            .field("waiting", &self.waiter.is_some())
            .finish()
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the receiving side is gone")
    }
}

impl<T> std::error::Error for SendError<T> {}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrySendError::Full(_) => "Full(..)",
            TrySendError::Closed(_) => "Closed(..)",
        })
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrySendError::Full(_) => "the channel is full",
            TrySendError::Closed(_) => "the receiver is gone",
        })
    }
}

impl<T> std::error::Error for TrySendError<T> {}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TryRecvError::Empty => "no value queued",
            TryRecvError::Disconnected => {
                "no value queued and none can come (every sender gone, or the channel closed)"
            }
        })
    }
}

impl std::error::Error for TryRecvError {}
