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
    receivers: Cell<usize>,
    sender_gone: Cell<bool>,
}

/// Sets the value; see [`channel`].
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

/// The sender is gone: no change will come any more.
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
    let shared = Rc::new(Shared {
        value: RefCell::new(init),
        version: Cell::new(0),
        watchers: Watchers::default(),
        receivers: Cell::new(0),
        sender_gone: Cell::new(false),
    });
    let rx = Receiver::new(shared.clone(), 0);
    (Sender { shared }, rx)
}

impl<T> Sender<T> {
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

    /// Whether every receiver is gone.
    pub fn is_closed(&self) -> bool {
        self.receiver_count() == 0
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.shared.sender_gone.set(true);
        self.shared.watchers.wake_all();
    }
}

impl<T> Receiver<T> {
    fn new(shared: Rc<Shared<T>>, seen: u64) -> Receiver<T> {
        let slot = shared.watchers.add();
        shared.receivers.set(shared.receivers.get() + 1);
        Receiver { shared, seen, slot }
    }

    /// The current value, without marking it seen.
    pub fn borrow(&self) -> Ref<'_, T> {
        self.shared.value.borrow()
    }

    /// The current value, marking it seen: [`changed`](Receiver::changed) then waits for
    /// the next send.
    pub fn borrow_and_update(&mut self) -> Ref<'_, T> {
        self.seen = self.shared.version.get();
        self.shared.value.borrow()
    }

    /// Whether a value was sent since this receiver last marked one seen. Fails once the
    /// sender is gone and nothing new is left.
    pub fn has_changed(&self) -> Result<bool, RecvError> {
        let changed = self.shared.version.get() != self.seen;
        if !changed && self.shared.sender_gone.get() {
            return Err(RecvError);
        }
        Ok(changed)
    }

    /// Waits until a value is sent that this receiver has not seen, and marks it seen; read
    /// it with [`borrow`](Receiver::borrow). Fails once the sender is gone (after any last
    /// change was reported). Cancel-safe.
    pub async fn changed(&mut self) -> Result<(), RecvError> {
        poll_fn(|cx| crate::coop::budgeted(cx, |cx| self.poll_changed(cx))).await
    }

    fn poll_changed(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Result<(), RecvError>> {
        let version = self.shared.version.get();
        if version != self.seen {
            self.seen = version;
            return Poll::Ready(Ok(()));
        }
        if self.shared.sender_gone.get() {
            return Poll::Ready(Err(RecvError));
        }
        drop(self.slot.register(cx.waker()));
        Poll::Pending
    }
}

impl<T> Receiver<T> {
    /// Waits until the value satisfies `condition`, looking at the current value first,
    /// then at each change; returns the value that did (marked seen). Fails if the sender
    /// goes away before a value satisfies it. Cancel-safe.
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
        loop {
            self.seen = self.shared.version.get();
            if condition(&self.shared.value.borrow()) {
                return Ok(self.shared.value.borrow());
            }
            self.changed().await?;
        }
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
        self.shared.receivers.set(self.shared.receivers.get() - 1);
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
        f.write_str("the watch sender is gone")
    }
}

impl std::error::Error for RecvError {}
