//! A one-shot slot: a pool thread puts a value in, a task awaits it. The slot itself
//! ([`OnceSlot`]) is also what a `RemoteJoinHandle` awaits, inside its own cell.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// A value delivered once (or never), and the waker of whoever awaits it. Not locked
/// itself: its owner keeps it under a lock.
pub(crate) struct OnceSlot<T> {
    value: Option<T>,
    waker: Option<Waker>,
    /// The value is in, or never will be.
    closed: bool,
}

impl<T> OnceSlot<T> {
    pub(crate) fn new() -> OnceSlot<T> {
        OnceSlot {
            value: None,
            waker: None,
            closed: false,
        }
    }

    /// Stores `value` (`None`: there will be none) and closes the slot, unless it was closed
    /// already. Returns the waiter's waker, to be called once the lock is released.
    pub(crate) fn close_with(&mut self, value: Option<T>) -> Option<Waker> {
        if self.closed {
            return None;
        }
        self.closed = true;
        self.value = value;
        self.waker.take()
    }

    /// Takes the waiter's waker out, for a waiter that gives up (to be dropped once the lock
    /// is released).
    pub(crate) fn take_waker(&mut self) -> Option<Waker> {
        self.waker.take()
    }

    /// Takes the value out, if it is in: for a waiter that gives up on a settled slot.
    pub(crate) fn take_value(&mut self) -> Option<T> {
        self.value.take()
    }

    /// Whether polling would not be pending.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    /// `Some(value)` once sent, `None` once closed without one, else keeps the waker.
    pub(crate) fn poll_take(&mut self, cx: &Context<'_>) -> Poll<Option<T>> {
        if self.register(cx) {
            return Poll::Ready(self.value.take());
        }
        Poll::Pending
    }

    /// True if closed; else keeps the waker, to be woken when it closes.
    pub(crate) fn register(&mut self, cx: &Context<'_>) -> bool {
        if self.closed {
            return true;
        }
        match &self.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => self.waker = Some(cx.waker().clone()),
        }
        false
    }
}

/// The sending half; dropping it without sending makes the receiver yield `None`.
pub(crate) struct Sender<T>(Arc<Mutex<OnceSlot<T>>>);

/// The receiving half: a future of `Some(value)`, or `None` if the sender went away.
pub(crate) struct Receiver<T>(Arc<Mutex<OnceSlot<T>>>);

pub(crate) fn completion<T>() -> (Sender<T>, Receiver<T>) {
    let slot = Arc::new(Mutex::new(OnceSlot::new()));
    (Sender(slot.clone()), Receiver(slot))
}

fn lock<T>(m: &Mutex<OnceSlot<T>>) -> std::sync::MutexGuard<'_, OnceSlot<T>> {
    // Only plain field moves happen under this lock; a poisoned one is still consistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<T> Sender<T> {
    /// Whether the receiver is gone, so that nobody can ever see a value sent.
    pub(crate) fn is_abandoned(&self) -> bool {
        Arc::strong_count(&self.0) == 1
    }

    pub(crate) fn send(self, value: T) {
        let waker = lock(&self.0).close_with(Some(value));
        wake(waker);
        // Drop runs next and finds the slot closed.
    }

    /// Sends `value` for a pool thread, which `free` marks as looking for work. A receiver
    /// (polled at any time, not only when woken) must not see the value before `free` has
    /// run: the task's next job would find no thread free and start one it does not need.
    /// So `free` runs first, then the value goes. If the receiver is gone, though, the value
    /// is dropped here before `free`: its drop (which may block, an `Unblock`'s say) is the
    /// job's last work, and a job queued meanwhile must not wait behind it for this thread.
    /// (A receiver dropped between that look and the send leaves the value to whichever
    /// side lets go of the slot last.)
    pub(crate) fn send_after(self, value: T, free: impl FnOnce()) {
        if self.is_abandoned() {
            drop(value);
            free();
            return;
        }
        free();
        self.send(value);
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let waker = lock(&self.0).close_with(None);
        wake(waker);
    }
}

/// Wakes outside the lock: the receiver's task may be polled on another thread at once.
fn wake(waker: Option<Waker>) {
    if let Some(w) = waker {
        w.wake();
    }
}

impl<T> Future for Receiver<T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        lock(&self.0).poll_take(cx)
    }
}
