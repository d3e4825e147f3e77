//! A multi-producer, single-consumer queue whose ends may live on any thread: between a
//! [`spawn_blocking`](crate::spawn_blocking) job (or any other thread) and a task, between
//! tasks of different runtimes, or between two plain threads.
//!
//! It is tokio's `tokio::sync::mpsc` for the cases overlap's own [`mpsc`](super) cannot
//! serve: its ends are `Send` (the senders `Clone + Sync` too) when `T` is `Send`, and it has
//! the blocking calls, [`Sender::blocking_send`] and [`Receiver::blocking_recv`], for code
//! that is not async. Each costs a lock (a `std::sync::Mutex`) per operation, where
//! [`mpsc`](super) costs none: use this one only when a thread boundary is crossed.
//!
//! The async calls work under any executor (but [`Sender::send_timeout`], whose timer needs
//! an overlap runtime), and the blocking ones on any thread that is not running a runtime's
//! `block_on` (there they panic, since they would stop that runtime's loop, as tokio's do
//! inside a runtime).
//!
//! A bounded channel is fair: when it is full, senders get room in the order they started
//! waiting, each freed slot going to exactly one of them; a waiting `send` that is dropped
//! passes its turn (or the slot it was just given) on. A dropped `send` sent nothing, a
//! dropped `recv` took nothing, and neither leaves its waker in the channel. A long line
//! costs little: a waiting send is found in it by a binary search when it is polled again
//! or dropped, so polling again each of N senders waiting on a full channel costs
//! O(N log N) in all, not O(N²).
//!
//! A pool job feeding a task, tokio's `blocking_send` pattern:
//!
//! ```
//! use overlap::sync::mpsc::cross_thread;
//!
//! overlap::block_on(async {
//!     let (tx, mut rx) = cross_thread::channel(16);
//!     let job = overlap::spawn_blocking(move || {
//!         for item in (0..100u64).map(|n| n * n) {
//!             tx.blocking_send(item).unwrap(); // waits while the channel is full
//!         }
//!     });
//!     let mut sum = 0;
//!     while let Some(item) = rx.recv().await {
//!         sum += item;
//!     }
//!     job.await.unwrap();
//!     assert_eq!(sum, (0..100u64).map(|n| n * n).sum());
//! });
//! ```
//!
//! And the reverse, a task feeding a blocking worker:
//!
//! ```
//! use overlap::sync::mpsc::cross_thread;
//!
//! overlap::block_on(async {
//!     let (tx, mut rx) = cross_thread::channel::<String>(4);
//!     let worker = overlap::spawn_blocking(move || {
//!         let mut lines = 0;
//!         while let Some(_line) = rx.blocking_recv() {
//!             lines += 1; // e.g. a synchronous write to a file
//!         }
//!         lines
//!     });
//!     for i in 0..10 {
//!         tx.send(format!("line {i}")).await.unwrap();
//!     }
//!     drop(tx); // the worker's `blocking_recv` then returns `None`
//!     assert_eq!(worker.await.unwrap(), 10);
//! });
//! ```
//!
//! As in tokio, [`Sender::send_timeout`] waits in the same fair line as `send` but gives
//! up after a while, giving the value back; its timer needs a runtime, so it is awaited
//! in an overlap task or `block_on`. And a [`WeakSender`] ([`Sender::downgrade`]) is a
//! handle that does not keep the channel open: [`upgrade`](WeakSender::upgrade) turns it
//! back into a [`Sender`] while a strong one still lives, and the receiver sees the end
//! once the last strong sender is dropped, however many weak ones remain.
//!
//! ```
//! use std::time::Duration;
//! use overlap::sync::mpsc::{cross_thread, error::SendTimeoutError};
//!
//! overlap::block_on(async {
//!     let (tx, mut rx) = cross_thread::channel(1);
//!     tx.send(1).await.unwrap();
//!     // Full: this send gives up, and its value comes back.
//!     let res = tx.send_timeout(2, Duration::from_millis(1)).await;
//!     assert_eq!(res, Err(SendTimeoutError::Timeout(2)));
//!
//!     // A thread that sends only while the task's sender lives.
//!     let weak = tx.downgrade();
//!     let helper = std::thread::spawn(move || {
//!         let mut sent = 0;
//!         while let Some(tx) = weak.upgrade() {
//!             tx.blocking_send(10).unwrap();
//!             sent += 1;
//!         }
//!         sent
//!     });
//!     assert_eq!(rx.recv().await, Some(1));
//!     assert_eq!(rx.recv().await, Some(10));
//!     drop(tx);
//!     let mut later = 0;
//!     while rx.recv().await.is_some() {
//!         later += 1; // what the helper sent before it saw the end
//!     }
//!     assert_eq!(helper.join().unwrap(), 1 + later);
//! });
//! ```

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

