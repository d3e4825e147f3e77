//! [`TaskTracker`]: counts the tasks of a graceful shutdown, and waits until the last is
//! gone once no more are coming.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use futures_core::future::FusedFuture;

use super::JoinHandle;
use crate::executor::{Handle, RemoteJoinHandle};
use crate::sync::wait_list::{WaitList, WaitSlot};
use crate::sync::waiters::wake_all;

/// Tracks tasks so a shutdown can wait for all of them: tokio-util's `TaskTracker`, under
/// its name and with its methods.
///
/// Each task spawned through it ([`spawn`](Self::spawn),
/// [`spawn_blocking`](Self::spawn_blocking)), or future wrapped by
/// [`track_future`](Self::track_future), counts until it is dropped: finished, aborted, or
/// dropped unfinished with its runtime. [`wait`](Self::wait) is ready once the tracker is
/// [closed](Self::close) and nothing counts any more; closing only says no more are
/// coming, and tasks can still be tracked after it. Unlike a [`JoinSet`](super::JoinSet),
/// it keeps no outputs and aborts nothing when dropped, so a server can track every
/// connection it ever serves in constant memory.
///
/// Clones share one count. The tracker is `Send` and `Sync` (a
/// [`spawn_blocking`](Self::spawn_blocking) job counts until it returns, on its thread),
/// and so is a [`TaskTrackerToken`].
///
/// ```
/// use overlap::sync::CancellationToken;
/// use overlap::task::TaskTracker;
///
/// overlap::block_on(async {
///     let tracker = TaskTracker::new();
///     let shutdown = CancellationToken::new();
///     for conn in 0..10u32 {
///         let shutdown = shutdown.clone();
///         tracker.spawn(async move {
///             // A connection's work, cut short by the shutdown.
///             shutdown.run_until_cancelled(std::future::pending::<()>()).await;
///             conn
///         });
///     }
///     assert_eq!(tracker.len(), 10);
///     shutdown.cancel();
///     tracker.close();
///     tracker.wait().await;
///     assert!(tracker.is_empty());
/// });
/// ```
#[derive(Clone)]
pub struct TaskTracker {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    tracked: usize,
    closed: bool,
    waits: WaitList,
}

impl State {
    fn done(&self) -> bool {
        self.closed && self.tracked == 0
    }
}

impl Inner {
    /// The state, even if a thread panicked holding it: every change to it is one step.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies `change`, then wakes every wait if it made the tracker done (closed and
    /// empty), with the lock released; a waker that panics (a user's own) stops none of the
    /// others, and its panic comes out of this call after them.
    fn update(&self, change: impl FnOnce(&mut State)) {
        let wakers: Vec<Waker> = {
            let mut state = self.lock();
            change(&mut state);
            if !state.done() {
                return;
            }
            state.waits.take_all().collect()
        };
        wake_all(wakers);
    }
}

impl TaskTracker {
    /// A tracker, open and empty.
    pub fn new() -> TaskTracker {
        TaskTracker {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// Closes the tracker: [`wait`](Self::wait) is ready once nothing counts any more.
    /// Returns whether it was open.
    pub fn close(&self) -> bool {
        let mut was_open = false;
        self.inner.update(|s| {
            was_open = !s.closed;
            s.closed = true;
        });
        was_open
    }

    /// Opens the tracker again, so [`wait`](Self::wait) waits on until the next
    /// [`close`](Self::close). Returns whether it was closed.
    pub fn reopen(&self) -> bool {
        let mut state = self.inner.lock();
        std::mem::replace(&mut state.closed, false)
    }

    /// Whether the tracker is closed.
    pub fn is_closed(&self) -> bool {
        self.inner.lock().closed
    }

    /// How many tasks and futures count now.
    pub fn len(&self) -> usize {
        self.inner.lock().tracked
    }

    /// Whether nothing counts now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until the tracker is closed and nothing counts; ready at once if it is so
    /// already. A tracker reopened and closed again between two polls may be missed, as
    /// tokio-util's is; the wait then goes on to the next time it is done.
    ///
    /// Cancel-safe, and fused: `select!` takes it without `.fuse()`.
    pub fn wait(&self) -> TaskTrackerWaitFuture<'_> {
        TaskTrackerWaitFuture {
            inner: &self.inner,
            slot: WaitSlot::default(),
        }
    }

    /// A token that counts as one task until dropped: to track work the tracker did not
    /// start.
    pub fn token(&self) -> TaskTrackerToken {
        self.inner.lock().tracked += 1;
        TaskTrackerToken {
            inner: self.inner.clone(),
        }
    }

    /// Wraps `future` so that it counts until it is dropped (finished or not).
    pub fn track_future<F: Future>(&self, future: F) -> TrackedFuture<F> {
        TrackedFuture {
            future,
            token: self.token(),
        }
    }

    /// Spawns `future` on the current runtime as [`spawn`](crate::spawn) does, counting
    /// until the task is dropped.
    ///
    /// # Panics
    /// Outside a runtime, as [`spawn`](crate::spawn).
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
    {
        crate::spawn(self.track_future(future))
    }

    /// The same as [`spawn`](Self::spawn), under tokio-util's name for a task that need not
    /// be `Send` (every overlap task is local to its runtime's thread).
    ///
    /// # Panics
    /// Outside a runtime, as [`spawn`](crate::spawn).
    #[track_caller]
    pub fn spawn_local<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
    {
        self.spawn(future)
    }

    /// Spawns `future` on `handle`'s runtime as [`Handle::spawn`] does, from any thread,
    /// counting from this call (before that runtime has run anything) until the task is
    /// dropped. A task that does I/O (not `Send`) is made on its runtime with
    /// [`Handle::spawn_with`]: take a [`token`](Self::token) first and move it into the
    /// closure, so it counts from the call too.
    pub fn spawn_on<F>(&self, future: F, handle: &Handle) -> RemoteJoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        handle.spawn(self.track_future(future))
    }

