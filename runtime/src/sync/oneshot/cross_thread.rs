//! A one-shot channel whose ends may live on different threads: tokio's `oneshot` for the
//! cases overlap's own [`oneshot`](super) cannot serve, such as the reply channel that a
//! request to another runtime (or to a plain thread) carries.
//!
//! The same API as [`oneshot`](super), its ends `Send` (and `Sync`) when `T` is `Send`,
//! plus [`Receiver::blocking_recv`] for code that is not async. Each operation takes a
//! `std::sync::Mutex`, where [`oneshot`](super) costs none: use this one only when a thread
//! boundary is crossed. The async calls work under any executor; `blocking_recv` on any
//! thread that is not running a runtime's `block_on` (there it panics, since it would stop
//! that runtime's loop, as tokio's does inside a runtime).
//!
//! ```
//! use overlap::sync::mpsc::cross_thread as mpsc;
//! use overlap::sync::oneshot::cross_thread as oneshot;
//!
//! // A server on a thread of its own; each request carries its reply channel.
//! let (requests, mut inbox) = mpsc::unbounded_channel::<(u32, oneshot::Sender<u32>)>();
//! let server = std::thread::spawn(move || {
//!     overlap::block_on(async move {
//!         while let Some((n, reply)) = inbox.recv().await {
//!             let _ = reply.send(n * 2);
//!         }
//!     })
//! });
//! overlap::block_on(async {
//!     let (reply, answer) = oneshot::channel();
//!     requests.send((21, reply)).unwrap();
//!     assert_eq!(answer.await, Ok(42));
//! });
//! drop(requests);
//! server.join().unwrap();
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use super::{wake, Inner, RecvError, TryRecvError};
use crate::poison::lock;

/// Sends the one value, from any thread; see [`channel`].
pub struct Sender<T> {
    inner: Arc<Mutex<Inner<T>>>,
}

/// Awaits the one value, on any thread: a future of `Ok(value)`, or [`RecvError`] if the
/// sender was dropped without sending (or [`close`](Receiver::close) came first). See
/// [`channel`].
///
/// Awaiting `&mut receiver` (in a `select!` loop) is cancel-safe: a value not yet returned
/// waits for the next poll. Dropping the `Receiver` closes the channel: a later
/// [`Sender::send`] gives its value back.
pub struct Receiver<T> {
    inner: Arc<Mutex<Inner<T>>>,
    /// The result was returned: the receiver is terminated (`FusedFuture`).
    done: bool,
}

/// A one-shot channel whose ends may be on different threads: [`Sender::send`] once,
/// await the [`Receiver`] (or [`blocking_recv`](Receiver::blocking_recv) it).
///
/// ```
/// use overlap::sync::oneshot::{self, cross_thread};
///
/// let (tx, rx) = cross_thread::channel();
/// std::thread::spawn(move || tx.send("from a thread").unwrap());
/// assert_eq!(overlap::block_on(rx), Ok("from a thread"));
///
/// let (tx, rx) = cross_thread::channel::<u8>();
/// std::thread::spawn(move || drop(tx)).join().unwrap();
/// assert_eq!(rx.blocking_recv(), Err(oneshot::RecvError));
/// ```
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let inner = Arc::new(Mutex::new(Inner::new()));
    (
        Sender {
            inner: inner.clone(),
        },
        Receiver { inner, done: false },
    )
}

impl<T> Sender<T> {
    /// Sends `value`, waking the receiver. Gives the value back if the receiver is gone.
    pub fn send(self, value: T) -> Result<(), T> {
        let waker = lock(&self.inner).send(value)?;
        // Woken outside the lock; `self` drops next, and the receiver finds the value first.
        wake(waker);
        Ok(())
    }

    /// Whether the receiver is gone (or [closed](Receiver::close) the channel), so a value
    /// sent now would come back.
    pub fn is_closed(&self) -> bool {
        lock(&self.inner).receiver_gone
    }

    /// Waits until the receiver is gone, or has [closed](Receiver::close) the channel: for
    /// work whose result nobody wants any more to stop early. Cancel-safe.
    pub async fn closed(&mut self) {
        std::future::poll_fn(|cx| self.poll_closed(cx)).await
    }

    /// [`closed`](Sender::closed) as a poll function. Spends a unit of the task's
    /// cooperative budget when it returns `Ready`, as a receive does.
    pub fn poll_closed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        crate::coop::budgeted(cx, |cx| {
            poll_parked(
                &self.inner,
                cx,
                |inner| inner.closed_ready(),
                |inner| &mut inner.sender_waker,
            )
        })
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let (waker, _own) = lock(&self.inner).sender_dropped();
        wake(waker);
    }
}

