//! `WeakSender` and `WeakUnboundedSender`: handles to a channel that do not keep it open,
//! and give a sender back while some other sender does.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

#[cfg(doc)]
use super::Receiver;
use super::{Chan, Sender, UnboundedSender};

/// A handle to a bounded channel that does not count as a sender: once every [`Sender`] is
/// dropped the receiver sees the channel end, whatever weak senders remain. Made by
/// [`Sender::downgrade`]; [`upgrade`](WeakSender::upgrade) gives a sender back while
/// another one still keeps the channel open. For a task that should send only as long as
/// somebody else does (a cache that refreshes while its users live).
///
/// ```
/// use overlap::sync::mpsc;
///
/// overlap::block_on(async {
///     let (tx, mut rx) = mpsc::channel::<u8>(4);
///     let weak = tx.downgrade();
///     weak.upgrade().unwrap().send(1).await.unwrap();
///     drop(tx);
///     assert!(weak.upgrade().is_none(), "no strong sender left");
///     assert_eq!(rx.recv().await, Some(1));
///     assert_eq!(rx.recv().await, None);
/// });
/// ```
pub struct WeakSender<T> {
    chan: Rc<RefCell<Chan<T>>>,
}

/// [`WeakSender`] for an unbounded channel: made by [`UnboundedSender::downgrade`].
pub struct WeakUnboundedSender<T>(WeakSender<T>);

impl<T> WeakSender<T> {
    /// A sender of the channel if a sender still keeps it open, else `None` (also when only
    /// the receiver closed it: the sender would then fail its sends, as any other).
    pub fn upgrade(&self) -> Option<Sender<T>> {
        if self.chan.borrow().senders == 0 {
            return None;
        }
        Some(Sender::counted(&self.chan))
    }

    /// How many senders keep the channel open.
    pub fn strong_count(&self) -> usize {
        self.chan.borrow().senders
    }

    /// How many weak senders there are (this one included).
    pub fn weak_count(&self) -> usize {
        self.chan.borrow().weak_senders
    }
}

impl<T> Sender<T> {
    /// A [`WeakSender`] of this channel, which does not keep it open.
    pub fn downgrade(&self) -> WeakSender<T> {
        weak_of(&self.chan)
    }

    /// How many senders keep the channel open (this one included).
    pub fn strong_count(&self) -> usize {
        self.chan.borrow().senders
    }

    /// How many [`WeakSender`]s there are.
    pub fn weak_count(&self) -> usize {
        self.chan.borrow().weak_senders
    }
}

fn weak_of<T>(chan: &Rc<RefCell<Chan<T>>>) -> WeakSender<T> {
    chan.borrow_mut().weak_senders += 1;
    WeakSender { chan: chan.clone() }
}

impl<T> WeakUnboundedSender<T> {
    /// A sender of the channel if a sender still keeps it open, else `None`.
    pub fn upgrade(&self) -> Option<UnboundedSender<T>> {
        self.0.upgrade().map(UnboundedSender)
    }

    /// How many senders keep the channel open.
    pub fn strong_count(&self) -> usize {
        self.0.strong_count()
    }

    /// How many weak senders there are (this one included).
    pub fn weak_count(&self) -> usize {
        self.0.weak_count()
    }
}

impl<T> UnboundedSender<T> {
    /// A [`WeakUnboundedSender`] of this channel, which does not keep it open.
    pub fn downgrade(&self) -> WeakUnboundedSender<T> {
        WeakUnboundedSender(self.0.downgrade())
    }

    /// How many senders keep the channel open (this one included).
    pub fn strong_count(&self) -> usize {
        self.0.strong_count()
    }

    /// How many [`WeakUnboundedSender`]s there are.
    pub fn weak_count(&self) -> usize {
        self.0.weak_count()
    }
}

impl<T> Clone for WeakSender<T> {
    fn clone(&self) -> WeakSender<T> {
        weak_of(&self.chan)
    }
}

impl<T> Clone for WeakUnboundedSender<T> {
    fn clone(&self) -> WeakUnboundedSender<T> {
        WeakUnboundedSender(self.0.clone())
    }
}

impl<T> Drop for WeakSender<T> {
    fn drop(&mut self) {
        self.chan.borrow_mut().weak_senders -= 1;
    }
}

impl<T> fmt::Debug for WeakSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("mpsc::WeakSender")
            .field("strong_count", &self.strong_count())
            .finish()
    }
}

impl<T> fmt::Debug for WeakUnboundedSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("mpsc::WeakUnboundedSender")
            .field("strong_count", &self.strong_count())
            .finish()
    }
}
