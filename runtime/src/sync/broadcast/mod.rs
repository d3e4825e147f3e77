//! Every value to every receiver: chat rooms, event fan-out, a shutdown signal that carries
//! data.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::task::{Context, Poll};

use super::waiters::{Slot, Watchers};

mod weak;

pub use weak::WeakSender;

/// One sent value and how many receivers have yet to read it.
struct Entry<T> {
    value: T,
    unread: usize,
}

struct Shared<T> {
    /// Values still held, oldest first: `queue[0]` has sequence number `head`.
    queue: RefCell<VecDeque<Entry<T>>>,
    head: Cell<u64>,
    capacity: usize,
    watchers: Watchers,
    /// The senders waiting in [`Sender::closed`] for the last receiver to go.
    closers: Watchers,
    senders: Cell<usize>,
    /// How many [`WeakSender`]s there are: they do not keep the channel open.
    weak_senders: Cell<usize>,
    receivers: Cell<usize>,
}

impl<T> Shared<T> {
    /// The sequence number the next send gets.
    fn tail(&self) -> u64 {
        self.head.get() + self.queue.borrow().len() as u64
    }

    /// Drops the values at the front that every receiver has read, each outside any borrow
    /// of the queue (a value's destructor may use this channel). A destructor that panics
    /// stops none of the drops after it; the first panic is passed on once all are done.
    fn pop_read(&self) {
        let mut panic = None;
        loop {
            let popped = {
                let mut queue = self.queue.borrow_mut();
                if queue.front().is_none_or(|e| e.unread != 0) {
                    break;
                }
                self.head.set(self.head.get() + 1);
                queue.pop_front()
            };
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| drop(popped))) {
                panic.get_or_insert(payload);
            }
        }
        if let Some(payload) = panic {
            resume_unwind(payload);
        }
    }
}

/// Sends to every receiver; cloning makes another sender. See [`channel`].
pub struct Sender<T> {
    shared: Rc<Shared<T>>,
}

/// Receives every value sent after it was made, in order. See [`channel`].
pub struct Receiver<T> {
    shared: Rc<Shared<T>>,
    /// The sequence number of the next value to read.
    next: u64,
    slot: Rc<Slot>,
}

/// Every receiver is gone; the value comes back (the same type as `mpsc`'s).
pub use super::mpsc::SendError;

/// The error types at tokio's paths (`broadcast::error::RecvError`, ...); the same as at
/// this module's root.
pub mod error {
    pub use super::{RecvError, SendError, TryRecvError};
}

/// Why [`Receiver::recv`] gave no value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecvError {
    /// Every sender is gone and every value was read.
    Closed,
    /// The receiver fell behind by more than the capacity: this many of the oldest values it
    /// had not read were dropped. The next receive gives the oldest value still held.
    Lagged(u64),
}

/// Why [`Receiver::try_recv`] gave no value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing new now.
    Empty,
    /// Every sender is gone and every value was read.
    Closed,
    /// As [`RecvError::Lagged`].
    Lagged(u64),
}

/// A broadcast channel: each value sent reaches every [`Receiver`] that existed when it was
/// sent, as a clone. At most `capacity` values are held for receivers that have not read
/// them yet; a send never waits, so a receiver that falls further behind loses the oldest
/// values and is told how many ([`RecvError::Lagged`]) before it reads on. A value is
/// dropped as soon as every receiver has read it.
///
/// More receivers come from [`Sender::subscribe`] (or [`Receiver::resubscribe`]); they
/// see what is sent from then on.
///
/// A receiver clones the value while the channel's queue is borrowed: a `Clone` impl that
/// sends on, receives from or drops a receiver of the same channel panics (a value's `Drop`
/// may do all of that). A `Clone` that panics consumes the value: the panic reaches the
/// receive that called it, and the receiver's next receive gets the next value. A value's
/// `Drop` that panics reaches whichever call dropped it (the send that evicted it, the
/// last receive of it, whose clone goes with the panic, or the drop of the last receiver
/// that had not read it) once that call has done its work: receivers are still woken by
/// the send, senders waiting in [`closed`](Sender::closed) by the last receiver's drop,
/// and the other values read by all are still dropped.
///
/// # Panics
/// If `capacity` is 0.
///
/// ```
/// use overlap::sync::broadcast;
///
/// overlap::block_on(async {
///     let (tx, mut first) = broadcast::channel(16);
///     let mut second = tx.subscribe();
///     tx.send("hello").unwrap();
///     drop(tx);
///     assert_eq!(first.recv().await, Ok("hello"));
///     assert_eq!(second.recv().await, Ok("hello"));
///     assert_eq!(first.recv().await, Err(broadcast::RecvError::Closed));
/// });
/// ```
pub fn channel<T: Clone>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let tx = Sender::new(capacity);
    let rx = tx.subscribe();
    (tx, rx)
}

impl<T> Sender<T> {
    /// One more sender of the channel `shared`.
    fn counted(shared: &Rc<Shared<T>>) -> Sender<T> {
        shared.senders.set(shared.senders.get() + 1);
        Sender {
            shared: shared.clone(),
        }
    }

