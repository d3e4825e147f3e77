//! A value that changes, and receivers that wait for it to change: configuration, state,
//! a shutdown flag.

use std::cell::{Cell, Ref, RefCell};
use std::fmt;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::Poll;

use super::waiters::{Slot, Watchers};

struct Shared<T> {
    value: RefCell<T>,
    /// Bumped by every send.
    version: Cell<u64>,
    /// One slot per receiver.
    watchers: Watchers,
    /// The senders waiting in [`Sender::closed`] for the last receiver to go.
    closers: Watchers,
    receivers: Cell<usize>,
    senders: Cell<usize>,
}

impl<T> Shared<T> {
    /// Every sender is gone: no change will come any more.
    fn closed(&self) -> bool {
        self.senders.get() == 0
    }
}

/// Sets the value; cloning makes another sender, and the receivers hear that the channel
/// closed only when the last one is dropped. See [`channel`].
pub struct Sender<T> {
    shared: Rc<Shared<T>>,
}

/// Reads the latest value and waits for the next change; cloning makes another receiver
/// that has seen what this one has. See [`channel`].
pub struct Receiver<T> {
    shared: Rc<Shared<T>>,
    seen: u64,
    slot: Rc<Slot>,
}

/// Every receiver is gone; the value comes back (the same type as `mpsc`'s).
pub use super::mpsc::SendError;

/// The error types at tokio's paths (`watch::error::{RecvError, SendError}`); the same as at
/// this module's root.
pub mod error {
    pub use super::{RecvError, SendError};
}

/// Every sender is gone: no change will come any more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecvError;

/// A watch channel holding `init`: the [`Sender`] replaces the value, every [`Receiver`]
/// reads the latest one and can wait for the next change. Changes are not queued: a
/// receiver that looks after two sends sees only the second.
///
/// The value lives in a `RefCell`: a [`borrow`](Receiver::borrow) held while the sender
/// sends makes the send panic, so keep borrows short (never across an `.await`).
///
/// ```
/// use overlap::sync::watch;
///
/// overlap::block_on(async {
///     let (config, mut rx) = watch::channel("v1");
///     let reader = overlap::spawn(async move {
///         rx.changed().await.unwrap();
///         *rx.borrow_and_update()
///     });
///     overlap::yield_now().await;
///     config.send("v2").unwrap();
///     assert_eq!(reader.await.unwrap(), "v2");
/// });
/// ```
pub fn channel<T>(init: T) -> (Sender<T>, Receiver<T>) {
    let tx = Sender::new(init);
    let rx = tx.subscribe();
    (tx, rx)
}

impl<T> Sender<T> {
    /// A sender of a new channel holding `init`, with no receiver yet:
    /// [`subscribe`](Sender::subscribe) makes them (until then, [`send`](Sender::send)
    /// fails, while [`send_replace`](Sender::send_replace) still sets the value). Otherwise
    /// as [`channel`], which is this plus one `subscribe`.
    ///
    /// ```
    /// use overlap::sync::watch;
    ///
    /// let state = watch::Sender::new("starting");
    /// assert!(state.send("nobody looks").is_err());
    /// let rx = state.subscribe();
    /// state.send("ready").unwrap();
    /// assert_eq!(*rx.borrow(), "ready");
    /// ```
    pub fn new(init: T) -> Sender<T> {
        let shared = Rc::new(Shared {
            value: RefCell::new(init),
            version: Cell::new(0),
            watchers: Watchers::default(),
            closers: Watchers::default(),
            receivers: Cell::new(0),
            senders: Cell::new(1),
        });
        Sender { shared }
    }

