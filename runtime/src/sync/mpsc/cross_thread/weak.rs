//! The weak sending ends, [`WeakSender`] and [`WeakUnboundedSender`]: handles that do not
//! keep the channel open, and give a sender back while a strong one still does.

use std::fmt;
use std::sync::Arc;

#[cfg(doc)]
use super::Receiver;
use super::{Chan, Sender, UnboundedSender};

/// A handle to a bounded [`channel`](super::channel) that does not count as a sender: once
/// every [`Sender`] is dropped the receiver sees the channel end, whatever weak senders
/// remain. Made by [`Sender::downgrade`]; [`upgrade`](WeakSender::upgrade) gives a sender
/// back while another one still keeps the channel open. For a thread or task that should
/// send only as long as somebody else does (a progress reporter that lives as long as the
/// work it reports on).
///
/// It is `Send` and `Sync` when `T` is `Send`, as [`Sender`] is. Dropping it changes
/// nothing but [`weak_count`](WeakSender::weak_count).
///
/// ```
/// use overlap::sync::mpsc::cross_thread;
///
/// let (tx, mut rx) = cross_thread::channel::<u32>(4);
/// let weak = tx.downgrade();
/// std::thread::spawn(move || {
///     // Sends only while a strong sender keeps the channel open.
///     if let Some(tx) = weak.upgrade() {
///         tx.blocking_send(1).unwrap();
///     }
/// })
/// .join()
/// .unwrap();
/// drop(tx);
/// assert_eq!(rx.blocking_recv(), Some(1));
/// assert_eq!(rx.blocking_recv(), None, "no strong sender is left");
/// ```
pub struct WeakSender<T> {
    chan: Arc<Chan<T>>,
}

/// [`WeakSender`] for an [`unbounded_channel`](super::unbounded_channel): made by
/// [`UnboundedSender::downgrade`].
///
/// ```
/// use overlap::sync::mpsc::cross_thread;
///
/// let (tx, mut rx) = cross_thread::unbounded_channel::<&str>();
/// let weak = tx.downgrade();
/// weak.upgrade().unwrap().send("while tx lives").unwrap();
/// drop(tx);
/// assert!(weak.upgrade().is_none());
/// assert_eq!(rx.blocking_recv(), Some("while tx lives"));
/// assert_eq!(rx.blocking_recv(), None);
/// ```
pub struct WeakUnboundedSender<T>(WeakSender<T>);

impl<T> WeakSender<T> {
    /// A new [`Sender`] of the channel if a strong sender still keeps it open, else `None`
    /// (for good: once the last strong sender is gone, no sender can come back). A channel
    /// the receiver closed or dropped still upgrades while senders remain; the sender's
    /// sends then fail, as any other's.
    ///
    /// The check and the new sender's count are one step under the channel's lock, so an
    /// upgrade racing with the last strong sender's drop on another thread either comes
    /// first (and the channel stays open for the new sender) or finds none left: a receiver
    /// that has seen the end never sees a sender come back.
    ///
    /// ```
    /// use overlap::sync::mpsc::cross_thread;
    ///
    /// let (tx, rx) = cross_thread::channel::<u8>(1);
    /// let weak = tx.downgrade();
    /// let upgraded = weak.upgrade().unwrap();
    /// drop(tx);
    /// assert!(!rx.is_closed(), "the upgraded sender keeps it open");
    /// drop(upgraded);
    /// assert!(rx.is_closed() && weak.upgrade().is_none());
    /// ```
    pub fn upgrade(&self) -> Option<Sender<T>> {
        let mut state = self.chan.lock();
        if state.senders == 0 {
            return None;
        }
        state.senders += 1;
        drop(state);
        Some(Sender::new(self.chan.clone()))
    }

    /// How many strong senders keep the channel open.
    ///
    /// ```
    /// use overlap::sync::mpsc::cross_thread;
    ///
    /// let (tx, _rx) = cross_thread::channel::<u8>(1);
    /// let weak = tx.downgrade();
    /// assert_eq!(weak.strong_count(), 1);
    /// drop(tx);
    /// assert_eq!(weak.strong_count(), 0);
    /// ```
    pub fn strong_count(&self) -> usize {
        self.chan.lock().senders
    }

    /// How many weak senders there are (this one included).
    ///
    /// ```
    /// use overlap::sync::mpsc::cross_thread;
    ///
    /// let (tx, _rx) = cross_thread::channel::<u8>(1);
    /// let weak = tx.downgrade();
    /// assert_eq!(weak.clone().weak_count(), 2);
    /// assert_eq!(weak.weak_count(), 1);
    /// ```
    pub fn weak_count(&self) -> usize {
        self.chan.lock().weak_senders
    }
}

