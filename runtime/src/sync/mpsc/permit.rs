//! Reserved slots: `Permit` (borrows its sender) and `OwnedPermit` (owns one), both
//! filled and given back by the same two functions.

use std::fmt;

#[cfg(doc)]
use super::Receiver;
use super::{push, Sender};
use crate::sync::waiters::{wake, wake_all};

/// Puts `value` in the slot reserved for it: also after the receiver closed (it drains
/// reserved slots), but not once it was dropped (then the value is dropped, and the slot
/// is free again).
pub(super) fn fill_reserved<T>(sender: &Sender<T>, value: T) {
    let mut chan = sender.chan.borrow_mut();
    chan.reserved -= 1;
    if chan.receiver_gone {
        drop(chan);
        drop(value);
        return;
    }
    push(chan, value);
}

/// Gives `n` unfilled reserved slots back: to the waiting senders they are enough for, or,
/// after the receiver closed, towards the end of the channel (the last one lets `recv`
/// return `None`).
pub(super) fn release_reserved<T>(sender: &Sender<T>, n: usize) {
    let mut chan = sender.chan.borrow_mut();
    if n == 0 {
        return;
    }
    if chan.receiver_gone {
        // Nobody waits for the slots any more, but they are free again: the capacity
        // counts them (as `cross_thread`'s does).
        chan.reserved -= n;
        return;
    }
    if chan.closed {
        let last = chan.release_after_close(n);
        drop(chan);
        wake(last);
    } else if n == 1 {
        chan.reserved -= 1;
        let next = chan.grant_next();
        drop(chan);
        wake(next);
    } else {
        chan.reserved -= n;
        let next = chan.grant_all();
        drop(chan);
        wake_all(next);
    }
}

/// A slot in a bounded channel, reserved by [`Sender::reserve`] or [`Sender::try_reserve`]:
/// [`send`](Permit::send) fills it without waiting. Dropping an unused permit gives the
/// slot back (to the next waiting sender, if any).
#[must_use = "an unused permit holds a slot until it is dropped"]
pub struct Permit<'a, T> {
    /// `None` once used.
    pub(super) sender: Option<&'a Sender<T>>,
}

impl<T> Permit<'_, T> {
    /// Queues `value` in the reserved slot and wakes the receiver. A receiver that closed
    /// since the slot was reserved still gets it; if the receiver was dropped, `value` is
    /// dropped.
    pub fn send(mut self, value: T) {
        if let Some(sender) = self.sender.take() {
            fill_reserved(sender, value);
        }
    }

    /// Whether both permits hold slots of the same channel.
    pub fn same_channel(&self, other: &Permit<'_, T>) -> bool {
        other
            .sender
            .is_some_and(|other| self.same_channel_as_sender(other))
    }

    /// Whether this permit holds a slot of `sender`'s channel.
    pub fn same_channel_as_sender(&self, sender: &Sender<T>) -> bool {
        self.sender.is_some_and(|s| s.same_channel(sender))
    }

    /// Keeps the slot reserved when this permit goes: its owner now answers for it.
    pub(super) fn keep_slot(mut self) {
        self.sender = None;
    }
}

impl<T> Drop for Permit<'_, T> {
    fn drop(&mut self) {
        if let Some(sender) = self.sender.take() {
            release_reserved(sender, 1);
        }
    }
}

/// A slot in a bounded channel that owns the [`Sender`] it was reserved with, from
/// [`Sender::reserve_owned`] or [`Sender::try_reserve_owned`]: it can be moved into another
/// task and kept as long as needed. [`send`](OwnedPermit::send) fills the slot without
/// waiting, [`release`](OwnedPermit::release) gives it back unused; both return the sender.
///
/// Dropping an unused permit gives its slot back (to the next waiting sender, if any) and
/// drops its sender. While the permit lives, so does that sender: the [`Receiver`] does not
/// see the channel end because every other sender is gone.
///
/// ```
/// use overlap::sync::mpsc;
///
/// overlap::block_on(async {
///     let (tx, mut rx) = mpsc::channel(1);
///     let permit = tx.reserve_owned().await.unwrap();
///     // The permit lives on in a task of its own; it holds the only slot.
///     let task = overlap::spawn(async move {
///         let tx = permit.send("reserved");
///         tx.send("after").await.unwrap();
///     });
///     assert_eq!(rx.recv().await, Some("reserved"));
///     assert_eq!(rx.recv().await, Some("after"));
///     task.await.unwrap();
///     assert_eq!(rx.recv().await, None, "the sender went with the task");
/// });
/// ```
#[must_use = "an unused permit holds a slot until it is dropped"]
pub struct OwnedPermit<T> {
    /// `None` only while `send` or `release` hands the sender back.
    pub(super) sender: Option<Sender<T>>,
}

impl<T> OwnedPermit<T> {
    /// Queues `value` in the reserved slot, wakes the receiver and returns the sender. A
    /// receiver that closed since the slot was reserved still gets it; if the receiver was
    /// dropped, `value` is dropped.
    pub fn send(mut self, value: T) -> Sender<T> {
        let sender = self.take_sender();
        fill_reserved(&sender, value);
        sender
    }

    /// Gives the slot back unused, as dropping the permit does, but keeps the sender.
    ///
    /// ```
    /// use overlap::sync::mpsc;
    ///
    /// overlap::block_on(async {
    ///     let (tx, _rx) = mpsc::channel::<u8>(1);
    ///     let permit = tx.clone().reserve_owned().await.unwrap();
    ///     assert!(tx.try_send(1).is_err(), "the permit holds the only slot");
    ///     let tx2 = permit.release();
    ///     assert!(tx2.try_send(2).is_ok());
    /// });
    /// ```
    pub fn release(mut self) -> Sender<T> {
        let sender = self.take_sender();
        release_reserved(&sender, 1);
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

impl<T> Drop for OwnedPermit<T> {
    fn drop(&mut self) {
        // The slot goes back first; then the sender, whose drop may end the channel.
        if let Some(sender) = self.sender.take() {
            release_reserved(&sender, 1);
        }
    }
}

impl<T> fmt::Debug for Permit<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("used", &self.sender.is_none())
            .finish()
    }
}

impl<T> fmt::Debug for OwnedPermit<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedPermit")
            .field("used", &self.sender.is_none())
            .finish()
    }
}