    /// Replaces the value and wakes every receiver waiting for a change. Fails, giving the
    /// value back, when no receiver is left.
    ///
    /// # Panics
    /// If a borrow of the value is held (see [`channel`]).
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        if self.shared.receivers.get() == 0 {
            return Err(SendError(value));
        }
        drop(self.send_replace(value));
        Ok(())
    }

    /// Replaces the value whether or not anyone receives, and returns the old one.
    ///
    /// # Panics
    /// As [`send`](Sender::send).
    pub fn send_replace(&self, value: T) -> T {
        let old = self.shared.value.replace(value);
        self.changed();
        old
    }

    /// Changes the value in place and wakes every receiver waiting for a change.
    ///
    /// # Panics
    /// As [`send`](Sender::send).
    pub fn send_modify(&self, modify: impl FnOnce(&mut T)) {
        modify(&mut self.shared.value.borrow_mut());
        self.changed();
    }

    /// Calls `modify` on the value in place; if it returns `true` (it changed something
    /// receivers should hear about), wakes every receiver waiting for a change, as
    /// [`send_modify`](Sender::send_modify) does. Returns what `modify` returned.
    ///
    /// # Panics
    /// As [`send`](Sender::send).
    ///
    /// ```
    /// use overlap::sync::watch;
    ///
    /// let (tx, mut rx) = watch::channel(vec![1, 2]);
    /// // A change receivers need not hear about: they are not told.
    /// let told = tx.send_if_modified(|v| {
    ///     v.shrink_to_fit();
    ///     false
    /// });
    /// assert!(!told);
    /// assert!(!rx.has_changed().unwrap());
    /// tx.send_if_modified(|v| {
    ///     v.push(3);
    ///     true
    /// });
    /// assert!(rx.has_changed().unwrap());
    /// assert_eq!(*rx.borrow_and_update(), [1, 2, 3]);
    /// ```
    pub fn send_if_modified(&self, modify: impl FnOnce(&mut T) -> bool) -> bool {
        let modified = modify(&mut self.shared.value.borrow_mut());
        if modified {
            self.changed();
        }
        modified
    }

    fn changed(&self) {
        self.shared.version.set(self.shared.version.get() + 1);
        self.shared.watchers.wake_all();
    }

    /// The current value.
    pub fn borrow(&self) -> Ref<'_, T> {
        self.shared.value.borrow()
    }

    /// A new receiver, which has seen the current value.
    pub fn subscribe(&self) -> Receiver<T> {
        Receiver::new(self.shared.clone(), self.shared.version.get())
    }

    /// How many receivers there are.
    pub fn receiver_count(&self) -> usize {
        self.shared.receivers.get()
    }

    /// How many senders there are (this one and its clones).
    pub fn sender_count(&self) -> usize {
        self.shared.senders.get()
    }

    /// Whether both senders belong to the same channel.
    ///
    /// ```
    /// use overlap::sync::watch;
    ///
    /// let (tx, _rx) = watch::channel(0);
    /// let (other, _other_rx) = watch::channel(0);
    /// assert!(tx.same_channel(&tx.clone()));
    /// assert!(!tx.same_channel(&other));
    /// ```
    pub fn same_channel(&self, other: &Sender<T>) -> bool {
        Rc::ptr_eq(&self.shared, &other.shared)
    }

    /// Whether every receiver is gone.
    pub fn is_closed(&self) -> bool {
        self.receiver_count() == 0
    }

    /// Waits until no receiver is left (at once if there is none now): for a producer to
    /// stop when nobody watches any more. Each sender (clone) may wait; the last receiver's
    /// drop wakes them all. A receiver subscribed after that is not waited for by a call
    /// that has completed, but a later call waits for it. Cancel-safe: dropping the future
    /// only stops the wait.
    ///
    /// ```
    /// use overlap::sync::watch;
    ///
    /// overlap::block_on(async {
    ///     let (tx, rx) = watch::channel(0u32);
    ///     let producer = overlap::spawn(async move {
    ///         tx.closed().await;
    ///         tx.is_closed()
    ///     });
    ///     overlap::yield_now().await;
    ///     drop(rx);
    ///     assert!(producer.await.unwrap());
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

