//! The waits of the sending ends: [`Send`], [`Reserve`] (and the [`Permit`] it gives) and
//! [`Closed`], on [`SlotWait`], one sender's place in the line for a free slot.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::MutexGuard;
use std::task::{Context, Poll, Waker};

use super::super::error::SendError;
use super::{Chan, Sender, State};
use crate::sync::waiters::wake;

#[cfg(doc)]
use super::UnboundedSender;

/// The channel locked with a slot reserved, and a waker to drop once it is unlocked.
type Locked<'a, T> = (MutexGuard<'a, State<T>>, Option<Waker>);

/// One sender's wait for a free slot, shared by [`Send`] and [`Reserve`].
pub(super) struct SlotWait<'a, T> {
    chan: &'a Chan<T>,
    /// Its id in the line of waiting sends (or in `granted`) once it has waited.
    id: Option<u64>,
}

impl<'a, T> SlotWait<'a, T> {
    pub(super) fn new(chan: &'a Chan<T>) -> SlotWait<'a, T> {
        SlotWait { chan, id: None }
    }

    /// `Ready(Ok)` with the lock held once a slot is reserved for the caller (counted in
    /// `reserved`, to be filled or released under that lock), and a waker of this wait's
    /// that left the line, to drop after the unlock; `Ready(Err)` if the channel is closed
    /// for it. Registration and check share one critical section, and a slot freed later
    /// is granted (and the waker taken) under the same lock, so no wake is lost between
    /// them.
    fn poll_slot(&mut self, cx: &mut Context<'_>) -> Poll<Result<Locked<'a, T>, ()>> {
        let mut state = self.chan.lock();
        if let Some(id) = self.id {
            if state.take_grant(id) {
                self.id = None;
                if state.receiver_gone {
                    // Given a slot before the receiver went: nothing will read it.
                    let waker = state.release_reserved();
                    drop(state);
                    wake(waker);
                    return Poll::Ready(Err(()));
                }
                return Poll::Ready(Ok((state, None)));
            }
        }
        if state.closed {
            // `close` emptied the line already; the entry is looked for all the same.
            let old = self.id.take().and_then(|id| state.send_waiters.remove(id));
            drop(state);
            drop(old);
            return Poll::Ready(Err(()));
        }
        let first = match (state.send_waiters.line.front(), self.id) {
            (None, _) => true,
            (Some(&(front, _)), Some(id)) => front == id,
            (Some(_), None) => false,
        };
        if first && state.free_slots() > 0 {
            // Room, and nobody ahead in line (never both a line and room outside a close:
            // a freed slot goes to the first waiter at once).
            let old = self.id.take().and_then(|id| state.send_waiters.remove(id));
            state.reserved += 1;
            return Poll::Ready(Ok((state, old)));
        }
        let old = state.send_waiters.register(&mut self.id, cx.waker());
        drop(state);
        drop(old);
        Poll::Pending
    }
}

impl<T> Drop for SlotWait<'_, T> {
    fn drop(&mut self) {
        let Some(id) = self.id else { return };
        let mut state = self.chan.lock();
        let (waker, old) = if state.take_grant(id) {
            // Woken with a slot it will not use: the slot goes to the next in line.
            (state.release_reserved(), None)
        } else {
            (None, state.send_waiters.remove(id))
        };
        drop(state);
        drop(old);
        wake(waker);
    }
}

/// The future of [`Sender::send`]: `Ok` once the value is queued, `Err` with the value if
/// the receiver is closed or dropped first. `Send` (the trait) when `T` is, so a task of a
/// multi-threaded runtime may await it; dropped before it completes, it sent nothing.
///
/// # Panics
/// If polled again after it completed (as an `async fn`'s future does); the channel is left
/// as it was.
///
/// ```
/// use overlap::sync::mpsc::cross_thread;
///
/// let (tx, mut rx) = cross_thread::channel(1);
/// let sender = std::thread::spawn(move || {
///     // Any executor will do: the waker is the only link.
///     overlap::block_on(async move { tx.send("from another runtime").await })
/// });
/// assert_eq!(rx.blocking_recv(), Some("from another runtime"));
/// sender.join().unwrap().unwrap();
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Send<'a, T> {
    wait: SlotWait<'a, T>,
    /// `None` once sent or given back.
    value: Option<T>,
}

impl<'a, T> Send<'a, T> {
    pub(super) fn new(wait: SlotWait<'a, T>, value: T) -> Send<'a, T> {
        Send {
            wait,
            value: Some(value),
        }
    }
}

// The value is moved out whole, never pinned: the future may move between polls.
impl<T> Unpin for Send<'_, T> {}

impl<T> Future for Send<'_, T> {
    type Output = Result<(), SendError<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        // Checked before the channel is touched: a slot reserved for a value already gone
        // would be lost for good.
        assert!(this.value.is_some(), "`Send` polled after completion");
        crate::coop::budgeted(cx, |cx| {
            let slot = std::task::ready!(this.wait.poll_slot(cx));
            let value = this.value.take().expect("checked above");
            let Ok((mut state, old)) = slot else {
                return Poll::Ready(Err(SendError(value)));
            };
            let (waker, back) = state.fill_reserved(value);
            drop(state);
            drop(old);
            wake(waker);
            Poll::Ready(back.map_or(Ok(()), |v| Err(SendError(v))))
        })
    }
}

impl<T> fmt::Debug for Send<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("cross_thread::Send")
            .field("waiting", &self.wait.id.is_some())
            .finish()
    }
}