mod owned_permit;
mod receiver;
mod send;
mod sender;
mod weak;

pub use owned_permit::OwnedPermit;
pub use receiver::{Receiver, Recv};
pub use send::{Closed, Permit, Reserve, Send};
pub use sender::{Sender, UnboundedSender};
pub use weak::{WeakSender, WeakUnboundedSender};

/// The receiving side of an [`unbounded_channel`]: the same type as a bounded channel's.
///
/// ```
/// use overlap::sync::mpsc::cross_thread::{self, UnboundedReceiver};
///
/// let (tx, mut rx): (_, UnboundedReceiver<u8>) = cross_thread::unbounded_channel();
/// tx.send(1).unwrap();
/// assert_eq!(rx.blocking_recv(), Some(1));
/// ```
pub type UnboundedReceiver<T> = Receiver<T>;

/// The channel both ends share.
struct Chan<T> {
    state: Mutex<State<T>>,
}

impl<T> Chan<T> {
    /// Locks the state. A panic under the lock (an allocation failure, or a waker's clone:
    /// wakers are called and values dropped after the unlock, but a waiting end clones its
    /// waker under it) leaves the state consistent, so a poisoned lock is used as is.
    ///
    /// The clone under the lock is the one piece of user code here: a custom waker whose
    /// `clone` calls back into this same channel deadlocks. Cloning outside it (as the
    /// cross-thread `Semaphore`, `oneshot` and `SetOnce` do) takes a second lock on every
    /// wait, which cost the cross-thread ping-pong a third of its speed (90 to 120 ns a
    /// round trip in `runtime_bench`), so the channel keeps the one lock.
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Everything about the channel, under one lock: a check and the registration of a waker
/// happen in one critical section, and so do a change and the taking of the waker it calls
/// for, so a change can never slip between another thread's check and its sleep.
struct State<T> {
    queue: VecDeque<T>,
    /// `usize::MAX` when unbounded.
    capacity: usize,
    /// Slots promised and not filled yet: those of [`Permit`]s, and those granted to waiting
    /// sends (listed in `granted`) that have not taken them.
    reserved: usize,
    /// Sends waiting for room, in the order they came.
    send_waiters: WaitList,
    /// Waiting sends that were given a slot (counted in `reserved`) and woken, but have not
    /// been polled since, by id. Slots go to the front of the line, so ids come here in
    /// increasing order and the list stays sorted (see [`State::take_grant`]). At most as
    /// many as the capacity, and rarely more than one or two.
    granted: VecDeque<u64>,
    /// The receiver's waker while it waits.
    receiver_waker: Option<Waker>,
    /// Strong senders: the channel is open while there is one. Once it reaches 0 it stays
    /// there, as a [`WeakSender`] upgrades only while it is above 0 (under this lock).
    senders: usize,
    /// [`WeakSender`]s, which do not keep the channel open.
    weak_senders: usize,
    /// The receiver was closed or dropped: new sends fail; slots reserved before still take
    /// their values, unless the receiver was dropped.
    closed: bool,
    /// The receiver was dropped: nothing will be read any more.
    receiver_gone: bool,
    /// Senders waiting in [`Sender::closed`].
    closed_waiters: WaitList,
}

impl<T> State<T> {
    /// Values that could be sent now without waiting.
    fn free_slots(&self) -> usize {
        self.capacity
            .saturating_sub(self.queue.len() + self.reserved)
    }

    /// No value can come any more: every sender is gone, or the receiver closed and no slot
    /// reserved before that is still unfilled.
    fn is_over(&self) -> bool {
        self.senders == 0 || (self.closed && self.reserved == 0)
    }