/// Another sender of the same channel. The receivers see the channel closed (`changed`
/// fails) only once every sender is dropped.
///
/// ```
/// use overlap::sync::watch;
///
/// overlap::block_on(async {
///     let (tx, mut rx) = watch::channel(0);
///     let tx2 = tx.clone();
///     drop(tx);
///     tx2.send(1).unwrap();
///     assert!(rx.changed().await.is_ok());
///     drop(tx2);
///     assert!(rx.changed().await.is_err());
/// });
/// ```
impl<T> Clone for Sender<T> {
    fn clone(&self) -> Sender<T> {
        self.shared.senders.set(self.shared.senders.get() + 1);
        Sender {
            shared: self.shared.clone(),
        }
    }
}

impl<T: Default> Default for Sender<T> {
    /// [`Sender::new`] with `T::default()`: a sender with no receiver yet, as tokio's.
    fn default() -> Sender<T> {
        Sender::new(T::default())
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
    fn new(shared: Rc<Shared<T>>, seen: u64) -> Receiver<T> {
        let slot = shared.watchers.add();
        shared.receivers.set(shared.receivers.get() + 1);
        Receiver { shared, seen, slot }
    }

    /// Whether both receivers belong to the same channel.
    ///
    /// ```
    /// use overlap::sync::watch;
    ///
    /// let (tx, rx) = watch::channel(0);
    /// let (_other_tx, other) = watch::channel(0);
    /// assert!(rx.same_channel(&tx.subscribe()));
    /// assert!(!rx.same_channel(&other));
    /// ```
    pub fn same_channel(&self, other: &Receiver<T>) -> bool {
        Rc::ptr_eq(&self.shared, &other.shared)
    }

    /// The current value, without marking it seen.
    pub fn borrow(&self) -> Ref<'_, T> {
        self.shared.value.borrow()
    }

    /// The current value, marking it seen: [`changed`](Receiver::changed) then waits for
    /// the next send.
    pub fn borrow_and_update(&mut self) -> Ref<'_, T> {
        self.mark_unchanged();
        self.shared.value.borrow()
    }

    /// Whether a value was sent since this receiver last marked one seen (or it was
    /// [marked changed](Receiver::mark_changed)). Fails once every sender is gone, even if
    /// a last value is still unseen (as tokio's does): [`changed`](Receiver::changed) still
    /// reports that value once before it fails.
    ///
    /// ```
    /// use overlap::sync::watch;
    ///
    /// overlap::block_on(async {
    ///     let (tx, mut rx) = watch::channel(1);
    ///     tx.send(2).unwrap();
    ///     assert_eq!(rx.has_changed(), Ok(true));
    ///     drop(tx);
    ///     assert_eq!(rx.has_changed(), Err(watch::RecvError));
    ///     assert_eq!(rx.changed().await, Ok(()));
    ///     assert_eq!(*rx.borrow(), 2);
    ///     assert_eq!(rx.changed().await, Err(watch::RecvError));
    /// });
    /// ```
    pub fn has_changed(&self) -> Result<bool, RecvError> {
        if self.shared.closed() {
            return Err(RecvError);
        }
        Ok(self.shared.version.get() != self.seen)
    }

    /// Marks the current value unseen: [`has_changed`](Receiver::has_changed) is then
    /// true (while a sender is left) and [`changed`](Receiver::changed) completes at once
    /// (even once every sender is gone), as if the value had just been sent. For a receiver
    /// to handle the value it starts with as its first change. Only this receiver is
    /// affected.
    ///
    /// ```
    /// use overlap::sync::watch;
    ///
    /// overlap::block_on(async {
    ///     let (_tx, mut rx) = watch::channel("initial");
    ///     rx.mark_changed();
    ///     assert!(rx.has_changed().unwrap());
    ///     rx.changed().await.unwrap(); // at once
    ///     assert_eq!(*rx.borrow(), "initial");
    /// });
    /// ```
    pub fn mark_changed(&mut self) {
        // Versions only grow, so one below the current is never current again (short of
        // 2^64 sends).
        self.seen = self.shared.version.get().wrapping_sub(1);
    }

    /// Marks the current value seen, without reading it: [`changed`](Receiver::changed)
    /// then waits for the next send. For a receiver that only cares about changes from now
    /// on.
    ///
    /// ```
    /// use overlap::sync::watch;
    ///
    /// let (tx, mut rx) = watch::channel(0);
    /// tx.send(1).unwrap();
    /// assert!(rx.has_changed().unwrap());
    /// rx.mark_unchanged();
    /// assert!(!rx.has_changed().unwrap());
    /// assert_eq!(*rx.borrow(), 1);
    /// ```
    pub fn mark_unchanged(&mut self) {
        self.seen = self.shared.version.get();
    }

    /// Waits until a value is sent that this receiver has not seen, and marks it seen; read
    /// it with [`borrow`](Receiver::borrow). Fails once every sender is gone (after any
    /// last change was reported). Cancel-safe.
    pub async fn changed(&mut self) -> Result<(), RecvError> {
        poll_fn(|cx| crate::coop::budgeted(cx, |cx| self.poll_changed(cx))).await
    }

    pub(crate) fn poll_changed(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Result<(), RecvError>> {
        let version = self.shared.version.get();
        if version != self.seen {
            self.seen = version;
            return Poll::Ready(Ok(()));
        }
        if self.shared.closed() {
            return Poll::Ready(Err(RecvError));
        }
        drop(self.slot.register(cx.waker()));
        Poll::Pending
    }
}

