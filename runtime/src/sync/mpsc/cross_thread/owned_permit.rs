//! [`OwnedPermit`]: a reserved slot that owns its [`Sender`], from
//! [`Sender::reserve_owned`] and [`Sender::try_reserve_owned`].

use std::fmt;

use super::super::error::{SendError, TrySendError};
use super::{Permit, Sender};
use crate::sync::waiters::wake;

impl<T> Sender<T> {
    /// [`reserve`](Sender::reserve), by a permit that owns this sender instead of borrowing
    /// it: the permit can move into another task or thread, and hands the sender back when
    /// used (see [`OwnedPermit`]). Fails if the receiver is gone (this sender is then
    /// dropped). What tokio-util's `PollSender` is built on.
    ///
    /// Cancel-safe as `reserve` is: dropped before it completes, it reserved nothing (and
    /// drops this sender).
    ///
    /// ```
    /// use overlap::sync::mpsc::cross_thread;
    ///
    /// overlap::block_on(async {
    ///     let (tx, mut rx) = cross_thread::channel(1);
    ///     let permit = tx.reserve_owned().await.unwrap();
    ///     // The permit, which holds the only slot, moves to another thread.
    ///     let tx = std::thread::spawn(move || permit.send("reserved")).join().unwrap();
    ///     assert_eq!(rx.recv().await, Some("reserved"));
    ///     tx.send("after").await.unwrap();
    ///     assert_eq!(rx.recv().await, Some("after"));
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
    /// use overlap::sync::mpsc::cross_thread;
    /// use overlap::sync::mpsc::TrySendError;
    ///
    /// let (tx, _rx) = cross_thread::channel::<u8>(1);
    /// let permit = tx.clone().try_reserve_owned().unwrap();
    /// let Err(TrySendError::Full(tx)) = tx.try_reserve_owned() else {
    ///     panic!("the permit holds the only slot");
    /// };
    /// drop(permit);
    /// assert!(tx.try_reserve_owned().is_ok());
    /// ```
    pub fn try_reserve_owned(self) -> Result<OwnedPermit<T>, TrySendError<Sender<T>>> {
        let reserved = self.try_reserve().map(Permit::keep_slot);
        match reserved {
            Ok(()) => Ok(OwnedPermit { sender: Some(self) }),
            Err(e) => Err(e.with(self)),
        }
    }
}

/// A slot in a bounded cross-thread channel that owns the [`Sender`] it was reserved with,
/// from [`Sender::reserve_owned`] or [`Sender::try_reserve_owned`]: it can be moved into
/// another task or thread and kept as long as needed. [`send`](OwnedPermit::send) fills the
/// slot without waiting, [`release`](OwnedPermit::release) gives it back unused; both
/// return the sender.
///
/// Dropping an unused permit gives its slot back (to the next waiting sender, if any) and
/// drops its sender. While the permit lives, so does that sender: the
/// [`Receiver`](super::Receiver) does not see the channel end because every other sender
/// is gone.
///
/// ```
/// use overlap::sync::mpsc::cross_thread;
///
/// let (tx, mut rx) = cross_thread::channel::<u8>(1);
/// let permit = tx.try_reserve_owned().unwrap();
/// drop(permit); // the slot back, and the only sender gone
/// assert_eq!(rx.blocking_recv(), None);
/// ```
#[must_use = "an unused permit holds a slot until it is dropped"]
pub struct OwnedPermit<T> {
    /// `None` only while `send` or `release` hands the sender back.
    sender: Option<Sender<T>>,
}

impl<T> OwnedPermit<T> {
    /// Queues `value` in the reserved slot, wakes the receiver and returns the sender. A
    /// receiver that closed since the slot was reserved still gets it; if the receiver was
    /// dropped, `value` is dropped.
    pub fn send(mut self, value: T) -> Sender<T> {
        let sender = self.take_sender();
        let (waker, back) = sender.chan.lock().fill_reserved(value);
        wake(waker);
        drop(back);
        sender
    }

    /// Gives the slot back unused, as dropping the permit does, but keeps the sender.
    ///
    /// ```
    /// use overlap::sync::mpsc::cross_thread;
    ///
    /// let (tx, _rx) = cross_thread::channel::<u8>(1);
    /// let permit = tx.clone().try_reserve_owned().unwrap();
    /// assert!(tx.try_send(1).is_err(), "the permit holds the only slot");
    /// let tx2 = permit.release();
    /// assert!(tx2.try_send(2).is_ok());
    /// ```
    pub fn release(mut self) -> Sender<T> {
        let sender = self.take_sender();
        release_slot(&sender);
        sender
    }

    /// Whether both permits hold slots of the same channel.
    pub fn same_channel(&self, other: &OwnedPermit<T>) -> bool {
        other
            .sender
            .as_ref()
            .is_some_and(|other| self.same_channel_as_sender(other))
    }

    /// Whether this permit holds a slot of `sender`'s channel.
    pub fn same_channel_as_sender(&self, sender: &Sender<T>) -> bool {
        self.sender.as_ref().is_some_and(|s| s.same_channel(sender))
    }

    fn take_sender(&mut self) -> Sender<T> {
        self.sender
            .take()
            .expect("an OwnedPermit has its sender until it is used")
    }
}

/// Gives one reserved slot of `sender`'s channel back, waking the next waiting sender.
fn release_slot<T>(sender: &Sender<T>) {
    let waker = sender.chan.lock().release_reserved();
    wake(waker);
}

impl<T> Drop for OwnedPermit<T> {
    fn drop(&mut self) {
        // The slot goes back first; then the sender, whose drop may end the channel.
        if let Some(sender) = self.sender.take() {
            release_slot(&sender);
        }
    }
}

impl<T> fmt::Debug for OwnedPermit<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("cross_thread::OwnedPermit")
            .field("used", &self.sender.is_none())
            .finish()
    }
}