    /// A sender of a new channel that has no receiver yet: [`subscribe`](Sender::subscribe)
    /// makes them (until then, [`send`](Sender::send) fails). Otherwise as [`channel`],
    /// which is this plus one `subscribe`.
    ///
    /// # Panics
    /// If `capacity` is 0.
    ///
    /// ```
    /// use overlap::sync::broadcast;
    ///
    /// let events = broadcast::Sender::new(8);
    /// assert!(events.send("nobody listens").is_err());
    /// let mut rx = events.subscribe();
    /// events.send("heard").unwrap();
    /// assert_eq!(rx.try_recv(), Ok("heard"));
    /// ```
    pub fn new(capacity: usize) -> Sender<T> {
        assert!(
            capacity > 0,
            "broadcast::channel capacity must be at least 1"
        );
        let shared = Rc::new(Shared {
            queue: RefCell::new(VecDeque::new()),
            head: Cell::new(0),
            capacity,
            watchers: Watchers::default(),
            closers: Watchers::default(),
            senders: Cell::new(1),
            weak_senders: Cell::new(0),
            receivers: Cell::new(0),
        });
        Sender { shared }
    }

    /// Sends `value` to every receiver, returning how many there are. Never waits: when
    /// `capacity` values are held already, the oldest is dropped (the receivers that had not
    /// read it will see [`RecvError::Lagged`]). Fails, giving the value back, when no
    /// receiver is left.
    pub fn send(&self, value: T) -> Result<usize, SendError<T>> {
        let receivers = self.shared.receivers.get();
        if receivers == 0 {
            return Err(SendError(value));
        }
        let evicted = {
            let mut queue = self.shared.queue.borrow_mut();
            let evicted = if queue.len() == self.shared.capacity {
                self.shared.head.set(self.shared.head.get() + 1);
                queue.pop_front()
            } else {
                None
            };
            queue.push_back(Entry {
                value,
                unread: receivers,
            });
            evicted
        };
        // The receivers hear of the new value first: the evicted one's destructor may
        // panic. Dropped outside the borrow, as it may also touch this channel.
        self.shared.watchers.wake_all();
        drop(evicted);
        Ok(receivers)
    }

    /// A new receiver, which gets the values sent from now on.
    pub fn subscribe(&self) -> Receiver<T> {
        Receiver::new(self.shared.clone())
    }

    /// How many receivers there are.
    pub fn receiver_count(&self) -> usize {
        self.shared.receivers.get()
    }

    /// How many values are held for receivers that have not read them.
    pub fn len(&self) -> usize {
        self.shared.queue.borrow().len()
    }

    /// Whether `other` sends on the same channel as this sender.
    pub fn same_channel(&self, other: &Sender<T>) -> bool {
        Rc::ptr_eq(&self.shared, &other.shared)
    }

    /// Whether every value sent was read by every receiver (or none was sent).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until no receiver is left (at once if there is none now): for a producer to
    /// stop when nobody listens any more. Each sender (clone) may wait; the last receiver's
    /// drop wakes them all. A receiver subscribed after that is not waited for by a call
    /// that has completed, but a later call waits for it. Cancel-safe: dropping the future
    /// only stops the wait.
    ///
    /// ```
    /// use overlap::sync::broadcast;
    ///
    /// overlap::block_on(async {
    ///     let (tx, rx) = broadcast::channel::<u32>(4);
    ///     let producer = overlap::spawn(async move {
    ///         tx.closed().await;
    ///         tx.receiver_count()
    ///     });
    ///     overlap::yield_now().await;
    ///     drop(rx);
    ///     assert_eq!(producer.await.unwrap(), 0);
    /// });
    /// ```
    pub async fn closed(&self) {
        let receivers = &self.shared.receivers;
        self.shared
            .closers
            .wait_until(|| receivers.get() == 0)
            .await
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Sender<T> {
        Sender::counted(&self.shared)
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let left = self.shared.senders.get() - 1;
        self.shared.senders.set(left);
        if left == 0 {
            self.shared.watchers.wake_all();
        }
    }
}

impl<T> Receiver<T> {
    fn new(shared: Rc<Shared<T>>) -> Receiver<T> {
        let slot = shared.watchers.add();
        shared.receivers.set(shared.receivers.get() + 1);
        let next = shared.tail();
        Receiver { shared, next, slot }
    }

    /// A new receiver on the same channel, which gets the values sent from now on (not the
    /// ones this receiver has yet to read).
    pub fn resubscribe(&self) -> Receiver<T> {
        Receiver::new(self.shared.clone())
    }

    /// How many values sent since this receiver was made it has not read (and are still
    /// held).
    ///
    /// Unlike tokio's, it does not count the values a lag lost, so it is never more than
    /// the capacity: tokio's advice to read a `len` above the capacity as "the next receive
    /// is `Lagged`" does not hold here. A receiver learns that it lagged from
    /// [`recv`](Self::recv) or [`try_recv`](Self::try_recv) only.
    pub fn len(&self) -> usize {
        (self.shared.tail() - self.next.max(self.shared.head.get())) as usize
    }