    /// Queues `value`, returning the receiver's waker to call after the unlock.
    fn push(&mut self, value: T) -> Option<Waker> {
        self.queue.push_back(value);
        self.receiver_waker.take()
    }

    /// Fills a reserved slot with `value`. If the receiver is gone the value comes back, to
    /// be dropped (or returned) after the unlock.
    fn fill_reserved(&mut self, value: T) -> (Option<Waker>, Option<T>) {
        self.reserved -= 1;
        if self.receiver_gone {
            (None, Some(value))
        } else {
            (self.push(value), None)
        }
    }

    /// A reserved slot is given back unused: it goes to the next waiting send, or, after a
    /// close, the last one lets the waiting receiver see the end. Returns the waker to call
    /// after the unlock.
    fn release_reserved(&mut self) -> Option<Waker> {
        self.reserved -= 1;
        if self.closed {
            if self.reserved == 0 {
                return self.receiver_waker.take();
            }
            return None;
        }
        self.grant_next()
    }

    /// A slot came free: if a send waits, the slot is reserved for the first one, which is
    /// taken out of the line and whose waker is returned, to be called after the unlock.
    /// Exactly one sender is woken per slot.
    fn grant_next(&mut self) -> Option<Waker> {
        if self.closed || self.free_slots() == 0 {
            return None;
        }
        let (id, waker) = self.send_waiters.pop_front()?;
        self.reserved += 1;
        self.granted.push_back(id);
        Some(waker)
    }

