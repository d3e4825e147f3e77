//! The sending ends, [`Sender`] and [`UnboundedSender`], and their waits.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::super::error::{SendError, SendTimeoutError, TrySendError};
use super::send::{Closed, Permit, Reserve, Send, SlotWait};
use super::{block, Chan};
use crate::sync::waiters::wake;

/// Sends values to the [`Receiver`](super::Receiver) of a bounded [`channel`](super::channel),
/// from any thread. Clone it for more producers; the channel ends for the receiver once every
/// clone is dropped (after the values queued).
///
/// It is `Send` and `Sync` when `T` is `Send`: one sender may be shared by reference between
/// threads, or cloned into each.
pub struct Sender<T> {
    pub(super) chan: Arc<Chan<T>>,
}

/// Sends values to the [`Receiver`](super::Receiver) of an
/// [`unbounded_channel`](super::unbounded_channel), from any thread, without ever waiting.
pub struct UnboundedSender<T>(pub(super) Sender<T>);

impl<T> Sender<T> {
    pub(super) fn new(chan: Arc<Chan<T>>) -> Sender<T> {
        Sender { chan }
    }

    /// Sends `value`, waiting for room while the channel is full. Fails, giving the value
    /// back, if the receiver is closed or dropped.
    ///
    /// Cancel-safe, in tokio's sense: dropped before it completes, it sent nothing (the
    /// value is dropped with it), leaves no waker behind, and its place in the line of
    /// waiting senders, or the slot it had just been given, goes to the next one.
    ///
    /// ```
    /// use overlap::sync::mpsc::cross_thread;
    ///
    /// overlap::block_on(async {
    ///     let (tx, mut rx) = cross_thread::channel(1);
    ///     let thread = std::thread::spawn(move || {
    ///         assert_eq!(rx.blocking_recv(), Some(1));
    ///         assert_eq!(rx.blocking_recv(), Some(2));
    ///     });
    ///     tx.send(1).await.unwrap();
    ///     tx.send(2).await.unwrap(); // waits until the thread took 1
    ///     thread.join().unwrap();
    ///     assert_eq!(tx.send(3).await.unwrap_err().0, 3, "the receiver is gone");
    /// });
    /// ```
    pub fn send(&self, value: T) -> Send<'_, T> {
        Send::new(SlotWait::new(&self.chan), value)
    }

    /// Sends `value` from synchronous code, parking the thread while the channel is full:
    /// tokio's `blocking_send`, for a [`spawn_blocking`](crate::spawn_blocking) job or any
    /// thread that is not running a runtime. The receiver may be anywhere (a task, another
    /// thread).
    ///
    /// # Panics
    /// On a thread running a runtime's `block_on` (in a task or the `block_on` future): it
    /// would stop that runtime's loop. Use `send(value).await` there.
    ///
    /// ```
    /// use overlap::sync::mpsc::cross_thread;
    ///
    /// overlap::block_on(async {
    ///     let (tx, mut rx) = cross_thread::channel(2);
    ///     let job = overlap::spawn_blocking(move || {
    ///         for i in 0..5 {
    ///             tx.blocking_send(i).unwrap();
    ///         }
    ///     });
    ///     for i in 0..5 {
    ///         assert_eq!(rx.recv().await, Some(i));
    ///     }
    ///     assert_eq!(rx.recv().await, None);
    ///     job.await.unwrap();
    /// });
    /// ```
    #[track_caller]
    pub fn blocking_send(&self, value: T) -> Result<(), SendError<T>> {
        block(
            "Sender::blocking_send",
            "send(value).await",
            self.send(value),
        )
    }

    /// [`send`](Sender::send), giving up after `timeout`: a full channel that has no room
    /// for `value` in time gives it back in [`SendTimeoutError::Timeout`]; a receiver that
    /// is closed or dropped gives it back in [`SendTimeoutError::Closed`]. With room at once
    /// it sends even with a zero `timeout` (a task that has spent its cooperative budget
    /// yields once first, as every send does then, and looks after that). Built on
    /// [`reserve`](Sender::reserve) and [`time::timeout`](crate::time::timeout), so it waits
    /// in the same fair line as `send` and `blocking_send` (the receiver may be on any
    /// thread).
    ///
    /// Cancel-safe as `send` is: dropped before it completes, it sent nothing (the value is
    /// dropped with the future), and its place in line, or the slot it had just been given,
    /// goes to the next waiting sender. A slot given to it at the very moment its time runs
    /// out is passed on too, never lost.
    ///
    /// It needs a runtime for its timer (as tokio's does): await it in an overlap task or
    /// `block_on`, not under another executor. For the same reason its future is not
    /// `Send`, unlike [`send`](Sender::send)'s: it stays on the thread whose runtime
    /// polls it.
    ///
    /// # Panics
    /// When it has to wait outside a runtime (the timer needs one).
    ///
    /// ```
    /// use std::time::Duration;
    /// use overlap::sync::mpsc::{cross_thread, error::SendTimeoutError};
    ///
    /// overlap::block_on(async {
    ///     let (tx, mut rx) = cross_thread::channel(1);
    ///     tx.send_timeout(1, Duration::from_millis(10)).await.unwrap();
    ///     let full = tx.send_timeout(2, Duration::from_millis(10)).await;
    ///     assert_eq!(full, Err(SendTimeoutError::Timeout(2)));
    ///     // A thread frees the slot: the waiting send gets it.
    ///     let reader = std::thread::spawn(move || {
    ///         assert_eq!(rx.blocking_recv(), Some(1));
    ///         rx
    ///     });
    ///     tx.send_timeout(3, Duration::from_secs(60)).await.unwrap();
    ///     drop(reader.join().unwrap());
    ///     let gone = tx.send_timeout(4, Duration::from_secs(60)).await;
    ///     assert_eq!(gone, Err(SendTimeoutError::Closed(4)));
    /// });
    /// ```
    pub async fn send_timeout(
        &self,
        value: T,
        timeout: Duration,
    ) -> Result<(), SendTimeoutError<T>> {
        match crate::time::timeout(timeout, self.reserve()).await {
            // The receiver may be dropped on another thread between the reservation and
            // the fill: the value then comes back as `Closed`, as `send`'s does.
            Ok(Ok(permit)) => match permit.fill(value) {
                None => Ok(()),
                Some(back) => Err(SendTimeoutError::Closed(back)),
            },
            Ok(Err(SendError(()))) => Err(SendTimeoutError::Closed(value)),
            Err(_elapsed) => Err(SendTimeoutError::Timeout(value)),
        }
    }

    /// Sends `value` if there is room now, without waiting. `Full` also when free slots
    /// are promised to senders already waiting (they come first).
    ///
    /// ```
    /// use overlap::sync::mpsc::{cross_thread, error::TrySendError};
    ///
    /// let (tx, rx) = cross_thread::channel(1);
    /// tx.try_send(1).unwrap();
    /// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
    /// drop(rx);
    /// assert_eq!(tx.try_send(3), Err(TrySendError::Closed(3)));
    /// ```
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let mut state = self.chan.lock();
        if state.closed {
            return Err(TrySendError::Closed(value));
        }
        if state.free_slots() == 0 || !state.send_waiters.line.is_empty() {
            return Err(TrySendError::Full(value));
        }
        let waker = state.push(value);
        drop(state);
        wake(waker);
        Ok(())
    }

    /// Waits for room and reserves one slot, for a value to [`send`](Permit::send) later
    /// without waiting (dropping the permit gives the slot back). Fails if the receiver is
    /// closed or dropped. Cancel-safe, as [`send`](Sender::send).
    ///
    /// ```
    /// use overlap::sync::mpsc::cross_thread;
    ///
    /// overlap::block_on(async {
    ///     let (tx, mut rx) = cross_thread::channel(1);
    ///     let permit = tx.reserve().await.unwrap();
    ///     assert!(tx.try_send(2).is_err(), "the only slot is reserved");
    ///     permit.send(1);
    ///     assert_eq!(rx.recv().await, Some(1));
    /// });
    /// ```
    pub fn reserve(&self) -> Reserve<'_, T> {
        Reserve::new(SlotWait::new(&self.chan), self)
    }

    /// Reserves one slot if there is room now, without waiting; as [`try_send`](Sender::try_send).
    ///
    /// ```
    /// use overlap::sync::mpsc::cross_thread;
    ///
    /// let (tx, mut rx) = cross_thread::channel(1);
    /// let permit = tx.try_reserve().unwrap();
    /// assert!(tx.try_reserve().is_err());
    /// drop(permit); // the slot comes back
    /// tx.try_reserve().unwrap().send("sent");
    /// assert_eq!(rx.try_recv(), Ok("sent"));
    /// ```
    pub fn try_reserve(&self) -> Result<Permit<'_, T>, TrySendError<()>> {
        let mut state = self.chan.lock();
        if state.closed {
            return Err(TrySendError::Closed(()));
        }
        if state.free_slots() == 0 || !state.send_waiters.line.is_empty() {
            return Err(TrySendError::Full(()));
        }
        state.reserved += 1;
        Ok(Permit::new(self))
    }

    /// Waits until the receiver is closed or dropped: for a producer to stop work nobody
    /// will read. Cancel-safe; a dropped wait leaves no waker behind.
    ///
    /// ```
    /// use overlap::sync::mpsc::cross_thread;
    ///
    /// overlap::block_on(async {
    ///     let (tx, rx) = cross_thread::channel::<u8>(1);
    ///     std::thread::spawn(move || drop(rx));
    ///     tx.closed().await;
    ///     assert!(tx.is_closed());
    /// });
    /// ```
    pub fn closed(&self) -> Closed<'_, T> {
        Closed::new(&self.chan)
    }

    /// Whether the receiver was closed or dropped: sends fail from now on.
    ///
    /// ```
    /// use overlap::sync::mpsc::cross_thread;
    ///
    /// let (tx, mut rx) = cross_thread::channel::<u8>(1);
    /// assert!(!tx.is_closed());
    /// rx.close();
    /// assert!(tx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.chan.lock().closed
    }

    /// How many values could be sent now without waiting: the capacity less the values
    /// queued and the slots reserved. A closed channel keeps its count, though every send
    /// then fails at once (see [`is_closed`](Self::is_closed)).
    ///
    /// ```
    /// use overlap::sync::mpsc::cross_thread;
    ///
    /// let (tx, _rx) = cross_thread::channel(3);
    /// tx.try_send(1).unwrap();
    /// let _permit = tx.try_reserve().unwrap();
    /// assert_eq!((tx.capacity(), tx.max_capacity()), (1, 3));
    /// ```
    pub fn capacity(&self) -> usize {
        self.chan.lock().free_slots()
    }

    /// The capacity the channel was made with.
    ///
    /// ```
    /// use overlap::sync::mpsc::cross_thread;
    ///
    /// let (tx, _rx) = cross_thread::channel::<u8>(16);
    /// tx.try_send(1).unwrap();
    /// assert_eq!(tx.max_capacity(), 16);
    /// ```
    pub fn max_capacity(&self) -> usize {
        self.chan.lock().capacity
    }

    /// Whether `other` sends to the same channel.
    ///
    /// ```
    /// use overlap::sync::mpsc::cross_thread;
    ///
    /// let (tx, _rx) = cross_thread::channel::<u8>(1);
    /// let (other, _other_rx) = cross_thread::channel::<u8>(1);
    /// assert!(tx.same_channel(&tx.clone()));
    /// assert!(!tx.same_channel(&other));
    /// ```
    pub fn same_channel(&self, other: &Sender<T>) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }
}