    /// Runs `f` on the blocking pool as [`spawn_blocking`](crate::spawn_blocking) does,
    /// counting until it returns (or, if the job never starts, until it is dropped).
    ///
    /// # Panics
    /// Outside a runtime, as [`spawn_blocking`](crate::spawn_blocking).
    #[track_caller]
    pub fn spawn_blocking<F, R>(&self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        crate::spawn_blocking(self.track_job(f))
    }

    /// Runs `f` on `handle`'s blocking pool as [`Handle::spawn_blocking`] does, counting
    /// from this call until it returns (or, if the job never starts, until it is dropped).
    pub fn spawn_blocking_on<F, R>(&self, f: F, handle: &Handle) -> RemoteJoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        handle.spawn_blocking(self.track_job(f))
    }

    /// `f`, counting from now until it returns (or is dropped unrun).
    fn track_job<F, R>(&self, f: F) -> impl FnOnce() -> R + Send + 'static
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let token = self.token();
        move || {
            let out = f();
            drop(token);
            out
        }
    }

    /// Whether `other` is this tracker or a clone of it (they share one count).
    pub fn ptr_eq(&self, other: &TaskTracker) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Default for TaskTracker {
    fn default() -> TaskTracker {
        TaskTracker::new()
    }
}

impl fmt::Debug for TaskTracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.lock();
        f.debug_struct("TaskTracker")
            .field("len", &state.tracked)
            .field("is_closed", &state.closed)
            .finish()
    }
}

/// Counts as one task of its [`TaskTracker`] until dropped; made by
/// [`TaskTracker::token`].
pub struct TaskTrackerToken {
    inner: Arc<Inner>,
}

impl TaskTrackerToken {
    /// The tracker this token counts in.
    pub fn task_tracker(&self) -> TaskTracker {
        TaskTracker {
            inner: self.inner.clone(),
        }
    }
}

impl Drop for TaskTrackerToken {
    fn drop(&mut self) {
        self.inner.update(|s| s.tracked -= 1);
    }
}

impl fmt::Debug for TaskTrackerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskTrackerToken").finish_non_exhaustive()
    }
}

pin_project_lite::pin_project! {
    /// A future that counts in a [`TaskTracker`] until dropped; made by
    /// [`TaskTracker::track_future`]. Its output is the wrapped future's, and it is fused
    /// when that future is.
    #[derive(Debug)]
    pub struct TrackedFuture<F> {
        #[pin]
        future: F,
        token: TaskTrackerToken,
    }
}

impl<F: Future> Future for TrackedFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().future.poll(cx)
    }
}

impl<F: FusedFuture> FusedFuture for TrackedFuture<F> {
    /// As the wrapped future: a tracked fused future goes into `select!` as it would.
    fn is_terminated(&self) -> bool {
        self.future.is_terminated()
    }
}

/// The future of [`TaskTracker::wait`].
pub struct TaskTrackerWaitFuture<'a> {
    inner: &'a Inner,
    slot: WaitSlot,
}

impl Future for TaskTrackerWaitFuture<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let mut state = this.inner.lock();
        if state.done() {
            state.waits.forget(&mut this.slot);
            return Poll::Ready(());
        }
        state.waits.register(&mut this.slot, cx.waker());
        Poll::Pending
    }
}

impl FusedFuture for TaskTrackerWaitFuture<'_> {
    /// Never: polled after it completed, it looks again.
    fn is_terminated(&self) -> bool {
        false
    }
}

impl Drop for TaskTrackerWaitFuture<'_> {
    fn drop(&mut self) {
        if self.slot.is_taken() {
            self.inner.lock().waits.forget(&mut self.slot);
        }
    }
}

impl fmt::Debug for TaskTrackerWaitFuture<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskTrackerWaitFuture")
            .field("done", &self.inner.lock().done())
            .finish()
    }
}