impl<T> Receiver<T> {
    /// Waits until the value satisfies `condition`, looking at the current value first,
    /// then at each change; returns the value that did (marked seen). Fails if every
    /// sender goes away before a value satisfies it. Cancel-safe.
    ///
    /// ```
    /// use overlap::sync::watch;
    ///
    /// overlap::block_on(async {
    ///     let (progress, mut rx) = watch::channel(0u32);
    ///     overlap::spawn(async move {
    ///         for p in 1..=10 {
    ///             progress.send(p).unwrap();
    ///             overlap::yield_now().await;
    ///         }
    ///     });
    ///     assert!(*rx.wait_for(|p| *p >= 5).await.unwrap() >= 5);
    /// });
    /// ```
    pub async fn wait_for(
        &mut self,
        mut condition: impl FnMut(&T) -> bool,
    ) -> Result<Ref<'_, T>, RecvError> {
        // One unit of the budget per value returned (given back when it waits), as `changed`
        // spends: a loop whose condition already holds still yields now and then.
        poll_fn(|cx| {
            crate::coop::budgeted(cx, |cx| loop {
                self.mark_unchanged();
                if condition(&self.shared.value.borrow()) {
                    return Poll::Ready(Ok(()));
                }
                match self.poll_changed(cx) {
                    // A newer value came, marked seen by `poll_changed`: look at it.
                    Poll::Ready(Ok(())) => continue,
                    closed_or_pending => return closed_or_pending,
                }
            })
        })
        .await?;
        Ok(self.shared.value.borrow())
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Receiver<T> {
        Receiver::new(self.shared.clone(), self.seen)
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        // Its slot dies with it; the watcher list prunes the dead entry.
        let left = self.shared.receivers.get() - 1;
        self.shared.receivers.set(left);
        if left == 0 {
            self.shared.closers.wake_all();
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("watch::Sender")
            .field("value", &self.shared.value.try_borrow().ok())
            .field("receivers", &self.receiver_count())
            .finish()
    }
}

impl<T: fmt::Debug> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("watch::Receiver")
            .field("value", &self.shared.value.try_borrow().ok())
            .field("changed", &(self.shared.version.get() != self.seen))
            .finish()
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("every watch sender is gone")
    }
}

impl std::error::Error for RecvError {}