/// The future of [`Sender::reserve`]: a [`Permit`] once a slot is reserved, an error if
/// the receiver is closed or dropped first. Dropped before it completes, it keeps no slot.
///
/// ```
/// use overlap::sync::mpsc::cross_thread;
///
/// overlap::block_on(async {
///     let (tx, rx) = cross_thread::channel::<u8>(1);
///     drop(rx);
///     assert!(tx.reserve().await.is_err());
/// });
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Reserve<'a, T> {
    wait: SlotWait<'a, T>,
    sender: &'a Sender<T>,
}

impl<'a, T> Reserve<'a, T> {
    pub(super) fn new(wait: SlotWait<'a, T>, sender: &'a Sender<T>) -> Reserve<'a, T> {
        Reserve { wait, sender }
    }
}

impl<'a, T> Future for Reserve<'a, T> {
    type Output = Result<Permit<'a, T>, SendError<()>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        crate::coop::budgeted(cx, |cx| {
            let slot = std::task::ready!(this.wait.poll_slot(cx));
            Poll::Ready(match slot {
                Ok((state, old)) => {
                    drop(state);
                    drop(old);
                    Ok(Permit::new(this.sender))
                }
                Err(()) => Err(SendError(())),
            })
        })
    }
}

impl<T> fmt::Debug for Reserve<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("cross_thread::Reserve")
            .field("waiting", &self.wait.id.is_some())
            .finish()
    }
}

/// One reserved slot of a bounded channel, from [`Sender::reserve`] or
/// [`Sender::try_reserve`]: [`send`](Permit::send) fills it without waiting; dropping the
/// permit gives the slot back (to the next waiting sender).
///
/// ```
/// use overlap::sync::mpsc::cross_thread;
///
/// overlap::block_on(async {
///     let (tx, mut rx) = cross_thread::channel(1);
///     // Reserve first, make the value once room is certain.
///     let permit = tx.reserve().await.unwrap();
///     permit.send(String::from("made after the wait"));
///     assert_eq!(rx.recv().await.as_deref(), Some("made after the wait"));
/// });
/// ```
pub struct Permit<'a, T> {
    sender: &'a Sender<T>,
    used: bool,
}

impl<'a, T> Permit<'a, T> {
    /// The permit of a slot just reserved (counted in `reserved`).
    pub(super) fn new(sender: &'a Sender<T>) -> Permit<'a, T> {
        Permit {
            sender,
            used: false,
        }
    }

    /// Queues `value` in the reserved slot and wakes the receiver. If the receiver was
    /// dropped meanwhile, the value is dropped (as tokio's); a receiver that only
    /// [closed](super::Receiver::close) the channel still receives it.
    ///
    /// ```
    /// use overlap::sync::mpsc::cross_thread;
    ///
    /// let (tx, mut rx) = cross_thread::channel(1);
    /// let permit = tx.try_reserve().unwrap();
    /// rx.close();
    /// permit.send(1);
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// ```
    pub fn send(self, value: T) {
        drop(self.fill(value));
    }

    /// Keeps the slot reserved past this permit, for an [`OwnedPermit`](super::OwnedPermit)
    /// to fill or give back.
    pub(super) fn keep_slot(mut self) {
        self.used = true;
    }

    /// Queues `value` in the reserved slot and wakes the receiver; the value comes back if
    /// the receiver was dropped meanwhile (nothing would read it), to be returned or dropped
    /// by the caller.
    pub(super) fn fill(mut self, value: T) -> Option<T> {
        self.used = true;
        let mut state = self.sender.chan.lock();
        let (waker, back) = state.fill_reserved(value);
        drop(state);
        wake(waker);
        back
    }
}

impl<T> Drop for Permit<'_, T> {
    fn drop(&mut self) {
        if self.used {
            return;
        }
        let waker = self.sender.chan.lock().release_reserved();
        wake(waker);
    }
}

impl<T> fmt::Debug for Permit<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("cross_thread::Permit")
            .finish_non_exhaustive()
    }
}

/// The future of [`Sender::closed`] and [`UnboundedSender::closed`]: ready once the
/// receiver is closed or dropped. Spends a unit of the task's cooperative budget when it
/// completes, as a receive does; waiting costs nothing.
///
/// ```
/// use overlap::sync::mpsc::cross_thread;
///
/// overlap::block_on(async {
///     let (tx, mut rx) = cross_thread::unbounded_channel::<u8>();
///     let closed = tx.closed();
///     rx.close();
///     closed.await;
/// });
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Closed<'a, T> {
    chan: &'a Chan<T>,
    id: Option<u64>,
}

impl<'a, T> Closed<'a, T> {
    pub(super) fn new(chan: &'a Chan<T>) -> Closed<'a, T> {
        Closed { chan, id: None }
    }
}

impl<T> Future for Closed<'_, T> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // Ready for good once closed: a loop awaiting it must still let other tasks run.
        crate::coop::budgeted(cx, |cx| self.get_mut().poll_now(cx))
    }
}

impl<T> Closed<'_, T> {
    fn poll_now(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.chan.lock();
        let old = if state.closed {
            // `close` emptied the list already; the entry is looked for all the same.
            let old = self
                .id
                .take()
                .and_then(|id| state.closed_waiters.remove(id));
            drop(state);
            drop(old);
            return Poll::Ready(());
        } else {
            state.closed_waiters.register(&mut self.id, cx.waker())
        };
        drop(state);
        drop(old);
        Poll::Pending
    }
}

impl<T> Drop for Closed<'_, T> {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            let old = self.chan.lock().closed_waiters.remove(id);
            drop(old);
        }
    }
}

impl<T> fmt::Debug for Closed<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("cross_thread::Closed")
            .finish_non_exhaustive()
    }
}