impl<T> Sender<T> {
    /// A [`WeakSender`] of this channel, which does not keep it open.
    ///
    /// ```
    /// use overlap::sync::mpsc::cross_thread;
    ///
    /// let (tx, mut rx) = cross_thread::channel::<u8>(1);
    /// let _weak = tx.downgrade();
    /// drop(tx);
    /// assert_eq!(rx.blocking_recv(), None, "the weak sender does not keep it open");
    /// ```
    pub fn downgrade(&self) -> WeakSender<T> {
        weak_of(&self.chan)
    }

    /// How many strong senders keep the channel open (this one included).
    ///
    /// ```
    /// use overlap::sync::mpsc::cross_thread;
    ///
    /// let (tx, _rx) = cross_thread::channel::<u8>(1);
    /// let _weak = tx.downgrade();
    /// assert_eq!(tx.clone().strong_count(), 2);
    /// assert_eq!(tx.strong_count(), 1);
    /// ```
    pub fn strong_count(&self) -> usize {
        self.chan.lock().senders
    }

    /// How many [`WeakSender`]s of the channel there are.
    ///
    /// ```
    /// use overlap::sync::mpsc::cross_thread;
    ///
    /// let (tx, _rx) = cross_thread::channel::<u8>(1);
    /// let weak = tx.downgrade();
    /// assert_eq!(tx.weak_count(), 1);
    /// drop(weak);
    /// assert_eq!(tx.weak_count(), 0);
    /// ```
    pub fn weak_count(&self) -> usize {
        self.chan.lock().weak_senders
    }
}

/// A new weak sender of `chan`, counted.
fn weak_of<T>(chan: &Arc<Chan<T>>) -> WeakSender<T> {
    chan.lock().weak_senders += 1;
    WeakSender { chan: chan.clone() }
}

impl<T> WeakUnboundedSender<T> {
    /// A new [`UnboundedSender`] if a strong sender still keeps the channel open, else
    /// `None`; as [`WeakSender::upgrade`].
    ///
    /// ```
    /// use overlap::sync::mpsc::cross_thread;
    ///
    /// let (tx, _rx) = cross_thread::unbounded_channel::<u8>();
    /// let weak = tx.downgrade();
    /// assert!(weak.upgrade().is_some());
    /// drop(tx);
    /// assert!(weak.upgrade().is_none());
    /// ```
    pub fn upgrade(&self) -> Option<UnboundedSender<T>> {
        self.0.upgrade().map(UnboundedSender)
    }

    /// How many strong senders keep the channel open, as [`WeakSender::strong_count`].
    ///
    /// ```
    /// use overlap::sync::mpsc::cross_thread;
    ///
    /// let (tx, _rx) = cross_thread::unbounded_channel::<u8>();
    /// assert_eq!(tx.downgrade().strong_count(), 1);
    /// ```
    pub fn strong_count(&self) -> usize {
        self.0.strong_count()
    }

    /// How many weak senders there are (this one included), as
    /// [`WeakSender::weak_count`].
    ///
    /// ```
    /// use overlap::sync::mpsc::cross_thread;
    ///
    /// let (tx, _rx) = cross_thread::unbounded_channel::<u8>();
    /// assert_eq!(tx.downgrade().weak_count(), 1);
    /// ```
    pub fn weak_count(&self) -> usize {
        self.0.weak_count()
    }
}

impl<T> UnboundedSender<T> {
    /// A [`WeakUnboundedSender`] of this channel, which does not keep it open.
    ///
    /// ```
    /// use overlap::sync::mpsc::cross_thread;
    ///
    /// let (tx, rx) = cross_thread::unbounded_channel::<u8>();
    /// let _weak = tx.downgrade();
    /// drop(tx);
    /// assert!(rx.is_closed());
    /// ```
    pub fn downgrade(&self) -> WeakUnboundedSender<T> {
        WeakUnboundedSender(self.0.downgrade())
    }

    /// How many strong senders keep the channel open (this one included).
    ///
    /// ```
    /// use overlap::sync::mpsc::cross_thread;
    ///
    /// let (tx, _rx) = cross_thread::unbounded_channel::<u8>();
    /// assert_eq!(tx.clone().strong_count(), 2);
    /// ```
    pub fn strong_count(&self) -> usize {
        self.0.strong_count()
    }

    /// How many [`WeakUnboundedSender`]s of the channel there are.
    ///
    /// ```
    /// use overlap::sync::mpsc::cross_thread;
    ///
    /// let (tx, _rx) = cross_thread::unbounded_channel::<u8>();
    /// let _weak = tx.downgrade();
    /// assert_eq!(tx.weak_count(), 1);
    /// ```
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
        self.chan.lock().weak_senders -= 1;
    }
}

impl<T> fmt::Debug for WeakSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.chan.lock();
        f.debug_struct("cross_thread::WeakSender")
            .field("strong_count", &state.senders)
            .field("weak_count", &state.weak_senders)
            .finish()
    }
}

impl<T> fmt::Debug for WeakUnboundedSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.0.chan.lock();
        f.debug_struct("cross_thread::WeakUnboundedSender")
            .field("strong_count", &state.senders)
            .field("weak_count", &state.weak_senders)
            .finish()
    }
}