    /// Whether the wait `id` was granted a slot, taking it off the granted list if so (the
    /// slot stays counted in `reserved`, for the caller to fill or release). A binary
    /// search; granted waits are usually polled in the order they were woken, so the one
    /// taken is usually the first and the removal costs nothing.
    fn take_grant(&mut self, id: u64) -> bool {
        match self.granted.binary_search(&id) {
            Ok(at) => {
                self.granted.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    /// Takes the next value; the slot it frees goes to the next waiting send, whose waker
    /// comes back too.
    fn pop(&mut self) -> Option<(T, Option<Waker>)> {
        let v = self.queue.pop_front()?;
        if self.queue.is_empty() {
            // A burst's memory goes back once it is read, but a steady flow does not
            // reallocate all the time.
            let keep = KEEP_WHEN_EMPTY / std::mem::size_of::<T>().max(1);
            if self.queue.capacity() > keep {
                self.queue.shrink_to(keep);
            }
        }
        Some((v, self.grant_next()))
    }

    /// Closes the channel for new sends. Returns the wakers of every waiting send (they
    /// will fail) and of every [`Sender::closed`] wait, to be called after the unlock.
    fn close(&mut self) -> Vec<Waker> {
        self.closed = true;
        let mut wakers = self.send_waiters.take_all();
        wakers.extend(self.closed_waiters.take_all());
        wakers
    }
}

/// What a drained queue keeps of its buffer, in bytes.
const KEEP_WHEN_EMPTY: usize = 64 * 1024;

/// Tasks or threads waiting, each under an id its future keeps, in arrival order.
///
/// Ids are handed out in increasing order and only ever pushed at the back, so the line
/// stays sorted by id: finding a wait (to update its waker when it is polled again, or to
/// take it out when it is dropped) is a binary search, and N waits polled again cost
/// O(N log N), not O(N²).
#[derive(Default)]
struct WaitList {
    next_id: u64,
    line: VecDeque<(u64, Waker)>,
}

impl WaitList {
    /// Where the wait `id` stands in the line, if it is there.
    fn find(&self, id: u64) -> Option<usize> {
        self.line.binary_search_by_key(&id, |&(i, _)| i).ok()
    }

    /// Puts the wait `id` in line with `waker`, or updates its waker if it is in line
    /// already. A wait not in line (`None`, or an id no longer there) joins at the back
    /// under a fresh id, which `id` then holds, so the line stays sorted. Returns a
    /// replaced waker, to be dropped after the unlock (its drop is user code).
    #[must_use]
    fn register(&mut self, id: &mut Option<u64>, waker: &Waker) -> Option<Waker> {
        if let Some(at) = id.and_then(|id| self.find(id)) {
            let (_, w) = &mut self.line[at];
            if w.will_wake(waker) {
                return None;
            }
            return Some(std::mem::replace(w, waker.clone()));
        }
        self.next_id += 1;
        *id = Some(self.next_id);
        self.line.push_back((self.next_id, waker.clone()));
        None
    }

    /// Takes the wait `id` out of the line, if it is there; its waker comes back, to be
    /// dropped after the unlock.
    #[must_use]
    fn remove(&mut self, id: u64) -> Option<Waker> {
        let at = self.find(id)?;
        self.line.remove(at).map(|(_, w)| w)
    }

    fn pop_front(&mut self) -> Option<(u64, Waker)> {
        self.line.pop_front()
    }

    fn take_all(&mut self) -> Vec<Waker> {
        self.line.drain(..).map(|(_, w)| w).collect()
    }
}

/// A bounded channel: at most `capacity` values wait in it (counting the slots reserved by
/// [`Permit`]s); a sender finding it full waits for room.
///
/// # Panics
/// If `capacity` is 0.
///
/// ```
/// use overlap::sync::mpsc::cross_thread;
///
/// let (tx, mut rx) = cross_thread::channel(8);
/// let threads: Vec<_> = (0..4u32)
///     .map(|t| {
///         let tx = tx.clone();
///         std::thread::spawn(move || tx.blocking_send(t).unwrap())
///     })
///     .collect();
/// drop(tx);
/// let mut got = Vec::new();
/// while let Some(v) = rx.blocking_recv() {
///     got.push(v);
/// }
/// threads.into_iter().for_each(|t| t.join().unwrap());
/// got.sort();
/// assert_eq!(got, [0, 1, 2, 3]);
/// ```
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    assert!(
        capacity > 0,
        "cross_thread::channel capacity must be at least 1"
    );
    let (tx, rx) = with_capacity(capacity);
    (Sender::new(tx), Receiver::new(rx))
}

/// An unbounded channel: sends never wait (the queue grows as needed), so
/// [`UnboundedSender::send`] is a plain function, callable from any thread and any
/// synchronous code. Once the receiver has read a burst to the end, the queue gives its
/// memory back, keeping about 64 KiB for the next values.
///
/// ```
/// use overlap::sync::mpsc::cross_thread;
///
/// overlap::block_on(async {
///     let (tx, mut rx) = cross_thread::unbounded_channel();
///     std::thread::spawn(move || {
///         for i in 0..3 {
///             tx.send(i).unwrap();
///         }
///     });
///     let mut got = Vec::new();
///     while let Some(v) = rx.recv().await {
///         got.push(v);
///     }
///     assert_eq!(got, [0, 1, 2]);
/// });
/// ```
pub fn unbounded_channel<T>() -> (UnboundedSender<T>, UnboundedReceiver<T>) {
    let (tx, rx) = with_capacity(usize::MAX);
    (UnboundedSender(Sender::new(tx)), Receiver::new(rx))
}

fn with_capacity<T>(capacity: usize) -> (Arc<Chan<T>>, Arc<Chan<T>>) {
    let chan = Arc::new(Chan {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            capacity,
            reserved: 0,
            send_waiters: WaitList::default(),
            granted: VecDeque::new(),
            receiver_waker: None,
            senders: 1,
            weak_senders: 0,
            closed: false,
            receiver_gone: false,
            closed_waiters: WaitList::default(),
        }),
    });
    (chan.clone(), chan)
}

/// Runs `future` to completion on this thread, parking it while the future waits: the body
/// of the `blocking_*` calls.
///
/// # Panics
/// On a thread running a runtime's `block_on`, where blocking would stop that runtime's loop
/// (and the task the future waits for might be one it should run).
#[track_caller]
fn block<F: Future>(call: &str, instead: &str, future: F) -> F::Output {
    if crate::executor::in_driving_block_on() {
        panic!(
            "overlap::sync::mpsc::cross_thread::{call} called on a thread running a runtime's \
             `block_on`: blocking it would stop that runtime's loop; use `{instead}` instead, \
             or call it from `spawn_blocking` or another thread"
        );
    }
    crate::executor::park_until_ready(future)
}