    /// Whether there is nothing for this receiver to read now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether every sender is gone. Values already sent may still be read: `recv` reports
    /// `Closed` only once they are.
    ///
    /// ```
    /// use overlap::sync::broadcast;
    ///
    /// let (tx, mut rx) = broadcast::channel(4);
    /// tx.send("last words").unwrap();
    /// assert!(!rx.is_closed());
    /// drop(tx);
    /// assert!(rx.is_closed());
    /// assert_eq!(rx.try_recv(), Ok("last words"));
    /// ```
    pub fn is_closed(&self) -> bool {
        self.shared.senders.get() == 0
    }

    /// Whether `other` receives from the same channel as this receiver.
    pub fn same_channel(&self, other: &Receiver<T>) -> bool {
        Rc::ptr_eq(&self.shared, &other.shared)
    }

    /// Marks the value with sequence number `seq` read by this receiver.
    fn mark_read(&self, seq: u64) {
        let head = self.shared.head.get();
        if seq >= head {
            let mut queue = self.shared.queue.borrow_mut();
            if let Some(e) = queue.get_mut((seq - head) as usize) {
                e.unread -= 1;
            }
        }
    }
}

impl<T: Clone> Receiver<T> {
    /// Waits for the next value. Fails with [`RecvError::Lagged`] when values it had not
    /// read were dropped (then reads on from the oldest held), and with
    /// [`RecvError::Closed`] once every sender is gone and it has read everything.
    /// Cancel-safe: a dropped `recv` loses no value.
    ///
    /// ```
    /// use overlap::sync::broadcast::{self, RecvError};
    ///
    /// overlap::block_on(async {
    ///     let (tx, mut slow) = broadcast::channel(2);
    ///     for i in 0..5 {
    ///         tx.send(i).unwrap(); // never waits: the oldest values go
    ///     }
    ///     assert_eq!(slow.recv().await, Err(RecvError::Lagged(3)));
    ///     assert_eq!(slow.recv().await, Ok(3), "reads on from the oldest held");
    ///     assert_eq!(slow.recv().await, Ok(4));
    /// });
    /// ```
    pub async fn recv(&mut self) -> Result<T, RecvError> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// [`recv`](Self::recv) as a poll, under the task's budget (for `BroadcastStream`).
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, RecvError>> {
        crate::coop::budgeted(cx, |cx| match self.try_recv() {
            Ok(v) => Poll::Ready(Ok(v)),
            Err(TryRecvError::Closed) => Poll::Ready(Err(RecvError::Closed)),
            Err(TryRecvError::Lagged(n)) => Poll::Ready(Err(RecvError::Lagged(n))),
            Err(TryRecvError::Empty) => {
                drop(self.slot.register(cx.waker()));
                Poll::Pending
            }
        })
    }

    /// The next value if there is one now.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let head = self.shared.head.get();
        if self.next < head {
            let lost = head - self.next;
            self.next = head;
            return Err(TryRecvError::Lagged(lost));
        }
        let value = {
            let queue = self.shared.queue.borrow();
            match queue.get((self.next - head) as usize) {
                // A `Clone` that panics still consumes the value (as tokio's does), else
                // this receiver would panic on the same value forever.
                Some(e) => catch_unwind(AssertUnwindSafe(|| e.value.clone())),
                None if self.shared.senders.get() == 0 => return Err(TryRecvError::Closed),
                None => return Err(TryRecvError::Empty),
            }
        };
        self.mark_read(self.next);
        self.next += 1;
        self.shared.pop_read();
        match value {
            Ok(value) => Ok(value),
            Err(payload) => resume_unwind(payload),
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.shared.receivers.set(self.shared.receivers.get() - 1);
        // What it had not read no longer waits for it.
        for seq in self.next.max(self.shared.head.get())..self.shared.tail() {
            self.mark_read(seq);
        }
        // A value's destructor that panics must not keep the senders' `closed` waiting.
        let popped = catch_unwind(AssertUnwindSafe(|| self.shared.pop_read()));
        if self.shared.receivers.get() == 0 {
            self.shared.closers.wake_all();
        }
        if let Err(payload) = popped {
            resume_unwind(payload);
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("broadcast::Sender")
            .field("held", &self.len())
            .field("receivers", &self.receiver_count())
            .finish()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("broadcast::Receiver")
            .field("unread", &self.len())
            .finish()
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Closed => f.write_str("every broadcast sender is gone"),
            RecvError::Lagged(n) => write!(f, "the receiver lagged behind and lost {n} values"),
        }
    }
}

impl std::error::Error for RecvError {}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("no value now"),
            TryRecvError::Closed => f.write_str("every broadcast sender is gone"),
            TryRecvError::Lagged(n) => {
                write!(f, "the receiver lagged behind and lost {n} values")
            }
        }
    }
}

impl std::error::Error for TryRecvError {}
