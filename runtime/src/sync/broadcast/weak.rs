//! `WeakSender`: a handle to a broadcast channel that does not keep it open, and gives a
//! sender back while some other sender does.

use std::fmt;
use std::rc::Rc;

use super::{Sender, Shared};

/// A handle to a broadcast channel that does not count as a sender: once every [`Sender`] is
/// dropped the receivers see [`RecvError::Closed`](super::RecvError::Closed) (after the
/// values still held), whatever weak senders remain. Made by [`Sender::downgrade`];
/// [`upgrade`](WeakSender::upgrade) gives a sender back while another one still keeps the
/// channel open: for a task that should publish only as long as somebody else does (a
/// metrics ticker that stops with the service it reports on).
///
/// ```
/// use overlap::sync::broadcast;
///
/// overlap::block_on(async {
///     let (tx, mut rx) = broadcast::channel::<u8>(4);
///     let weak = tx.downgrade();
///     weak.upgrade().unwrap().send(1).unwrap();
///     drop(tx);
///     assert!(weak.upgrade().is_none(), "no strong sender left");
///     assert_eq!(rx.recv().await, Ok(1));
///     assert_eq!(rx.recv().await, Err(broadcast::RecvError::Closed));
/// });
/// ```
pub struct WeakSender<T> {
    shared: Rc<Shared<T>>,
}

impl<T> WeakSender<T> {
    /// A sender of the channel if a sender still keeps it open, else `None`. (With no
    /// receiver, the sender's sends fail, as any other's: a receiver may still subscribe.)
    pub fn upgrade(&self) -> Option<Sender<T>> {
        if self.shared.senders.get() == 0 {
            return None;
        }
        Some(Sender::counted(&self.shared))
    }

    /// How many senders keep the channel open.
    pub fn strong_count(&self) -> usize {
        self.shared.senders.get()
    }

    /// How many weak senders there are (this one included).
    pub fn weak_count(&self) -> usize {
        self.shared.weak_senders.get()
    }
}

impl<T> Sender<T> {
    /// A [`WeakSender`] of this channel, which does not keep it open.
    pub fn downgrade(&self) -> WeakSender<T> {
        weak_of(&self.shared)
    }

    /// How many senders keep the channel open (this one included).
    pub fn strong_count(&self) -> usize {
        self.shared.senders.get()
    }

    /// How many [`WeakSender`]s there are.
    pub fn weak_count(&self) -> usize {
        self.shared.weak_senders.get()
    }
}

fn weak_of<T>(shared: &Rc<Shared<T>>) -> WeakSender<T> {
    shared.weak_senders.set(shared.weak_senders.get() + 1);
    WeakSender {
        shared: shared.clone(),
    }
}

impl<T> Clone for WeakSender<T> {
    fn clone(&self) -> WeakSender<T> {
        weak_of(&self.shared)
    }
}

impl<T> Drop for WeakSender<T> {
    fn drop(&mut self) {
        self.shared
            .weak_senders
            .set(self.shared.weak_senders.get() - 1);
    }
}

impl<T> fmt::Debug for WeakSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("broadcast::WeakSender")
            .field("strong_count", &self.strong_count())
            .finish()
    }
}