impl<T> Receiver<T> {
    /// Takes the value if it was sent, without waiting. After [`close`](Receiver::close),
    /// nothing can come any more: no value is [`TryRecvError::Closed`]. Taking the value, or
    /// learning that none will come, terminates the receiver, as awaiting it does.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        lock(&self.inner).try_recv(&mut self.done)
    }

    /// Waits for the value, blocking this thread: for a plain thread or a
    /// [`spawn_blocking`](crate::spawn_blocking) job.
    ///
    /// # Panics
    /// On a thread running a runtime's `block_on` (in a task or the `block_on` future): it
    /// would stop that runtime's loop. Await the receiver there.
    #[track_caller]
    pub fn blocking_recv(self) -> Result<T, RecvError> {
        if crate::executor::in_driving_block_on() {
            panic!(
                "overlap::sync::oneshot::cross_thread::Receiver::blocking_recv called on a \
                 thread running a runtime's `block_on`: blocking it would stop that runtime's \
                 loop; `.await` the receiver instead, or call it from `spawn_blocking` or \
                 another thread"
            );
        }
        crate::executor::park_until_ready(self)
    }

    /// Whether no value waits to be taken: none was sent yet, the sender went without
    /// sending, or the value was already taken.
    pub fn is_empty(&self) -> bool {
        lock(&self.inner).value.is_none()
    }

    /// Whether the receiver has given its outcome (the value, or the error that none will
    /// come), by being awaited or by [`try_recv`](Receiver::try_recv): it must not be
    /// polled again.
    pub fn is_terminated(&self) -> bool {
        self.done
    }

    /// Closes the channel without dropping the receiver, as [`oneshot::Receiver::close`]
    /// does: from now on [`Sender::send`] fails (giving its value back) and
    /// [`Sender::closed`] completes; a value sent before the call is kept.
    ///
    /// [`oneshot::Receiver::close`]: super::Receiver::close
    pub fn close(&mut self) {
        let (waker, _own) = lock(&self.inner).close();
        wake(waker);
    }
}

impl<T> Future for Receiver<T> {
    type Output = Result<T, RecvError>;

    /// Spends a unit of the task's cooperative budget when it returns `Ready`, as a
    /// [`oneshot`](super) receive does.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        crate::coop::budgeted(cx, |cx| {
            let done = &mut this.done;
            poll_parked(
                &this.inner,
                cx,
                |inner| inner.recv_ready(done),
                |inner| &mut inner.receiver_waker,
            )
        })
    }
}

/// Polls a wait on the channel: `ready` gives its outcome if it has one, else `cx`'s waker
/// is parked in the slot `slot` picks. The check and the parking share one critical
/// section, and the other end takes the waker under the same lock, so no wake is lost. The
/// waker is cloned with the lock released (a clone is user code, which may call this
/// channel), and the check made again once it is taken back; a waker that wakes the same
/// task as the one parked is not cloned at all. A replaced or unneeded waker is dropped
/// (user code too) after the unlock.
fn poll_parked<T, R>(
    inner: &Mutex<Inner<T>>,
    cx: &Context<'_>,
    mut ready: impl FnMut(&mut Inner<T>) -> Poll<R>,
    slot: fn(&mut Inner<T>) -> &mut Option<Waker>,
) -> Poll<R> {
    let mut waker: Option<Waker> = None;
    loop {
        let mut state = lock(inner);
        if waker.is_some() && state.value.is_some() {
            // The value came while the waker was cloned: the clone goes with the lock
            // released, before the value is taken out (a panicking drop cannot lose it).
            drop(state);
            drop(waker.take());
            continue;
        }
        let res = ready(&mut state);
        if res.is_ready() {
            drop(state);
            drop(waker);
            return res;
        }
        let parked = slot(&mut state);
        if parked.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            drop(state);
            drop(waker);
            return Poll::Pending;
        }
        if let Some(waker) = waker.take() {
            let old = parked.replace(waker);
            drop(state);
            drop(old);
            return Poll::Pending;
        }
        drop(state);
        waker = Some(cx.waker().clone());
    }
}

/// Terminated once it has returned the value or the error.
impl<T> futures_core::FusedFuture for Receiver<T> {
    fn is_terminated(&self) -> bool {
        self.done
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        // What `close` does; a value already sent is dropped with the channel, when the
        // sender lets go too.
        self.close();
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("oneshot::cross_thread::Sender")
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("oneshot::cross_thread::Receiver")
            .finish_non_exhaustive()
    }
}