impl<T> UnboundedSender<T> {
    /// Sends `value` at once (the queue grows as needed), from any thread or synchronous
    /// code. Fails, giving the value back, if the receiver is closed or dropped.
    ///
    /// ```
    /// use overlap::sync::mpsc::cross_thread;
    ///
    /// let (tx, mut rx) = cross_thread::unbounded_channel();
    /// std::thread::spawn(move || tx.send("from a thread").unwrap());
    /// assert_eq!(rx.blocking_recv(), Some("from a thread"));
    /// ```
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        let mut state = self.0.chan.lock();
        if state.closed {
            return Err(SendError(value));
        }
        let waker = state.push(value);
        drop(state);
        wake(waker);
        Ok(())
    }

    /// Waits until the receiver is closed or dropped, as [`Sender::closed`].
    ///
    /// ```
    /// use overlap::sync::mpsc::cross_thread;
    ///
    /// overlap::block_on(async {
    ///     let (tx, rx) = cross_thread::unbounded_channel::<u8>();
    ///     drop(rx);
    ///     tx.closed().await;
    /// });
    /// ```
    pub fn closed(&self) -> Closed<'_, T> {
        self.0.closed()
    }

    /// Whether the receiver was closed or dropped, as [`Sender::is_closed`].
    ///
    /// ```
    /// use overlap::sync::mpsc::cross_thread;
    ///
    /// let (tx, rx) = cross_thread::unbounded_channel::<u8>();
    /// assert!(!tx.is_closed());
    /// drop(rx);
    /// assert!(tx.is_closed());
    /// assert_eq!(tx.send(1).unwrap_err().0, 1);
    /// ```
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }

    /// Whether `other` sends to the same channel.
    ///
    /// ```
    /// use overlap::sync::mpsc::cross_thread;
    ///
    /// let (tx, _rx) = cross_thread::unbounded_channel::<u8>();
    /// let (other, _other_rx) = cross_thread::unbounded_channel::<u8>();
    /// assert!(tx.same_channel(&tx.clone()));
    /// assert!(!tx.same_channel(&other));
    /// ```
    pub fn same_channel(&self, other: &UnboundedSender<T>) -> bool {
        self.0.same_channel(&other.0)
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Sender<T> {
        self.chan.lock().senders += 1;
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Clone for UnboundedSender<T> {
    fn clone(&self) -> UnboundedSender<T> {
        UnboundedSender(self.0.clone())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut state = self.chan.lock();
        state.senders -= 1;
        // The last sender gone: a waiting receiver sees the end.
        let waker = if state.senders == 0 {
            state.receiver_waker.take()
        } else {
            None
        };
        drop(state);
        wake(waker);
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.chan.lock();
        f.debug_struct("cross_thread::Sender")
            .field("queued", &state.queue.len())
            .field("capacity", &state.capacity)
            .field("closed", &state.closed)
            .finish()
    }
}

impl<T> fmt::Debug for UnboundedSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.0.chan.lock();
        f.debug_struct("cross_thread::UnboundedSender")
            .field("queued", &state.queue.len())
            .field("closed", &state.closed)
            .finish()
    }
}
