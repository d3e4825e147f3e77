//! Reserving several slots at once: `Sender::reserve_many`, `Sender::try_reserve_many` and
//! the `PermitIterator` they give.

use std::fmt;
use std::iter::FusedIterator;

use super::permit::release_reserved;
use super::sender::SlotWait;
use super::{Permit, SendError, Sender, TrySendError};

impl<T> Sender<T> {
    /// Waits until `n` slots are free together, reserves them all, and returns them as a
    /// [`PermitIterator`] of `n` [`Permit`]s: for a batch that must go in whole, or not
    /// start. Waiting senders are served in order, so a large batch is not overtaken by
    /// later single sends; it holds back the senders behind it until its `n` slots are free.
    ///
    /// Fails if the receiver is gone, or if `n` is above the channel's capacity (so many
    /// slots can never be free). `n == 0` gives an empty iterator at once while the channel
    /// is open, full or not.
    ///
    /// Cancel-safe: dropped before it completes, it reserved nothing and its place in line
    /// goes to the senders behind it.
    ///
    /// ```
    /// use overlap::sync::mpsc;
    ///
    /// overlap::block_on(async {
    ///     let (tx, mut rx) = mpsc::channel(3);
    ///     let mut permits = tx.reserve_many(2).await.unwrap();
    ///     assert_eq!(tx.capacity(), 1, "two slots are reserved");
    ///     permits.next().unwrap().send("a");
    ///     permits.next().unwrap().send("b");
    ///     assert!(permits.next().is_none());
    ///     assert_eq!(rx.recv().await, Some("a"));
    ///     assert_eq!(rx.recv().await, Some("b"));
    ///     assert!(tx.reserve_many(4).await.is_err(), "more than the capacity");
    /// });
    /// ```
    pub async fn reserve_many(&self, n: usize) -> Result<PermitIterator<'_, T>, SendError<()>> {
        {
            let chan = self.chan.borrow();
            if chan.closed || n > chan.capacity {
                return Err(SendError(()));
            }
        }
        if n > 0 {
            let mut wait = SlotWait::new(self, n);
            let got_slots =
                std::future::poll_fn(|cx| crate::coop::budgeted(cx, |cx| wait.poll_slot(cx))).await;
            if !got_slots {
                return Err(SendError(()));
            }
        }
        Ok(PermitIterator {
            sender: self,
            left: n,
        })
    }

    /// Reserves `n` slots if they are free now (and no sender waits before), without
    /// waiting. `Full` if they are not, or if `n` is above the channel's capacity; `Closed`
    /// if the receiver is gone. `n == 0` gives an empty iterator while the channel is open.
    ///
    /// ```
    /// use overlap::sync::mpsc::{self, TrySendError};
    ///
    /// let (tx, _rx) = mpsc::channel::<u8>(2);
    /// tx.try_send(1).unwrap();
    /// assert!(matches!(tx.try_reserve_many(2), Err(TrySendError::Full(()))));
    /// let permits = tx.try_reserve_many(1).unwrap();
    /// assert_eq!(permits.len(), 1);
    /// ```
    pub fn try_reserve_many(&self, n: usize) -> Result<PermitIterator<'_, T>, TrySendError<()>> {
        // More than the capacity is never free: `Full`, as when the slots are taken.
        self.try_take_slots(n)?;
        Ok(PermitIterator {
            sender: self,
            left: n,
        })
    }
}

/// Slots of a bounded channel reserved together by [`Sender::reserve_many`] or
/// [`Sender::try_reserve_many`]: each [`next`](Iterator::next) hands out one of them as a
/// [`Permit`], until all were.
///
/// Dropping the iterator gives the slots it has not handed out back to the channel at once,
/// waking the waiting senders they are enough for. The permits already handed out are not
/// affected: each sends, or gives its slot back when dropped, on its own.
///
/// ```
/// use overlap::sync::mpsc;
///
/// overlap::block_on(async {
///     let (tx, mut rx) = mpsc::channel(4);
///     let mut permits = tx.reserve_many(4).await.unwrap();
///     permits.next().unwrap().send(1);
///     assert_eq!(tx.capacity(), 0, "three slots still reserved");
///     drop(permits);
///     assert_eq!(tx.capacity(), 3, "given back");
///     assert_eq!(rx.recv().await, Some(1));
/// });
/// ```
#[must_use = "unused reserved slots are held until the iterator is dropped"]
pub struct PermitIterator<'a, T> {
    sender: &'a Sender<T>,
    /// Reserved slots not handed out yet.
    left: usize,
}

impl<'a, T> Iterator for PermitIterator<'a, T> {
    type Item = Permit<'a, T>;

    fn next(&mut self) -> Option<Permit<'a, T>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        Some(Permit {
            sender: Some(self.sender),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<T> ExactSizeIterator for PermitIterator<'_, T> {}

impl<T> FusedIterator for PermitIterator<'_, T> {}

impl<T> Drop for PermitIterator<'_, T> {
    fn drop(&mut self) {
        let left = std::mem::take(&mut self.left);
        release_reserved(self.sender, left);
    }
}

impl<T> fmt::Debug for PermitIterator<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PermitIterator")
            .field("left", &self.left)
            .finish()
    }
}
